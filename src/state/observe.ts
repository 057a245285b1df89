/**
 * What is on disk now, compared with what node-prep recorded. A file whose size and mtime match the
 * record is taken as unchanged without hashing it (the way git's index does), so a no-op re-run reads
 * a few stat results instead of hundreds of megabytes; anything else is hashed.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { sha256File } from '../install/hash.ts';
import { inRoot } from '../node/paths.ts';
import type { ManifestFile } from './manifest.ts';

export type Observed =
  | { kind: 'absent' }
  | { kind: 'other'; what: string }
  | { kind: 'file'; sha256: string; size: number; mtimeMs: number; mode: number };

export async function observe(root: string, nodePath: string, recorded?: ManifestFile): Promise<Observed> {
  const file = inRoot(root, nodePath);
  const st = await lstat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return err.code;
    throw err;
  });
  if (st === 'ENOTDIR') return { kind: 'other', what: await blockingAncestor(root, nodePath) };
  if (st === 'ENOENT' || !st) return { kind: 'absent' };
  if (!st.isFile()) return { kind: 'other', what: st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symlink' : 'not a regular file' };
  const mode = st.mode & 0o7777;
  if (recorded?.size === st.size && recorded.mtimeMs === st.mtimeMs && recorded.ctimeMs === st.ctimeMs && recorded.ino === st.ino) {
    return { kind: 'file', sha256: recorded.sha256, size: st.size, mtimeMs: st.mtimeMs, mode };
  }
  return { kind: 'file', sha256: await sha256File(file), size: st.size, mtimeMs: st.mtimeMs, mode };
}

/** For a path whose folder cannot be made: which ancestor is in the way, and what it is. */
async function blockingAncestor(root: string, nodePath: string): Promise<string> {
  for (let d = path.posix.dirname(nodePath); d !== '/'; d = path.posix.dirname(d)) {
    const st = await lstat(inRoot(root, d)).catch(() => undefined);
    if (st && !st.isDirectory()) return `below ${d}, which is ${st.isSymbolicLink() ? 'a symlink' : st.isFile() ? 'a regular file' : 'not a folder'}`;
  }
  return 'below something that is not a folder';
}

/** Stat facts to record after writing, so the next run can skip hashing. */
export async function statFacts(root: string, nodePath: string): Promise<{ size: number; mtimeMs: number; ctimeMs: number; ino: number }> {
  const st = await lstat(inRoot(root, nodePath));
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}
