/**
 * Side effects come in here: the HTTP client, GitHub, the pins, built once from Options and passed to
 * the core. Nothing is constructed until a command asks for it, so `plan` with pinned defaults opens
 * no connection at all.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { detectArch, type Arch } from '../arch.ts';
import { BundleIndex, readBundleLock, type BundleLock } from '../bundle/lock.ts';
import { PinSet } from '../checksums/pins.ts';
import { PinLineError } from '../checksums/sums.ts';
import type { ComponentName } from '../components/types.ts';
import { HttpError, NodePrepError, UsageError } from '../errors.ts';
import { systemExec, type Exec } from '../exec/exec.ts';
import { ArtifactCache } from '../fetch/cache.ts';
import { GitHub } from '../net/github.ts';
import { DEFAULT_HTTP, Http, MAX_DOCUMENT_BYTES } from '../net/http.ts';
import type { ArtifactDeps } from '../plan/artifact.ts';
import { NODE_PATHS } from '../node/paths.ts';
import type { ReleaseIndex } from '../versions/index.ts';
import { readImageArch } from '../node/elf.ts';
import { readManifest } from '../state/manifest.ts';
import { chooseArch, type TargetArch } from './target-arch.ts';
import { printable } from '../util/printable.ts';
import { readRegularFile } from '../util/read-regular.ts';
import { USER_AGENT } from '../version.ts';
import type { Options } from './options.ts';

export interface Context extends ArtifactDeps {
  options: Options;
  /** What install and plan install for (target-arch.ts); doctor's target; otherwise --arch or this machine's. */
  arch: Arch;
  /** Where `arch` came from, and a warning to give when it is a fallback or an override. */
  archChoice: TargetArch;
  http: () => Http;
  cache: () => ArtifactCache;
  bundle: BundleLock | undefined;
  /** Runs processes (systemctl, modprobe, the installed tools). */
  exec: Exec;
  close(): Promise<void>;
}

/**
 * A --mirror URL may carry credentials (`https://user:pass@proxy/github`): they become a Basic auth
 * header for that origin only, and every URL node-prep builds, prints or records is without them.
 */
export function splitMirrorCredentials(mirror: string): { base: string; basicAuth?: { origin: string; header: string } } {
  const u = new URL(mirror);
  if (!u.username && !u.password) return { base: mirror };
  const header = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  return { base: u.href.replace(/\/+$/, ''), basicAuth: { origin: u.origin, header } };
}

export async function createContext(options: Options): Promise<Context> {
  let http: Http | undefined;
  const mirror = splitMirrorCredentials(options.mirror);
  let github: GitHub | undefined;
  let cache: ArtifactCache | undefined;
  const getHttp = () =>
    (http ??= new Http({
      ...DEFAULT_HTTP,
      userAgent: USER_AGENT,
      apiBase: options.githubApi,
      githubToken: options.githubToken,
      proxy: options.proxy,
      ...(options.timeoutMs ? { idleTimeoutMs: options.timeoutMs, connectTimeoutMs: options.timeoutMs } : {}),
      // Small documents get 2 minutes at most, or the download deadline when that is shorter.
      ...(options.deadlineMs ? { downloadDeadlineMs: options.deadlineMs, documentDeadlineMs: Math.min(DEFAULT_HTTP.documentDeadlineMs, options.deadlineMs) } : {}),
      ...(options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}),
      basicAuth: mirror.basicAuth,
    }));

  // An offline bundle replaces both the mirror (its folder has GitHub's download paths) and the API
  // (its lock lists the versions), and supplies the default versions.
  const bundleDir = options.command === 'download' || !options.bundle ? undefined : path.resolve(options.bundle);
  const bundle = bundleDir ? await readBundleLock(bundleDir) : undefined;
  const downloadBase = bundleDir ? pathToFileURL(bundleDir).href : mirror.base;
  const getGitHub = () => (github ??= new GitHub(getHttp(), downloadBase, options.githubApi));
  const bundleIndex = bundle ? new BundleIndex(bundle) : undefined;
  const defaults = bundle
    ? (Object.fromEntries(Object.entries(bundle.components).map(([k, v]) => [k, v?.version])) as Partial<Record<ComponentName, string>>)
    : undefined;

  if (options.cacheDir !== undefined) await checkCacheDir(options.cacheDir);
  const archChoice = await targetArch(options);

  return {
    options,
    arch: archChoice.arch,
    archChoice,
    http: getHttp,
    github: getGitHub,
    index: (): ReleaseIndex => bundleIndex ?? getGitHub(),
    defaults,
    bundle,
    exec: systemExec,
    pins: await loadPins(options.checksums),
    // Under --root the default cache is a private folder of this run, removed at its end: nothing of
    // it lands in the image, and the image's owner has no say over what root installs from it.
    cache: () => (cache ??= new ArtifactCache(options.cacheDir ?? (options.root === '/' ? NODE_PATHS.cacheDir : { temporary: true }))),
    fetchText: async (url) => (url.startsWith('file:') ? readLocal(url) : (await getHttp().getText(url)).text),
    async close() {
      await http?.close();
      await cache?.dispose();
    },
  };
}

/** install and plan: chooseArch's rules; doctor: the image's arch by default, and it judges a mismatch itself. */
async function targetArch(o: Options): Promise<TargetArch> {
  const readsImage = o.root !== '/' && (o.command === 'install' || o.command === 'plan' || o.command === 'doctor');
  const image = readsImage ? await readImageArch(o.root) : undefined;
  if (o.command === 'install' || o.command === 'plan') {
    const recorded = o.root === '/' ? undefined : (await readManifest(o.root).catch(() => undefined))?.arch;
    return chooseArch({ explicit: o.arch, force: o.forceArch, root: o.root, host: detectArch(), image, recorded });
  }
  if (o.arch !== undefined) return { arch: o.arch, reason: `--arch ${o.arch}` };
  if (image?.installable !== undefined) return { arch: image.installable, reason: `the image's arch (${image.source})` };
  return { arch: detectArch(), reason: "this machine's arch" };
}

async function readLocal(url: string): Promise<string> {
  const file = fileURLToPath(url);
  const read = await readRegularFile(file, { maxBytes: MAX_DOCUMENT_BYTES, followLinks: true });
  if (read.kind === 'text') return read.text;
  if (read.why === 'ENOENT') throw new HttpError(url, 404, `${file} is not in the bundle`);
  throw new NodePrepError('BUNDLE', `Cannot read ${file} from the bundle: ${read.why}.`, {
    hint: 'The bundle holds something other than what `node-prep download` wrote: make it again.',
    fields: { path: file },
  });
}

/** The most of a --checksums file node-prep reads (a pin is one line of about 100 bytes). */
const MAX_PINS_FILE_BYTES = 16 * 1024 * 1024;

async function loadPins(file: string | undefined): Promise<PinSet> {
  if (file === undefined) return new PinSet();
  const read = await readRegularFile(file, { maxBytes: MAX_PINS_FILE_BYTES, followLinks: true });
  if (read.kind === 'refused') {
    throw new NodePrepError('PINS_FILE', `Cannot read --checksums ${file}: ${read.why}.`, {
      hint: 'Give a file of sha256sum lines: `<sha256>  <asset file name>`.',
      fields: { file },
    });
  }
  let pins: PinSet;
  try {
    pins = new PinSet(read.text, file);
  } catch (err) {
    if (err instanceof PinLineError) {
      // Skipping the line would leave that artifact to the digest its download host serves.
      const shown = err.text.length > 200 ? `${err.text.slice(0, 200)}…` : err.text;
      throw new UsageError(
        `--checksums ${file} line ${err.line}: ${err.why}: ${JSON.stringify(printable(shown))}.`,
        'Each line is `<64 hex digits>  <asset file name>`, as sha256sum prints it; blank lines and lines starting with # are skipped. Nothing was downloaded.',
      );
    }
    throw err;
  }
  if (pins.extraCount === 0) {
    throw new NodePrepError('PINS_FILE', `--checksums ${file} holds no sha256sum lines.`, {
      hint: 'Each line is `<64 hex digits>  <asset file name>`, as sha256sum prints it.',
      fields: { file },
    });
  }
  return pins;
}

/** A --cache-dir that exists must be a folder: what the user typed is said back as a usage error. */
async function checkCacheDir(dir: string): Promise<void> {
  const st = await stat(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOTDIR' ? ('parent' as const) : undefined));
  if (st === 'parent') {
    throw new UsageError(`--cache-dir ${dir}: a file stands where one of its folders should be.`, 'Give a folder for the download cache (it is made when missing), or leave --cache-dir out.');
  }
  if (st !== undefined && !st.isDirectory()) {
    throw new UsageError(`--cache-dir ${dir} is a file, not a folder.`, 'Give a folder for the download cache (it is made when missing), or leave --cache-dir out.');
  }
}
