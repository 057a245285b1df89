import { UsageError } from '../errors.ts';
import type { RegistryMirror } from './types.ts';

/** One certs.d/HOST/hosts.toml: the registry, its fallback server, its mirrors in the order given. */
// A type alias, not an interface, so that it is assignable to a TemplateContext.
export type HostsFile = {
  host: string;
  hasServer: boolean;
  server: string;
  mirrors: Array<{ url: string }>;
};

/** `_default` is containerd's catch-all host dir; otherwise a host name or IP with an optional port. */
const HOST = /^(?:_default|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?)$/;

/** Repeated --registry-mirror flags for one host become one file, tried in flag order, without duplicates. */
export function hostsFiles(mirrors: RegistryMirror[]): HostsFile[] {
  const byHost = new Map<string, HostsFile>();
  for (const { host, url } of mirrors) {
    checkMirror(host, url);
    let file = byHost.get(host);
    if (file === undefined) {
      const server = serverFor(host);
      file = { host, hasServer: server !== undefined, server: server ?? '', mirrors: [] };
      byHost.set(host, file);
    }
    // A repeated [host."URL"] table is invalid TOML: containerd would ignore the whole file.
    if (!file.mirrors.some((m) => m.url === url)) file.mirrors.push({ url });
  }
  return [...byHost.values()];
}

/**
 * `server` is the fallback after the mirrors. Written only where it equals what containerd uses
 * without it: docker.io is served from registry-1.docker.io (`server = "https://docker.io"` would
 * not work), and localhost registries get an HTTP fallback no `server` line can express.
 * https://github.com/containerd/containerd/blob/main/core/remotes/docker/config/hosts.go
 */
function serverFor(host: string): string | undefined {
  if (host === '_default' || /^(?:localhost|127\.\d+\.\d+\.\d+|\[::1\])(?::\d+)?$/.test(host)) return undefined;
  return host === 'docker.io' ? 'https://registry-1.docker.io' : `https://${host}`;
}

/** The one place --registry-mirror HOST=URL is judged: the CLI checks flags with it, render again. */
export function checkMirror(host: string, url: string): void {
  if (!HOST.test(host)) {
    throw new UsageError(`--registry-mirror ${JSON.stringify(host)}: HOST must be a registry host[:port] or _default.`);
  }
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if ((parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') || /[\s\p{Cc}]/u.test(url)) {
    throw new UsageError(`--registry-mirror ${host}=${JSON.stringify(url)}: URL must be an http:// or https:// URL.`);
  }
}
