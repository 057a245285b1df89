/**
 * What is on disk now, compared with what node-prep recorded. A file whose size and mtime match the
 * record is taken as unchanged without hashing it (the way git's index does), so a no-op re-run reads
 * a few stat results instead of hundreds of megabytes; anything else is hashed.
 */
import { lstat } from 'node:fs/promises';
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
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (!st) return { kind: 'absent' };
  if (!st.isFile()) return { kind: 'other', what: st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symlink' : 'not a regular file' };
  const mode = st.mode & 0o7777;
  if (recorded?.size === st.size && recorded.mtimeMs === st.mtimeMs && recorded.ctimeMs === st.ctimeMs && recorded.ino === st.ino) {
    return { kind: 'file', sha256: recorded.sha256, size: st.size, mtimeMs: st.mtimeMs, mode };
  }
  return { kind: 'file', sha256: await sha256File(file), size: st.size, mtimeMs: st.mtimeMs, mode };
}

/** Stat facts to record after writing, so the next run can skip hashing. */
export async function statFacts(root: string, nodePath: string): Promise<{ size: number; mtimeMs: number; ctimeMs: number; ino: number }> {
  const st = await lstat(inRoot(root, nodePath));
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}
