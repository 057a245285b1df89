/**
 * Under --root the smoke test runs the image's binaries as root on this host. The image may belong to
 * a less trusted user who can swap them after they were installed, so they are not run where they
 * are: each binary node-prep recorded in the prefix is copied, through the root's descriptors (no
 * link followed), into the smoke test's private scratch folder, and the copy is used only if its
 * bytes are the recorded ones. PATH, the version checks, containerd, its shim and runc all run those
 * copies.
 */
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { copyHandle } from '../install/atomic.ts';
import { RootFs } from '../install/root-fs.ts';
import { openNodeFile, readManifest } from '../state/manifest.ts';
import { installedBinaries, type InstalledBinaries } from './binaries.ts';

export interface PrivateBinaries {
  bins: InstalledBinaries;
  /** Node path → private copy, for the binaries a config names (a runtime's BinaryName). */
  copyOf: Map<string, string>;
  /** Recorded binaries that are not as recorded (or gone): not copied, so not run. */
  problems: string[];
}

export async function privateBinaries(root: string, prefix: string, scratch: string): Promise<PrivateBinaries> {
  const binDir = path.join(scratch, 'bin');
  const sbinDir = path.join(scratch, 'sbin');
  await mkdir(binDir, { mode: 0o700 });
  await mkdir(sbinDir, { mode: 0o700 });
  const copyOf = new Map<string, string>();
  const problems: string[] = [];
  const m = await readManifest(root);
  const fs = await RootFs.open(root);
  try {
    for (const [nodePath, f] of Object.entries(m?.files ?? {})) {
      const dir = path.posix.dirname(nodePath);
      const to = dir === path.posix.join(prefix, 'bin') ? binDir : dir === path.posix.join(prefix, 'sbin') ? sbinDir : undefined;
      if (!to) continue;
      const opened = await openNodeFile(fs, nodePath);
      if (!opened) {
        problems.push(`${nodePath} is gone, or no longer a regular file (node-prep installed it)`);
        continue;
      }
      const dest = path.join(to, path.posix.basename(nodePath));
      const out = await open(dest, 'wx', 0o700);
      let sha256: string;
      try {
        sha256 = (await copyHandle(opened.fh, out)).sha256;
      } finally {
        await out.close();
        await opened.fh.close();
      }
      if (sha256 !== f.sha256) {
        // Not left in the private PATH either.
        await rm(dest, { force: true });
        problems.push(`${nodePath} changed since node-prep installed it (sha256 ${sha256.slice(0, 12)}…, recorded ${f.sha256.slice(0, 12)}…)`);
        continue;
      }
      copyOf.set(nodePath, dest);
    }
  } finally {
    await fs.close();
  }
  if (!m) problems.push('node-prep has no record of what it installed in this root');
  return { bins: installedBinaries('/', '/', { binDir, sbinDir }), copyOf, problems };
}
