import type { Stats } from 'node:fs';
import { lstat, readlink, stat } from 'node:fs/promises';
import path from 'node:path';

export type Resolved = { kind: 'found'; path: string; stats: Stats } | { kind: 'missing'; detail: string };

/**
 * Follow symlinks as the image would see them: an absolute target (/sbin/init -> /lib/systemd/systemd)
 * starts again at the image root, never at this host's /, and `..` stops at the root.
 */
export async function resolveInRoot(root: string, nodePath: string): Promise<Resolved> {
  let pending = nodePath.split('/').filter(Boolean);
  let done: string[] = [];
  for (let links = 0; pending.length > 0; ) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const hostPath = path.join(root, ...done, part);
    let stats: Stats;
    try {
      stats = await lstat(hostPath);
    } catch (error) {
      return { kind: 'missing', detail: `${(error as NodeJS.ErrnoException).code ?? 'error'} at /${[...done, part].join('/')}` };
    }
    if (!stats.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++links > 40) return { kind: 'missing', detail: 'too many levels of symbolic links' };
    const target = await readlink(hostPath);
    if (target.startsWith('/')) done = [];
    pending = [...target.split('/').filter(Boolean), ...pending];
  }
  const resolved = `/${done.join('/')}`;
  return { kind: 'found', path: resolved, stats: await stat(path.join(root, ...done)) };
}
