/**
 * argv + environment -> Options, in one place. The environment is read once, here, through an
 * allow-list of documented variables; nothing else in node-prep reads process.env.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseArch, type Arch } from '../arch.ts';
import { COMPONENT_NAMES, COMPONENTS, type ComponentName } from '../components/index.ts';
import { checkMirror } from '../config/hosts.ts';
import { checkNoProxy, checkProxyUrl, type ContainerdProxy } from '../config/proxy.ts';
import { COMMANDS, type Command, type Options } from '../commands/options.ts';
import { UsageError } from '../errors.ts';
import { parseKubernetesVersion } from '../versions/kubernetes.ts';
import { parseVersionSpec, type VersionSpec } from '../versions/spec.ts';

/** The environment variables node-prep reads; documented in the README's reference. */
export const ENV_VARS = [
  'NODE_PREP_MIRROR',
  'NODE_PREP_GITHUB_API',
  'NODE_PREP_CACHE_DIR',
  'NODE_PREP_CHECKSUMS',
  'NODE_PREP_TIMEOUT',
  'NODE_PREP_DEADLINE',
  'NODE_PREP_RETRY_DELAYS',
  'GITHUB_TOKEN',
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
  'https_proxy',
  'http_proxy',
  'no_proxy',
  'CI',
] as const;

const FLAGS = {
  arch: { type: 'string' },
  kubernetes: { type: 'string' },
  root: { type: 'string' },
  prefix: { type: 'string' },
  mirror: { type: 'string' },
  'github-api': { type: 'string' },
  bundle: { type: 'string' },
  'cache-dir': { type: 'string' },
  checksums: { type: 'string' },
  'sandbox-image': { type: 'string' },
  'cgroup-driver': { type: 'string' },
  'containerd-flavor': { type: 'string' },
  'registry-mirror': { type: 'string', multiple: true },
  registries: { type: 'string' },
  'containerd-proxy': { type: 'string' },
  'containerd-no-proxy': { type: 'string' },
  'containerd-proxy-from-env': { type: 'boolean' },
  namespace: { type: 'string' },
  'no-start': { type: 'boolean' },
  'skip-smoke': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'show-private': { type: 'boolean' },
  json: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  verbose: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  force: { type: 'boolean' },
  'force-arch': { type: 'boolean' },
  'stop-containers': { type: 'boolean' },
  purge: { type: 'boolean' },
  verify: { type: 'string' },
  keyring: { type: 'string' },
  timeout: { type: 'string' },
  deadline: { type: 'string' },
  busybox: { type: 'string' },
  check: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

/** One version flag per component of the catalog (`--containerd SPEC`). */
const COMPONENT_FLAGS: Record<string, { type: 'string' }> = Object.fromEntries(COMPONENT_NAMES.map((n) => [COMPONENTS[n].flag, { type: 'string' }]));

type Flag = keyof typeof FLAGS | (typeof COMPONENTS)[ComponentName]['flag'];

const VERSION_FLAGS: Flag[] = [...COMPONENT_NAMES.map((n) => COMPONENTS[n].flag), 'kubernetes'];
const FETCH_FLAGS: Flag[] = ['mirror', 'github-api', 'checksums', 'cache-dir', 'verify', 'keyring', 'timeout', 'deadline'];
const PLAN_FLAGS: Flag[] = [
  ...VERSION_FLAGS, ...FETCH_FLAGS, 'arch', 'force-arch', 'root', 'prefix', 'bundle', 'sandbox-image', 'cgroup-driver', 'containerd-flavor',
  'registry-mirror', 'registries', 'containerd-proxy', 'containerd-no-proxy', 'containerd-proxy-from-env', 'namespace', 'show-private',
];
const COMMON: Flag[] = ['json', 'verbose', 'quiet', 'help', 'yes'];

/** Which flags each command takes; anything else is a usage error for that command. */
export const COMMAND_FLAGS: Record<Command, Flag[]> = {
  install: [...PLAN_FLAGS, 'no-start', 'skip-smoke', 'dry-run', 'busybox'],
  plan: PLAN_FLAGS,
  download: [...VERSION_FLAGS, ...FETCH_FLAGS, 'arch', 'bundle', 'containerd-flavor'],
  smoke: ['root', 'busybox'],
  status: ['root', 'check'],
  uninstall: ['root', 'purge', 'force', 'stop-containers', 'dry-run'],
  versions: ['mirror', 'github-api', 'timeout', 'deadline', 'arch', 'kubernetes'],
  doctor: ['root', 'arch'],
};

export type ParsedArgv =
  | { kind: 'help'; command?: Command | undefined; noCommand?: boolean }
  | { kind: 'version' }
  | { kind: 'run'; options: Options };

export function parseArgv(argv: string[], env: Record<string, string | undefined>): ParsedArgv {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMPONENT_FLAGS, ...FLAGS }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(cleanParseError(err));
  }
  // The component flags are read by name below; the rest keep the types their table gives them.
  const { positionals } = parsed;
  const values = parsed.values as ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true; strict: true }>>['values'];
  const versionValues = parsed.values as Record<string, string | undefined>;
  checkLengths(parsed.values as Record<string, unknown>);
  if (values.version) return { kind: 'version' };
  const [first, ...rest] = positionals;
  if (first === 'help') return { kind: 'help', command: asCommand(rest[0]) };
  if (first === undefined) {
    // Plain `node-prep`: the help, as a usage error (exit 2) so a script that forgot the command fails.
    return values.help ? { kind: 'help' } : { kind: 'help', noCommand: true };
  }
  const command = asCommand(first);
  if (!command) throw new UsageError(`Unknown command ${JSON.stringify(first)}.`, `Commands: ${COMMANDS.join(', ')}.`);
  if (values.help) return { kind: 'help', command };

  const allowed = new Set<string>([...COMMAND_FLAGS[command], ...COMMON]);
  for (const key of Object.keys(values)) {
    if (!allowed.has(key)) throw new UsageError(`\`node-prep ${command}\` does not take --${key}.`, `Run \`node-prep ${command} --help\` for its flags.`);
  }
  const maxPositionals = command === 'versions' ? 1 : 0;
  if (rest.length > maxPositionals) throw new UsageError(`Unexpected argument ${JSON.stringify(rest[maxPositionals])}.`);

  const specs = {} as Record<ComponentName, VersionSpec>;
  for (const name of COMPONENT_NAMES) {
    const c = COMPONENTS[name];
    const spec = parseVersionSpec(name, versionValues[c.flag]);
    if (spec.kind === 'none' && c.required) {
      const optional = COMPONENT_NAMES.filter((n) => !COMPONENTS[n].required).map((n) => `--${COMPONENTS[n].flag}`);
      throw new UsageError(`--${c.flag} none: ${name} is what makes the node and cannot be skipped.`, `Only ${optional.join(', ')} take none.`);
    }
    specs[name] = spec;
  }

  let arch: Arch | undefined;
  let arches: Arch[] | undefined;
  if (values.arch !== undefined) {
    const list = values.arch.split(',').map((a) => a.trim()).filter(Boolean);
    if (list.length === 0) throw new UsageError('--arch needs a value: amd64 or arm64.');
    arches = [...new Set(list.map((a) => parseArch(a, '--arch')))];
    if (arches.length > 1 && command !== 'download') throw new UsageError(`\`node-prep ${command}\` takes one --arch; only download takes a list.`);
    arch = arches[0];
  }

  if (values['force-arch'] && arch === undefined) throw new UsageError('--force-arch needs --arch: it makes --arch win over the arch of the image root\'s binaries.');

  const cgroup = values['cgroup-driver'];
  if (cgroup !== undefined && cgroup !== 'systemd' && cgroup !== 'cgroupfs') {
    throw new UsageError(`--cgroup-driver ${JSON.stringify(cgroup)}: use systemd or cgroupfs.`);
  }
  const flavor = values['containerd-flavor'] ?? 'auto';
  if (flavor !== 'auto' && flavor !== 'dynamic' && flavor !== 'static') {
    throw new UsageError(`--containerd-flavor ${JSON.stringify(flavor)}: use auto, dynamic or static.`);
  }
  const verify = values.verify ?? 'default';
  if (verify !== 'default' && verify !== 'strict') throw new UsageError(`--verify ${JSON.stringify(verify)}: use default or strict.`);

  const root = checkPath('--root', values.root ?? '/');
  if (!root.startsWith('/')) throw new UsageError(`--root ${JSON.stringify(root)} must be an absolute path.`);
  const prefix = checkPath('--prefix', values.prefix ?? '/usr/local');
  if (!prefix.startsWith('/')) throw new UsageError(`--prefix ${JSON.stringify(prefix)} must be an absolute path.`);

  const timeoutRaw = values.timeout ?? env.NODE_PREP_TIMEOUT;
  const timeoutMs = timeoutRaw === undefined ? undefined : parseSeconds(values.timeout === undefined ? 'NODE_PREP_TIMEOUT' : '--timeout', timeoutRaw);
  const deadlineRaw = values.deadline ?? env.NODE_PREP_DEADLINE;
  const deadlineMs = deadlineRaw === undefined ? undefined : parseSeconds(values.deadline === undefined ? 'NODE_PREP_DEADLINE' : '--deadline', deadlineRaw);

  return {
    kind: 'run',
    options: {
      command,
      positionals: rest,
      specs,
      kubernetes: parseKubernetesVersion(values.kubernetes),
      arch,
      arches,
      // `//`, `/.`, `/tmp//r/`: one spelling each, so `/` always means the live host.
      root: path.posix.resolve(root),
      prefix: path.posix.resolve(prefix),
      mirror: parseBaseUrl('--mirror', values.mirror ?? env.NODE_PREP_MIRROR ?? 'https://github.com'),
      githubApi: parseBaseUrl('--github-api', values['github-api'] ?? env.NODE_PREP_GITHUB_API ?? 'https://api.github.com'),
      githubToken: env.GITHUB_TOKEN || undefined,
      bundle: optionalPath('--bundle', values.bundle),
      cacheDir: optionalPath(values['cache-dir'] === undefined ? 'NODE_PREP_CACHE_DIR' : '--cache-dir', values['cache-dir'] ?? env.NODE_PREP_CACHE_DIR),
      checksums: optionalPath(values.checksums === undefined ? 'NODE_PREP_CHECKSUMS' : '--checksums', values.checksums ?? env.NODE_PREP_CHECKSUMS),
      sandboxImage: values['sandbox-image'],
      cgroupDriver: cgroup,
      containerdFlavor: flavor,
      registryMirrors: (values['registry-mirror'] ?? []).map(parseRegistryMirror),
      registries: optionalPath('--registries', values.registries),
      containerdProxy: containerdProxy(values, env),
      namespace: values.namespace ?? 'k8s.io',
      start: !values['no-start'],
      smoke: !values['skip-smoke'],
      dryRun: Boolean(values['dry-run']) || command === 'plan',
      showPrivate: Boolean(values['show-private']),
      json: Boolean(values.json),
      yes: Boolean(values.yes),
      verbose: Boolean(values.verbose),
      quiet: Boolean(values.quiet),
      force: Boolean(values.force),
      forceArch: Boolean(values['force-arch']),
      stopContainers: Boolean(values['stop-containers']),
      purge: Boolean(values.purge),
      verify,
      keyring: optionalPath('--keyring', values.keyring),
      busybox: optionalPath('--busybox', values.busybox),
      check: Boolean(values.check),
      proxy: {
        https: env.HTTPS_PROXY ?? env.https_proxy,
        http: env.HTTP_PROXY ?? env.http_proxy,
        no: env.NO_PROXY ?? env.no_proxy,
      },
      retryDelaysMs: env.NODE_PREP_RETRY_DELAYS === undefined ? undefined : parseDelays(env.NODE_PREP_RETRY_DELAYS),
      timeoutMs,
      deadlineMs,
      ci: Boolean(env.CI && env.CI !== 'false' && env.CI !== '0'),
    },
  };
}

function asCommand(s: string | undefined): Command | undefined {
  return (COMMANDS as readonly string[]).includes(s ?? '') ? (s as Command) : undefined;
}

function cleanParseError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // node's messages carry advice for script authors ("To specify a positional argument ..."); keep line one.
  return msg.split('\n')[0]!.replace(/^Unknown option '([^']+)'.*$/, 'Unknown flag $1.');
}

/**
 * What the user typed is bounded before anything uses it: a 100,000-character value is a usage error
 * that says so, not a failure deep in a file system call.
 */
export const MAX_LENGTH = { value: 4096, path: 4096, pathComponent: 255, url: 2048, host: 253, versionSpec: 128 } as const;

function tooLong(flag: string, raw: string, max: number, what: string): UsageError {
  return new UsageError(`${flag} is ${raw.length} characters long; ${what} may have at most ${max}.`, `Check the value given to ${flag}.`);
}

function checkLengths(values: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(values)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (typeof v !== 'string') continue;
      const versionFlag = COMPONENT_NAMES.some((n) => COMPONENTS[n].flag === key);
      if (versionFlag && v.length > MAX_LENGTH.versionSpec) throw tooLong(`--${key}`, v, MAX_LENGTH.versionSpec, 'a version spec');
      if (v.length > MAX_LENGTH.value) throw tooLong(`--${key}`, v, MAX_LENGTH.value, 'a value');
    }
  }
}

/** A path the user typed: at most PATH_MAX long, no part longer than NAME_MAX, no NUL. */
function checkPath(flag: string, raw: string): string {
  if (raw.length > MAX_LENGTH.path) throw tooLong(flag, raw, MAX_LENGTH.path, 'a path');
  if (raw.includes('\0')) throw new UsageError(`${flag} holds a NUL character.`);
  const long = raw.split('/').find((part) => Buffer.byteLength(part) > MAX_LENGTH.pathComponent);
  if (long !== undefined) {
    throw new UsageError(`${flag} has a part ${Buffer.byteLength(long)} bytes long; a file or folder name may have at most ${MAX_LENGTH.pathComponent}.`, `Check the value given to ${flag}.`);
  }
  return raw;
}

function optionalPath(flag: string, raw: string | undefined): string | undefined {
  return raw === undefined ? undefined : checkPath(flag, raw);
}

function parseBaseUrl(flag: string, raw: string): string {
  if (raw.length > MAX_LENGTH.url) throw tooLong(flag, raw, MAX_LENGTH.url, 'a URL');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`${flag} ${JSON.stringify(raw)} is not a URL.`, 'Give an http:// or https:// URL, e.g. https://mirror.example.com/github.');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${flag} must be an http:// or https:// URL.`);
  return raw.replace(/\/+$/, '');
}

function parseRegistryMirror(raw: string): { host: string; url: string } {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new UsageError(`--registry-mirror ${JSON.stringify(raw)}: use HOST=URL, e.g. docker.io=https://mirror.example.com.`);
  const mirror = { host: raw.slice(0, eq).trim(), url: raw.slice(eq + 1).trim() };
  if (mirror.host.length > MAX_LENGTH.host) throw tooLong('--registry-mirror HOST', mirror.host, MAX_LENGTH.host, 'a host name');
  if (mirror.url.length > MAX_LENGTH.url) throw tooLong('--registry-mirror URL', mirror.url, MAX_LENGTH.url, 'a URL');
  checkMirror(mirror.host, mirror.url);
  return mirror;
}

/**
 * --containerd-proxy and --containerd-no-proxy, over the install's own proxy variables when
 * --containerd-proxy-from-env asks for them. undefined: containerd gets no proxy drop-in.
 */
function containerdProxy(values: { 'containerd-proxy'?: string | undefined; 'containerd-no-proxy'?: string | undefined; 'containerd-proxy-from-env'?: boolean | undefined }, env: Record<string, string | undefined>): ContainerdProxy | undefined {
  const proxy = values['containerd-proxy'];
  const noProxy = values['containerd-no-proxy'];
  const fromEnv = values['containerd-proxy-from-env'] === true;
  if (proxy === undefined && noProxy === undefined && !fromEnv) return undefined;
  const fromEnvVar = (name: string, raw: string | undefined, check: (flag: string, raw: string) => string) => (!fromEnv || raw === undefined || raw === '' ? undefined : check(name, raw));
  const url = proxy === undefined ? undefined : checkProxyUrl('--containerd-proxy', proxy);
  const out: ContainerdProxy = {
    http: url ?? fromEnvVar('HTTP_PROXY', env.HTTP_PROXY ?? env.http_proxy, checkProxyUrl),
    https: url ?? fromEnvVar('HTTPS_PROXY', env.HTTPS_PROXY ?? env.https_proxy, checkProxyUrl),
    no: noProxy === undefined ? fromEnvVar('NO_PROXY', env.NO_PROXY ?? env.no_proxy, checkNoProxy) : checkNoProxy('--containerd-no-proxy', noProxy),
    source: [proxy !== undefined ? '--containerd-proxy' : '', noProxy !== undefined ? '--containerd-no-proxy' : '', fromEnv ? '--containerd-proxy-from-env' : ''].filter(Boolean).join(', '),
  };
  if (out.http === undefined && out.https === undefined) {
    throw new UsageError(
      fromEnv ? '--containerd-proxy-from-env: neither HTTPS_PROXY nor HTTP_PROXY is set.' : '--containerd-no-proxy needs a proxy to bypass: add --containerd-proxy URL.',
      'Give the proxy with --containerd-proxy URL.',
    );
  }
  return out;
}

function parseSeconds(flag: string, raw: string): number {
  const n = Number(raw);
  // setTimeout holds at most 2^31-1 ms (24.8 days); a longer wait would fire at once.
  if (!Number.isFinite(n) || n <= 0 || n * 1000 > 2 ** 31 - 1) {
    throw new UsageError(`${flag} ${JSON.stringify(raw.slice(0, 40))}: give a number of seconds (at most 2147483).`);
  }
  return Math.max(1, Math.round(n * 1000));
}

function parseDelays(raw: string): number[] {
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isFinite(n) || n < 0 || n > 600_000) || list.length > 20) {
    throw new UsageError(`NODE_PREP_RETRY_DELAYS ${JSON.stringify(raw.slice(0, 60))}: give up to 20 delays in milliseconds (each at most 600000), comma-separated.`);
  }
  return list;
}

