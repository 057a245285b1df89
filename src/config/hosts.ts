/**
 * Registry hosts: --registry-mirror flags and the --registries file, turned into one
 * certs.d/HOST/hosts.toml per registry with the fields containerd's docs/hosts.md defines.
 * https://github.com/containerd/containerd/blob/main/docs/hosts.md
 */
import { UsageError } from '../errors.ts';
import type { RegistriesSpec, RegistryConfig } from './registries.ts';
import type { TemplateContext } from './template.ts';
import type { RegistryMirror } from './types.ts';

/** What containerd is told about one host it talks to: the registry itself (top level) or a mirror. */
export interface HostSettings {
  ca?: string;
  /** cert_file (and key_file when the key is a file of its own). */
  client?: { cert: string; key?: string };
  skipVerify?: boolean;
  /** The Authorization header value: a secret. */
  authorization?: string;
}

export interface MirrorHost {
  /** The host URL as containerd gets it: the API root when overridePath. */
  url: string;
  overridePath: boolean;
  settings: HostSettings;
}

/** One certs.d/HOST/hosts.toml. */
export interface HostsFile {
  /** The folder name: a registry host[:port], or `_default` for every other registry. */
  host: string;
  /** Where it came from, for the file's header comment. */
  source: string;
  server: string | undefined;
  settings: HostSettings;
  mirrors: MirrorHost[];
}

/** Shown instead of a secret in every output. */
export const REDACTED = '<redacted>';

/** `_default` is containerd's catch-all host dir; otherwise a host name or IP with an optional port. */
const HOST = /^(?:_default|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?)$/;

/**
 * The hosts files for the --registries file and the --registry-mirror flags together: a flag's
 * mirror comes after the file's endpoints for the same registry. Every registry named under
 * `mirrors` or `configs` gets its file; `*` is containerd's `_default`.
 */
export function hostsFiles(mirrorFlags: RegistryMirror[], spec: RegistriesSpec = { mirrors: {}, configs: {} }, fileName?: string): HostsFile[] {
  const byHost = new Map<string, HostsFile>();
  const configFor = (host: string): RegistryConfig | null | undefined => (Object.hasOwn(spec.configs, host) ? spec.configs[host] : spec.configs['*']);
  const fileFor = (registry: string, source: string): HostsFile => {
    const host = registry === '*' ? '_default' : registry;
    let file = byHost.get(host);
    if (file === undefined) {
      if (!HOST.test(host)) throw new UsageError(`${source}: ${JSON.stringify(registry)} is not a registry host[:port], "*" or _default.`);
      file = { host, source, server: serverFor(host), settings: settingsOf(configFor(registry === '_default' ? '*' : registry)), mirrors: [] };
      byHost.set(host, file);
    } else if (!file.source.includes(source)) file.source = `${file.source}, ${source}`;
    return file;
  };
  const addMirror = (file: HostsFile, raw: string, where: string) => {
    const endpoint = parseEndpoint(raw, where);
    // A repeated [host."URL"] table is invalid TOML: containerd would ignore the whole file.
    if (file.mirrors.some((m) => m.url === endpoint.url)) return;
    file.mirrors.push({ ...endpoint, settings: settingsOf(configFor(endpoint.host)) });
  };
  // The header comment names the flag, not the path: the same file from another folder renders the same bytes.
  const fromFile = '--registries';
  for (const [registry, m] of Object.entries(spec.mirrors)) {
    const file = fileFor(registry, fromFile);
    m.endpoint.forEach((e, i) => addMirror(file, e, `${fileName ?? '--registries'}: mirrors.${registry}.endpoint.${i}`));
  }
  for (const registry of Object.keys(spec.configs)) fileFor(registry, fromFile);
  for (const { host, url } of mirrorFlags) {
    checkMirror(host, url);
    addMirror(fileFor(host, '--registry-mirror'), url, `--registry-mirror ${host}=…`);
  }
  return [...byHost.values()];
}

/** Whether a hosts file holds a secret: registry credentials, or a client key beside it. */
export const isPrivate = (f: HostsFile) => [f.settings, ...f.mirrors.map((m) => m.settings)].some((s) => s.authorization !== undefined || s.client?.key !== undefined);

function settingsOf(c: RegistryConfig | null | undefined): HostSettings {
  const out: HostSettings = {};
  const tls = c?.tls;
  if (tls?.ca_file) out.ca = tls.ca_file;
  if (tls?.cert_file) out.client = { cert: tls.cert_file, ...(tls.key_file ? { key: tls.key_file } : {}) };
  if (tls?.insecure_skip_verify) out.skipVerify = true;
  const auth = c?.auth;
  if (auth?.username !== undefined) out.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`;
  else if (auth?.auth !== undefined) out.authorization = `Basic ${auth.auth}`;
  else if (auth?.token !== undefined) out.authorization = `Bearer ${auth.token}`;
  return out;
}

/**
 * A mirror endpoint as containerd needs it. Without a path (or with just `/v2`) it is the registry's
 * root, and containerd adds `/v2` itself. With any other path it is the mirror's API root, as a
 * Harbor proxy project's `https://harbor.example/v2/dockerhub` is: written as is with
 * `override_path`, without which containerd appends a second `/v2` and the mirror answers 404.
 * No scheme means https, as in k3s.
 */
export function parseEndpoint(raw: string, where: string): { url: string; overridePath: boolean; host: string } {
  const text = raw.includes('://') ? raw : `https://${raw}`;
  let u: URL | undefined;
  try {
    u = new URL(text);
  } catch {
    u = undefined;
  }
  if ((u?.protocol !== 'http:' && u?.protocol !== 'https:') || /[\s\p{Cc}]/u.test(raw)) {
    throw new UsageError(`${where}: the endpoint must be an http:// or https:// URL.`);
  }
  if (u.username || u.password) {
    throw new UsageError(`${where}: the endpoint ${u.protocol}//${REDACTED}@${u.host} has credentials in it: containerd would ignore them and node-prep would have to write them where others can read them.`, 'Give them in a registries file instead: `--registries FILE` with configs.HOST.auth (see docs/recipes/private-registry.md).');
  }
  if (u.search || u.hash) throw new UsageError(`${where}: the endpoint ${u.protocol}//${u.host}${u.pathname} has a query or fragment, which containerd does not send.`);
  const path = u.pathname.replace(/\/+$/, '');
  const base = `${u.protocol}//${u.host}`;
  if (path === '' || path === '/v2') return { url: base, overridePath: false, host: u.host };
  return { url: `${base}${path}`, overridePath: true, host: u.host };
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
  // Here a URL needs its scheme: HOST=mirror.example would be too easily meant as http.
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--registry-mirror ${host}=…: URL must be an http:// or https:// URL.`);
  parseEndpoint(url, `--registry-mirror ${host}=…`);
}

/** The template's view of a hosts file; `redact` puts REDACTED where a secret goes. */
export function hostsContext(f: HostsFile, redact: boolean): TemplateContext {
  return {
    host: f.host,
    source: f.source,
    hasServer: f.server !== undefined,
    server: f.server ?? '',
    hasMirrors: f.mirrors.length > 0,
    ...settingsContext(f.settings, redact),
    mirrors: f.mirrors.map((m) => ({ url: m.url, overridePath: m.overridePath, ...settingsContext(m.settings, redact) })),
  };
}

function settingsContext(s: HostSettings, redact: boolean): TemplateContext {
  return {
    hasCa: s.ca !== undefined,
    ca: s.ca ?? '',
    hasClientPair: s.client?.key !== undefined,
    hasClientCert: s.client !== undefined && s.client.key === undefined,
    clientCert: s.client?.cert ?? '',
    clientKey: s.client?.key ?? '',
    skipVerify: s.skipVerify === true,
    hasHeader: s.authorization !== undefined,
    authorization: redact && s.authorization !== undefined ? REDACTED : (s.authorization ?? ''),
  };
}
