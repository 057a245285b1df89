/**
 * Which proxy a URL goes through, by the usual HTTPS_PROXY / HTTP_PROXY / NO_PROXY rules. undici's
 * EnvHttpProxyAgent does the routing; this is for messages, so an error can say the proxy was used.
 */
export interface ProxySettings {
  http?: string | undefined;
  https?: string | undefined;
  no?: string | undefined;
}

export function proxyFor(url: string, p: ProxySettings): string | undefined {
  const u = new URL(url);
  const proxy = u.protocol === 'https:' ? (p.https ?? p.http) : p.http;
  if (!proxy) return undefined;
  return bypassed(u, p.no ?? '') ? undefined : proxy;
}

/** NO_PROXY: `*`, host names (a leading dot or none: the domain and its subdomains), IPs, optional :port. */
function bypassed(u: URL, noProxy: string): boolean {
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const m = /^(.*?)(?::(\d+))?$/.exec(entry.replace(/^\[|\]$/g, ''))!;
    const name = m[1]!.replace(/^\*?\./, '');
    if (m[2] && m[2] !== port) continue;
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}
