/**
 * The download cache, content-addressed by sha256: `<dir>/sha256/<hex>` holds only bytes that were
 * verified against that digest; partial downloads live in `<dir>/tmp/` (same filesystem, so the final
 * rename is atomic) and never count. Two runs at once each write their own temp file; the rename of
 * identical content by either is harmless.
 *
 * node-prep runs as root and installs what it takes from here, so a cache another user could write
 * to is refused, as ssh refuses a key file others can write: the folder and every folder above it
 * must belong to root (or to the user running node-prep) and be writable by no one else (a sticky
 * folder such as /tmp above it is fine). Extraction hashes the bytes it reads again (extract.ts), so
 * even a cache file changed after its check installs nothing.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NodePrepError } from '../errors.ts';
import { sha256File } from '../install/hash.ts';

export class CacheDirError extends NodePrepError {
  constructor(dir: string, reason: string, hint: string) {
    super('CACHE_DIR', `Cannot use ${dir} as the download cache: ${reason}.`, { hint, fields: { dir, reason } });
    this.name = 'CacheDirError';
  }
}

/** Why `dir` (a real path) is not safe to install from, or undefined when it is. */
async function unsafeBecause(real: string, euid: number): Promise<string | undefined> {
  for (let d = real, first = true; ; d = path.dirname(d), first = false) {
    const st = await stat(d);
    if (st.uid !== 0 && st.uid !== euid) return `${d} belongs to uid ${st.uid}, who could change what node-prep installs`;
    const othersWrite = (st.mode & 0o022) !== 0;
    const sticky = (st.mode & 0o1000) !== 0;
    if (othersWrite && (first || !sticky)) return `${d} can be written by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode 0${(st.mode & 0o7777).toString(8)})`;
    if (d === path.dirname(d)) return undefined;
  }
}

/** This process's pid namespace (its inode): a pid means this process only within it. */
let pidNamespace: Promise<string> | undefined;
function ownPidNamespace(): Promise<string> {
  pidNamespace ??= readlink('/proc/self/ns/pid').then((l) => /\[(\d+)\]/.exec(l)?.[1] ?? '0', () => '0');
  return pidNamespace;
}

/** Left by a run that is gone: of this pid namespace (a container sharing the folder has its own), and its pid not alive. */
async function deadRun(ns: string, pid: number): Promise<boolean> {
  if (ns !== (await ownPidNamespace()) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

async function removeDeadTemporaryCaches(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^node-prep-cache-(\d+)-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (!m) continue;
    const full = path.join(dir, name);
    const st = await lstat(full).catch(() => undefined);
    // Only our own (root's, 0700) folders.
    if (!st?.isDirectory() || st.uid !== (process.geteuid?.() ?? 0) || (st.mode & 0o077) !== 0) continue;
    if (await deadRun(m[1]!, Number(m[2]))) await rm(full, { recursive: true, force: true });
  }
}

export class ArtifactCache {
  #checked: Promise<void> | undefined;

  /**
   * `temporary`: a private folder made for this run only (--root without --cache-dir, so that an
   * image gets no tarballs and its owner no say over them); `dispose()` removes it.
   */
  constructor(
    private readonly where: string | { temporary: true },
  ) {}

  #dir: string | undefined;

  /** The folder (a temporary one only once ready()). */
  get dir(): string {
    if (this.#dir !== undefined) return this.#dir;
    if (typeof this.where === 'string') return path.resolve(this.where);
    throw new NodePrepError('CACHE_STATE', 'The temporary cache folder is not made yet.');
  }

  /** Make or check the folder once per run. */
  ready(): Promise<void> {
    this.#checked ??= this.#prepare();
    return this.#checked;
  }

  async #prepare(): Promise<void> {
    if (typeof this.where !== 'string') {
      // A killed run's temporary cache goes first (its pid is in the name).
      await removeDeadTemporaryCaches(os.tmpdir());
      // mkdtemp: a fresh 0700 folder nobody else can enter, whatever TMPDIR holds.
      this.#dir = await mkdtemp(path.join(os.tmpdir(), `node-prep-cache-${await ownPidNamespace()}-${process.pid}-`));
      return;
    }
    const dir = path.resolve(this.where);
    const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      if (err.code === 'ENOTDIR') throw new CacheDirError(dir, 'a file is in its path', 'Give --cache-dir a folder.');
      throw err;
    });
    if (st && !st.isDirectory() && !st.isSymbolicLink()) throw new CacheDirError(dir, 'it is a file, not a folder', 'Give --cache-dir a folder, or remove the file.');
    if (!st) {
      try {
        await mkdir(dir, { recursive: true, mode: 0o755 });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR' || code === 'EEXIST') throw new CacheDirError(dir, 'a file is in its path', 'Give --cache-dir a folder.');
        throw new CacheDirError(dir, `it cannot be created (${code ?? String(err)})`, 'Give --cache-dir a folder node-prep can write.');
      }
    }
    const real = await realpath(dir);
    if (!(await stat(real)).isDirectory()) throw new CacheDirError(dir, 'it is not a folder', 'Give --cache-dir a folder.');
    const euid = process.geteuid?.() ?? 0;
    const why = await unsafeBecause(real, euid);
    if (why) {
      throw new CacheDirError(dir, why, `Use a folder only root can write (e.g. \`install -d -m 0755 /var/cache/node-prep\`), or leave --cache-dir out.`);
    }
    this.#dir = real;
    await this.#removeDeadPartials();
  }

  /** Partial downloads of runs that are gone (their pid is in the name): a killed run's 46 MB go. */
  async #removeDeadPartials(): Promise<void> {
    const tmp = path.join(this.dir, 'tmp');
    for (const name of await readdir(tmp).catch(() => [] as string[])) {
      const m = /^[0-9a-f]{16}\.(\d+)\.(\d+)\.[0-9a-f]{8}\.partial$/.exec(name);
      if (!m) continue;
      if (await deadRun(m[1]!, Number(m[2]))) await rm(path.join(tmp, name), { force: true });
    }
  }

  pathFor(sha256: string): string {
    return path.join(this.dir, 'sha256', sha256);
  }

  /** The cached file for this digest, re-hashed so a damaged cache entry is dropped, not trusted. */
  async lookup(sha256: string): Promise<string | undefined> {
    await this.ready();
    const file = this.pathFor(sha256);
    try {
      if (!(await lstat(file)).isFile()) return undefined;
    } catch {
      return undefined;
    }
    if ((await sha256File(file)) === sha256) return file;
    await rm(file, { force: true });
    return undefined;
  }

  async tempPath(sha256: string): Promise<string> {
    await this.ready();
    const dir = path.join(this.dir, 'tmp');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    // The pid namespace and pid name the run, so that a later run can tell a dead one's leftovers.
    return path.join(dir, `${sha256.slice(0, 16)}.${await ownPidNamespace()}.${process.pid}.${randomBytes(4).toString('hex')}.partial`);
  }

  /** Move a verified temp file into place. */
  async commit(tempFile: string, sha256: string): Promise<string> {
    await this.ready();
    const dest = this.pathFor(sha256);
    await mkdir(path.dirname(dest), { recursive: true, mode: 0o755 });
    await rename(tempFile, dest);
    return dest;
  }

  /** Remove a temporary cache (and all it holds); a cache folder that was given stays. */
  async dispose(): Promise<void> {
    if (typeof this.where === 'string' || this.#dir === undefined) return;
    await rm(this.#dir, { recursive: true, force: true });
  }
}
