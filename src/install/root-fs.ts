/**
 * File system access confined to a root (`--root DIR`, or `/`), for a root whose owner may be less
 * trusted than the root user node-prep runs as, and who may change it while node-prep works.
 *
 * Every folder is opened component by component from the root's own descriptor, each with
 * O_DIRECTORY|O_NOFOLLOW, and every change is made relative to the opened descriptor of its folder
 * (through /proc/self/fd/N/NAME, the openat(2) of Node's file API): nothing is resolved twice, so a
 * folder swapped for a symlink after a check cannot redirect a write. A symlink on the way is followed
 * only when it is relative and stays inside the root (an image's `lib -> usr/lib`); one that is
 * absolute or climbs out of the root is an error that names it. Under `/` absolute links start again
 * at `/`, as the kernel would. node-prep's own folders (`private`) follow no link at all.
 *
 * Final components are never followed either: files are opened with O_NOFOLLOW, and rename(2),
 * unlink(2), link(2), mkdir(2) and symlink(2) act on the name itself.
 */
import { constants, type Stats } from 'node:fs';
import { link, lstat, mkdir, open, readdir, readlink, rename, rmdir, stat, symlink, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { NodePrepError } from '../errors.ts';
import { inRoot } from '../node/paths.ts';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const MAX_LINKS = 40;

const fdPath = (fd: number, name?: string) => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);
const code = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** A symlink on the way to a path node-prep writes would lead out of the root (or into its own folders). */
export class OutsideRootError extends NodePrepError {
  constructor(root: string, linkNodePath: string, target: string, why: string) {
    const where = inRoot(root, linkNodePath);
    super('OUTSIDE_ROOT', `${where} is a symlink to ${JSON.stringify(target)}, which ${why}: node-prep writes nothing through it.`, {
      hint: root === '/'
        ? `Replace ${where} with a real folder.`
        : `node-prep writes only inside --root ${root}. Replace the link with a real folder or a relative link that stays inside the root, or point --root at the real tree.`,
      fields: { path: where, target },
    });
    this.name = 'OutsideRootError';
  }
}

/** A folder on the way is not a folder. */
export class NotAFolderError extends NodePrepError {
  constructor(hostPath: string, what: string) {
    super('INSTALL_TARGET', `Cannot use ${hostPath} as a folder: it is ${what}.`, {
      hint: `Move ${hostPath} aside and run again.`,
      fields: { path: hostPath, reason: what },
    });
    this.name = 'NotAFolderError';
  }
}

export function describeType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isFile()) return 'a regular file';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a device or other special file';
}

export interface DirOptions {
  /** Make missing folders (0755, whatever the umask); `Dir.created` lists them, outermost first. */
  create?: boolean;
  /** node-prep's own folder: no symlink at all on the way below the root. */
  private?: boolean;
}

/** An opened folder inside the root. Names passed to its methods are single path components. */
export class Dir {
  constructor(
    readonly fs: RootFs,
    readonly handle: FileHandle,
    /** The folder as the node sees it (links on the way resolved). */
    readonly nodePath: string,
    /** Folders this open created, outermost first (node paths). */
    readonly created: string[],
  ) {}

  /** A path for Node's file API that reaches NAME inside this very folder, whatever happens to its path. */
  at(name: string): string {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      throw new NodePrepError('BAD_NAME', `${JSON.stringify(name)} is not a file name.`);
    }
    return fdPath(this.handle.fd, name);
  }

  /** Node path of NAME in this folder. */
  nodePathOf(name: string): string {
    return path.posix.join(this.nodePath, name);
  }

  /** Host path of NAME, for messages. */
  hostPathOf(name: string): string {
    return inRoot(this.fs.root, this.nodePathOf(name));
  }

  async lstat(name: string): Promise<Stats | undefined> {
    try {
      return await lstat(this.at(name));
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Open NAME without following a link; a FIFO does not block. The caller checks the type with fstat. */
  async openNoFollow(name: string, flags = O_RDONLY, mode?: number): Promise<FileHandle> {
    return open(this.at(name), flags | O_NOFOLLOW | (flags & (constants.O_WRONLY | constants.O_RDWR) ? 0 : O_NONBLOCK), mode);
  }

  /** NAME opened for reading when it is a regular file (not through a link); undefined when absent. */
  async openRegular(name: string): Promise<{ fh: FileHandle; st: Stats } | undefined> {
    let fh: FileHandle;
    try {
      fh = await this.openNoFollow(name);
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      if (code(err) === 'ELOOP') throw new NotARegularFileError(this.hostPathOf(name), 'a symlink');
      throw err;
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new NotARegularFileError(this.hostPathOf(name), describeType(st));
    }
    return { fh, st };
  }

  /** A new file (O_CREAT|O_EXCL: never one that is there, never through a link), read-write. */
  async createExclusive(name: string, mode = 0o600): Promise<FileHandle> {
    return open(this.at(name), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW, mode);
  }

  async rename(name: string, to: Dir, toName: string): Promise<void> {
    await rename(this.at(name), to.at(toName));
  }

  async link(name: string, to: Dir, toName: string): Promise<void> {
    await link(this.at(name), to.at(toName));
  }

  async unlink(name: string): Promise<void> {
    await unlink(this.at(name));
  }

  /** false when NAME is not there. */
  async unlinkIfPresent(name: string): Promise<boolean> {
    try {
      await unlink(this.at(name));
      return true;
    } catch (err) {
      if (code(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Remove the folder NAME if it is empty; false when it is not (or not there). */
  async rmdirIfEmpty(name: string): Promise<boolean> {
    try {
      await rmdir(this.at(name));
      return true;
    } catch {
      return false;
    }
  }

  async mkdir(name: string, mode = 0o755): Promise<void> {
    await mkdir(this.at(name), { mode });
  }

  async symlink(target: string, name: string): Promise<void> {
    await symlink(target, this.at(name));
  }

  async readlink(name: string): Promise<string> {
    return readlink(this.at(name));
  }

  async readdir(): Promise<string[]> {
    return readdir(fdPath(this.handle.fd));
  }

  /** A sub-folder, opened without following a link. */
  async sub(name: string, opts: { create?: boolean; mode?: number } = {}): Promise<Dir | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(this.at(name), DIR_FLAGS);
        return new Dir(this.fs, fh, this.nodePathOf(name), []);
      } catch (err) {
        if (code(err) === 'ELOOP' || code(err) === 'ENOTDIR') {
          const st = await this.lstat(name);
          if (st?.isSymbolicLink()) throw new OutsideRootError(this.fs.root, this.nodePathOf(name), await this.readlink(name).catch(() => '?'), "is inside node-prep's own folders, where no link belongs");
          throw new NotAFolderError(this.hostPathOf(name), st ? describeType(st) : 'not a folder');
        }
        if (code(err) !== 'ENOENT' || !opts.create) {
          if (code(err) === 'ENOENT') return undefined;
          throw err;
        }
      }
      try {
        await this.mkdir(name, opts.mode ?? 0o755);
        const fh = await open(this.at(name), DIR_FLAGS);
        await fh.chmod(opts.mode ?? 0o755).catch(async (err: unknown) => {
          await fh.close();
          throw err;
        });
        return new Dir(this.fs, fh, this.nodePathOf(name), [this.nodePathOf(name)]);
      } catch (err) {
        if (code(err) !== 'EEXIST') throw err; // a concurrent creator won: open theirs
      }
    }
    throw new NodePrepError('INSTALL_TARGET', `${this.hostPathOf(name)} keeps changing.`, { hint: 'Stop whatever changes it and run again.' });
  }

  /**
   * Remove NAME and, if it is a folder, everything in it, through opened descriptors: a link inside
   * is removed, never followed, and a folder swapped while this runs is not descended into.
   * Returns false when NAME was not there. A mount point is emptied (EBUSY on its own removal).
   */
  async removeTree(name: string, topDev?: number): Promise<boolean> {
    const st = await this.lstat(name);
    if (!st) return false;
    if (!st.isDirectory()) return this.unlinkIfPresent(name);
    // Below the top, another file system (a bind mount) is left alone: what is mounted there is not
    // this tree's to delete.
    if (topDev !== undefined && st.dev !== topDev) return false;
    const sub = await this.sub(name).catch((err: unknown) => {
      if (err instanceof NotAFolderError || err instanceof OutsideRootError) return 'changed' as const;
      throw err;
    });
    if (sub === 'changed') return this.unlinkIfPresent(name); // became a file or link meanwhile
    if (!sub) return false;
    try {
      for (const entry of await sub.readdir()) await sub.removeTree(entry, topDev ?? st.dev);
    } finally {
      await sub.close();
    }
    try {
      await rmdir(this.at(name));
    } catch (err) {
      // EBUSY: a mount point (a separate /var/lib/containerd), emptied but kept; ENOTEMPTY: a mount
      // below it was left alone.
      if (code(err) === 'ENOENT' || code(err) === 'EBUSY' || code(err) === 'ENOTEMPTY') return true;
      throw err;
    }
    return true;
  }

  async sync(): Promise<void> {
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

export class NotARegularFileError extends NodePrepError {
  constructor(hostPath: string, what: string) {
    super('INSTALL_TARGET', `Cannot use ${hostPath}: it is ${what}, not a regular file.`, {
      hint: `node-prep only reads and replaces regular files there; move ${hostPath} aside and run again.`,
      fields: { path: hostPath, reason: what },
    });
    this.name = 'NotARegularFileError';
  }
}

/** Roots held open for the rest of the process (pinRoot): later opens reach that very folder. */
const pinned = new Map<string, FileHandle>();

/**
 * Hold `root` open for the rest of this process, so that every later open of it (the lock, the
 * record, the transaction, uninstall's removals) reaches the same folder even if whoever owns a
 * folder above it renames it or swaps it for a link while node-prep runs. `create` makes it first.
 */
export async function pinRoot(root: string, opts: { create?: boolean } = {}): Promise<void> {
  const abs = path.resolve(root);
  if (abs === '/' || pinned.has(abs)) return;
  if (opts.create) await mkdir(abs, { recursive: true, mode: 0o755 });
  let fh: FileHandle;
  try {
    fh = await open(abs, O_RDONLY | O_DIRECTORY);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err; // not there (a plan for a root not made yet): nothing to hold
    return;
  }
  // A path that leads to this machine's own / (a link someone planted in its place) is not an image.
  const [st, host] = [await fh.stat(), await stat('/')];
  if (st.dev === host.dev && st.ino === host.ino) {
    await fh.close();
    throw new NodePrepError('ROOT_IS_HOST', `--root ${root} leads to this machine's own / .`, {
      hint: 'node-prep writes only inside --root DIR; for this machine, leave --root out. Check what the path (or a link in it) points to.',
      fields: { root: abs },
    });
  }
  pinned.set(abs, fh);
}

export class RootFs {
  private constructor(
    /** The root as given (`/` or DIR). */
    readonly root: string,
    private readonly handle: FileHandle,
  ) {}

  /** Open the root; `create` makes DIR itself (and its parents) when missing. */
  static async open(root: string, opts: { create?: boolean } = {}): Promise<RootFs> {
    const abs = path.resolve(root);
    const pin = pinned.get(abs);
    if (opts.create && !pin) await mkdir(abs, { recursive: true, mode: 0o755 });
    let fh: FileHandle;
    try {
      // The root itself is what the user named: links in its own path are theirs to choose. Once
      // pinned, it is the folder that was opened first, wherever its path leads now.
      fh = await open(pin ? fdPath(pin.fd) : abs, O_RDONLY | O_DIRECTORY);
    } catch (err) {
      throw new NodePrepError('ROOT', `Cannot open the root ${abs}: ${code(err) ?? String(err)}.`, { hint: 'Give --root an existing folder.', fields: { root: abs } });
    }
    try {
      await lstat(fdPath(fh.fd));
    } catch {
      await fh.close();
      throw new NodePrepError('NO_PROC', 'node-prep needs /proc (it opens folders through /proc/self/fd to stay inside the root).', { hint: 'Mount /proc and run again.' });
    }
    return new RootFs(root === abs ? root : abs, fh);
  }

  /** The root when it exists, undefined when it does not (a plan for an image root not made yet). */
  static async openExisting(root: string): Promise<RootFs | undefined> {
    try {
      return await RootFs.open(root);
    } catch (err) {
      if (err instanceof NodePrepError && err.code === 'ROOT' && /ENOENT/.test(err.message)) return undefined;
      throw err;
    }
  }

  /** Run `fn` with the root open (created when `create`); it is closed afterwards. */
  static async with<T>(root: string, opts: { create?: boolean }, fn: (fs: RootFs) => Promise<T>): Promise<T> {
    const fs = await RootFs.open(root, opts);
    try {
      return await fn(fs);
    } finally {
      await fs.close();
    }
  }

  hostPath(nodePath: string): string {
    return inRoot(this.root, nodePath);
  }

  /**
   * Open the folder at `nodeDir`, resolving it component by component from the root's descriptor
   * (see the top of this file for which links are followed). Close it after use.
   */
  async dir(nodeDir: string, opts: DirOptions = {}): Promise<Dir> {
    const created: string[] = [];
    const stack: FileHandle[] = [];
    const done: string[] = [];
    let pending = nodeDir.split('/').filter((p) => p !== '' && p !== '.');
    let links = 0;
    /** The last link followed: a `..` that climbs out of the root came from it. */
    let via: { path: string; target: string } | undefined;
    const top = () => stack.at(-1) ?? this.handle;
    const closeAll = async () => {
      for (const fh of stack.splice(0)) await fh.close().catch(() => undefined);
    };
    try {
      while (pending.length > 0) {
        const part = pending.shift()!;
        if (part === '..') {
          if (stack.length === 0) {
            if (this.root === '/') continue; // /.. is /
            throw new OutsideRootError(this.root, via?.path ?? `/${done.join('/')}`, via?.target ?? '..', 'climbs out of the root');
          }
          await stack.pop()!.close();
          done.pop();
          continue;
        }
        const at = fdPath(top().fd, part);
        const here = `/${[...done, part].join('/')}`;
        let fh: FileHandle | undefined;
        try {
          fh = await open(at, DIR_FLAGS);
        } catch (err) {
          const c = code(err);
          if (c === 'ENOENT') {
            if (!opts.create) throw Object.assign(new Error(`ENOENT: no such folder ${this.hostPath(here)}`), { code: 'ENOENT', path: this.hostPath(here) });
            try {
              await mkdir(at, { mode: 0o755 });
              fh = await open(at, DIR_FLAGS);
              created.push(here);
              await fh.chmod(0o755).catch(async (chmodErr: unknown) => {
                await fh!.close();
                throw chmodErr;
              }); // mkdir's mode is masked by the umask
            } catch (mkErr) {
              if (code(mkErr) !== 'EEXIST' && code(mkErr) !== 'ELOOP' && code(mkErr) !== 'ENOTDIR') throw mkErr;
              pending.unshift(part); // someone else made it meanwhile: look again
              continue;
            }
          } else if (c === 'ELOOP' || c === 'ENOTDIR') {
            const st = await lstat(at).catch(() => undefined);
            if (!st?.isSymbolicLink()) throw new NotAFolderError(this.hostPath(here), st ? describeType(st) : 'not a folder');
            const target = await readlink(at);
            if (opts.private && this.root !== '/') throw new OutsideRootError(this.root, here, target, "is in the way of node-prep's own folders, where no link belongs");
            if (++links > MAX_LINKS) throw new NotAFolderError(this.hostPath(here), 'a chain of more than 40 symlinks');
            if (target.startsWith('/')) {
              if (this.root !== '/') throw new OutsideRootError(this.root, here, target, 'is absolute, so it leads out of the root on this machine');
              await closeAll();
              done.length = 0;
            }
            via = { path: here, target };
            pending = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...pending];
            continue;
          } else throw err;
        }
        stack.push(fh);
        done.push(part);
      }
      const result = stack.pop();
      await closeAll();
      const handle = result ?? (await open(fdPath(this.handle.fd), DIR_FLAGS & ~O_NOFOLLOW));
      return new Dir(this, handle, `/${done.join('/')}`, created);
    } catch (err) {
      await closeAll();
      throw err;
    }
  }

  /** Run `fn` with the folder open; it is closed afterwards. */
  async withDir<T>(nodeDir: string, opts: DirOptions, fn: (dir: Dir) => Promise<T>): Promise<T> {
    const dir = await this.dir(nodeDir, opts);
    try {
      return await fn(dir);
    } finally {
      await dir.close();
    }
  }

  /** The folder at `nodeDir`, or undefined when it (or a folder on the way) does not exist. */
  async dirIfPresent(nodeDir: string, opts: Omit<DirOptions, 'create'> = {}): Promise<Dir | undefined> {
    try {
      return await this.dir(nodeDir, opts);
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Refuse now, before anything is downloaded, a folder that could not be written later: a link on
   * the way that leaves the root, or a file where a folder goes. A folder that does not exist yet is
   * fine (it will be made). The writes themselves check again, at the moment they happen.
   */
  async assertWritable(nodeDirs: Iterable<string>, opts: { private?: boolean } = {}): Promise<void> {
    for (const d of new Set(nodeDirs)) {
      const dir = await this.dirIfPresent(d, opts);
      await dir?.close();
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

/** `dir/name` split for a node path. */
export function splitNodePath(nodePath: string): { dir: string; name: string } {
  return { dir: path.posix.dirname(nodePath), name: path.posix.basename(nodePath) };
}
