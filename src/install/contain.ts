/**
 * `--root DIR` must never write outside DIR, and a symlinked folder inside DIR (`DIR/etc -> /etc`,
 * a link left by an image's own build) would send writes there: rename(2) and mkdir follow links in
 * the parent path. Every folder node-prep writes into is resolved first, and one that lands outside
 * the root stops the run before anything is written.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { NodePrepError } from '../errors.ts';

export async function assertContained(root: string, nodePaths: Iterable<string>): Promise<void> {
  if (root === '/') return;
  // The root itself may not exist yet (install creates it): resolve what of it does.
  const realRoot = await realpathOfDeepestExisting(root);
  const seen = new Set<string>();
  for (const nodePath of nodePaths) {
    const dir = path.posix.dirname(nodePath);
    if (seen.has(dir)) continue;
    seen.add(dir);
    const real = await realpathOfDeepestExisting(path.join(root, dir));
    if (real !== realRoot && !real.startsWith(`${realRoot}/`)) {
      throw new NodePrepError('OUTSIDE_ROOT', `${path.join(root, dir)} leads outside ${root} (to ${real}): a symlinked folder in the image root.`, {
        hint: `node-prep writes only inside --root. Replace the link with a real folder, or install with --root pointing at the real tree.`,
        fields: { path: path.join(root, dir), resolved: real },
      });
    }
  }
}

/** realpath of the path, or of its deepest ancestor that exists (the rest will be created under it). */
async function realpathOfDeepestExisting(p: string): Promise<string> {
  let rest = '';
  for (let at = p; ; at = path.dirname(at)) {
    try {
      return path.join(await realpath(at), rest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || at === path.dirname(at)) throw err;
      rest = path.join(path.basename(at), rest);
    }
  }
}
