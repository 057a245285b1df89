/**
 * What is on disk now, compared with what node-prep recorded. A file whose size and mtime match the
 * record is taken as unchanged without hashing it (the way git's index does), so a no-op re-run reads
 * a few stat results instead of hundreds of megabytes; anything else is hashed.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { sha256Handle } from '../install/atomic.ts';
import { describeType, NotAFolderError, OutsideRootError, RootFs, splitNodePath } from '../install/root-fs.ts';
import { NodePrepError } from '../errors.ts';
import { inRoot } from '../node/paths.ts';
import type { ManifestFile } from './manifest.ts';

export type Observed =
  | { kind: 'absent' }
  | { kind: 'other'; what: string }
  | { kind: 'file'; sha256: string; size: number; mtimeMs: number; mode: number };

/**
 * Read through the root's descriptors (root-fs.ts): what is hashed is the file at that path inside
 * the root, never one a link on the way leads to outside it.
 */
export async function observe(root: string, nodePath: string, recorded?: ManifestFile): Promise<Observed> {
  const fs = await RootFs.openExisting(root);
  if (!fs) return { kind: 'absent' };
  try {
    const { dir: d, name } = splitNodePath(nodePath);
    let dir;
    try {
      dir = await fs.dirIfPresent(d);
    } catch (err) {
      if (err instanceof OutsideRootError) return { kind: 'other', what: `behind the symlink ${String(err.fields.path)} -> ${String(err.fields.target)}, which leads outside the root` };
      if (err instanceof NotAFolderError) return { kind: 'other', what: await blockingAncestor(root, nodePath) };
      throw err;
    }
    if (!dir) return { kind: 'absent' };
    try {
      const st = await dir.lstat(name);
      if (!st) return { kind: 'absent' };
      if (!st.isFile()) return { kind: 'other', what: st.isDirectory() ? 'a directory' : describeType(st) };
      const mode = st.mode & 0o7777;
      if (recorded?.size === st.size && recorded.mtimeMs === st.mtimeMs && recorded.ctimeMs === st.ctimeMs && recorded.ino === st.ino) {
        return { kind: 'file', sha256: recorded.sha256, size: st.size, mtimeMs: st.mtimeMs, mode };
      }
      const opened = await dir.openRegular(name).catch(() => undefined);
      if (!opened) return { kind: 'other', what: 'changing while it is read' };
      try {
        return { kind: 'file', sha256: await sha256Handle(opened.fh), size: opened.st.size, mtimeMs: opened.st.mtimeMs, mode: opened.st.mode & 0o7777 };
      } finally {
        await opened.fh.close();
      }
    } finally {
      await dir.close();
    }
  } finally {
    await fs.close();
  }
}

/** For a path whose folder cannot be made: which ancestor is in the way, and what it is. */
async function blockingAncestor(root: string, nodePath: string): Promise<string> {
  for (let d = path.posix.dirname(nodePath); d !== '/'; d = path.posix.dirname(d)) {
    const st = await lstat(inRoot(root, d)).catch(() => undefined);
    if (st && !st.isDirectory()) return `below ${d}, which is ${st.isSymbolicLink() ? 'a symlink' : st.isFile() ? 'a regular file' : 'not a folder'}`;
  }
  return 'below something that is not a folder';
}

/** Stat facts to record after writing (through the root's descriptors), so the next run can skip hashing. */
export async function statFacts(root: string, nodePath: string): Promise<{ size: number; mtimeMs: number; ctimeMs: number; ino: number }> {
  const { dir, name } = splitNodePath(nodePath);
  const st = await RootFs.with(root, {}, (fs) => fs.withDir(dir, {}, (d) => d.lstat(name)));
  if (!st?.isFile()) throw new NodePrepError('DISK_CHANGED', `${inRoot(root, nodePath)} changed right after node-prep wrote it.`, { hint: 'Stop whatever changes it, then run node-prep again.' });
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}
