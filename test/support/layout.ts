/** Snapshots of a folder tree, to show what an install or uninstall changed (or did not). */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from './fixtures.ts';
import type { ReposMap } from './release-server.ts';

export interface Snapshot {
  [relPath: string]: { type: 'dir' | 'file' | 'link'; mode: number; mtimeMs: number; ino: number; sha256?: string; target?: string };
}

export async function snapshot(root: string): Promise<Snapshot> {
  const out: Snapshot = {};
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, e.name);
      const st = await lstat(full);
      const rel = path.relative(root, full);
      if (st.isSymbolicLink()) out[rel] = { type: 'link', mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, ino: st.ino, target: await readlink(full) };
      else if (st.isDirectory()) {
        out[rel] = { type: 'dir', mode: st.mode & 0o7777, mtimeMs: 0, ino: 0 };
        await walk(full);
      } else out[rel] = { type: 'file', mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, ino: st.ino, sha256: sha256(await readFile(full)) };
    }
  };
  await walk(root);
  return out;
}

/** Content and modes only: what "the same tree" means after a restore (mtimes and inodes may differ). */
export function contentOf(s: Snapshot): Record<string, string> {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, `${v.type} ${v.mode.toString(8)} ${v.sha256 ?? v.target ?? ''}`]));
}

/** A --checksums file pinning every asset the server holds, in the TAG/ASSET form. */
export function checksumsFor(repos: ReposMap): string {
  const lines: string[] = [];
  for (const list of Object.values(repos)) {
    for (const rel of list) {
      for (const [name, body] of Object.entries(rel.assets)) if (Buffer.isBuffer(body)) lines.push(`${sha256(body)}  ${rel.tag}/${name}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
