/**
 * Replace one file so that readers see the old or the new content, never a mix, and a crash leaves one
 * of the two. The new content goes to a temp file beside `dest` (same directory = same file system, so
 * rename(2) is atomic), is fsynced, then renamed over `dest`; the directory is fsynced so the rename
 * itself survives a power cut.
 *
 * The existing file is never opened for writing: a running containerd keeps executing its old inode
 * while the name points at the new one, so there is no ETXTBSY ("text file busy"). A symlink at `dest`
 * is replaced, not followed.
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { chmod, chown, copyFile, mkdir, open, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';

export type AtomicSource = { file: string } | { data: string | Buffer };

/** `.containerd.node-prep-1a2b3c4d5e6f` next to `containerd`: hidden, and recognisably ours if a crash leaves it. */
export function tempPathFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.node-prep-${randomBytes(6).toString('hex')}`);
}


export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * mkdir -p with every created directory at exactly 0755 (mkdir's mode is masked by the umask, and a
 * root shell with umask 077 would otherwise hide /opt/cni/bin from the kubelet). Returns the
 * directories it created, outermost first, so a rollback can remove them again.
 */
export async function ensureDir(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = await stat(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (st) break; // exists (a non-directory makes the mkdir below fail with ENOTDIR, naming it)
    missing.unshift(d);
    if (d === path.dirname(d)) break;
  }
  const created: string[] = [];
  for (const d of missing) {
    try {
      await mkdir(d, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // a concurrent creator won
      throw err;
    }
    await chmod(d, 0o755);
    created.push(d);
  }
  return created;
}

export async function atomicReplace(dest: string, from: AtomicSource, mode: number): Promise<void> {
  const dir = path.dirname(dest);
  await ensureDir(dir);
  const tmp = tempPathFor(dest);
  let renamed = false;
  try {
    if ('file' in from) {
      // copy_file_range/reflink where the kernel can; EXCL so a planted file or symlink is never reused.
      await copyFile(from.file, tmp, constants.COPYFILE_EXCL);
    }
    // 'wx' (O_CREAT|O_EXCL) for data; 'r+' to fchmod + fsync the copy made above.
    const fh = await open(tmp, 'file' in from ? 'r+' : 'wx', 0o600);
    try {
      if ('data' in from) await fh.writeFile(from.data);
      await fh.chmod(mode); // fchmod: exact mode, whatever the umask
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
    renamed = true;
    await fsyncDir(dir);
  } finally {
    if (!renamed) await rm(tmp, { force: true });
  }
}

/**
 * A copy of a file that keeps its mode, times and (when allowed) owner, synced to disk: the backups
 * of files node-prep replaces, which must come back exactly as they were.
 */
export async function copyKeepingMetadata(src: string, dst: string, st: Stats): Promise<void> {
  await copyFile(src, dst, constants.COPYFILE_EXCL);
  const fh = await open(dst, 'r+');
  try {
    await fh.chmod(st.mode & 0o7777);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await utimes(dst, st.atime, st.mtime);
  await chown(dst, st.uid, st.gid).catch(() => undefined); // only root may; content and mode are what matter
}
