/**
 * Redact at the boundary: userinfo and query strings (signed CDN URLs, tokens) never reach a log, an
 * error or the JSON output.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    const auth = u.username || u.password ? '***@' : '';
    const query = u.search ? '?…' : '';
    return `${u.protocol}//${auth}${u.host}${u.pathname}${query}`;
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@').replace(/\?.*$/, '?…');
  }
}

/** Remove any occurrence of the given secrets from a text (subprocess output, server error bodies). */
export function redactSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}
