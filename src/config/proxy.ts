/**
 * containerd's own proxy: --containerd-proxy URL, --containerd-no-proxy LIST, or the install's
 * HTTPS_PROXY/HTTP_PROXY/NO_PROXY (--containerd-proxy-from-env), written as the unit drop-in
 * containerd.service.d/http-proxy.conf (as kubespray does). containerd is a Go program: it reads
 * HTTP_PROXY, HTTPS_PROXY and NO_PROXY from its environment for every registry request.
 * https://pkg.go.dev/golang.org/x/net/http/httpproxy#FromEnvironment
 */
import { UsageError } from '../errors.ts';
import { REDACTED } from './hosts.ts';
import type { TemplateContext } from './template.ts';

export interface ContainerdProxy {
  http?: string | undefined;
  https?: string | undefined;
  no?: string | undefined;
  /** Where the values came from, for the file's header comment. */
  source: string;
}

const MAX_URL = 2048;
const MAX_NO_PROXY = 4096;

/** A proxy URL containerd can use: http, https or socks5, no control characters, no query. */
export function checkProxyUrl(flag: string, raw: string): string {
  let u: URL | undefined;
  try {
    u = raw.length <= MAX_URL ? new URL(raw) : undefined;
  } catch {
    u = undefined;
  }
  if (!u || !['http:', 'https:', 'socks5:'].includes(u.protocol) || /[\s\p{Cc}]/u.test(raw) || u.search || u.hash || !u.host) {
    throw new UsageError(`${flag}: give a proxy URL of at most ${MAX_URL} characters, http://HOST:PORT (or https://, socks5://), without spaces, query or fragment.`);
  }
  return raw;
}

/** NO_PROXY as Go reads it: comma-separated hosts, domains (.example.com), IPs and CIDRs. */
export function checkNoProxy(flag: string, raw: string): string {
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (raw.length > MAX_NO_PROXY || list.some((s) => !/^(?:\*|[A-Za-z0-9.:_\-[\]/*]+)$/.test(s))) {
    throw new UsageError(`${flag}: give a comma-separated list of hosts, .domains, IPs and CIDRs (at most ${MAX_NO_PROXY} characters).`);
  }
  return list.join(',');
}

export const hasCredentials = (url: string | undefined) => {
  if (url === undefined) return false;
  const u = new URL(url);
  return u.username !== '' || u.password !== '';
};

export const proxyIsPrivate = (p: ContainerdProxy) => hasCredentials(p.http) || hasCredentials(p.https);

/** The URL with its userinfo as REDACTED. */
export function redactProxy(url: string): string {
  const u = new URL(url);
  return u.username || u.password ? `${u.protocol}//${REDACTED}@${u.host}${u.pathname === '/' ? '' : u.pathname}` : url;
}

/**
 * `Environment=` lines. systemd unquotes "…" with C escapes and expands `%` specifiers even there,
 * so `\`, `"` and `%` are escaped (a URL-encoded password holds `%`).
 * https://www.freedesktop.org/software/systemd/man/latest/systemd.service.html#Command%20lines
 */
export function proxyContext(p: ContainerdProxy, redact: boolean): TemplateContext {
  const show = (url: string) => (redact ? redactProxy(url) : url);
  const vars: Array<[string, string | undefined]> = [
    ['HTTP_PROXY', p.http === undefined ? undefined : show(p.http)],
    ['HTTPS_PROXY', p.https === undefined ? undefined : show(p.https)],
    ['NO_PROXY', p.no],
  ];
  return {
    source: p.source,
    variables: vars.flatMap(([name, value]) => (value === undefined ? [] : [{ assignment: `"${`${name}=${value}`.replace(/[\\"]/g, (c) => `\\${c}`).replace(/%/g, '%%')}"` }])),
  };
}
