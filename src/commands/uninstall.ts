/**
 * `node-prep uninstall`: remove exactly what the record lists, put back what was backed up, and leave
 * the root as node-prep found it. A file changed since node-prep wrote it is kept (with a warning)
 * unless --force. --purge also removes containerd's state.
 */
import { lstat, readlink, rm, rmdir, unlink } from 'node:fs/promises';
import { execa } from 'execa';
import { systemdIsPid1 } from '../apply/services.ts';
import type { Context } from '../cli/context.ts';
import type { Emit } from '../events.ts';
import { NodePrepError } from '../errors.ts';
import { NODE_PATHS, inRoot } from '../plan/paths.ts';
import { acquireLock } from '../state/lock.ts';
import { MANIFEST_PATH, BACKUPS_DIR, observeFiles, readManifest, restoreBackup } from '../state/manifest.ts';

export interface UninstallReport {
  kind: 'uninstall';
  dryRun: boolean;
  removed: string[];
  kept: Array<{ path: string; reason: string }>;
  restored: string[];
  purged: string[];
  serviceStopped: boolean;
}

/** containerd's own state: images, snapshots, sockets, and the CNI state the kubelet's pods left. */
const PURGE = ['/var/lib/containerd', '/run/containerd', '/var/lib/nerdctl', '/etc/containerd/conf.d', '/etc/containerd/certs.d'];

export async function uninstallCommand(ctx: Context, emit: Emit): Promise<{ report: UninstallReport; text: string }> {
  const o = ctx.options;
  const root = o.root;
  if (root === '/' && process.getuid?.() !== 0 && !o.dryRun) {
    throw new NodePrepError('NOT_ROOT', 'node-prep uninstall changes /usr/local, /etc and services, so it needs root.', { hint: 'Run it with sudo.' });
  }
  const report: UninstallReport = { kind: 'uninstall', dryRun: o.dryRun, removed: [], kept: [], restored: [], purged: [], serviceStopped: false };
  const lock = o.dryRun ? undefined : await acquireLock(root);
  let createdDirs: string[] = [];
  try {
    const m = await readManifest(root);
    if (!m) return { report, text: `node-prep has installed nothing in ${root === '/' ? 'this machine' : root}: nothing to remove.\n` };

    if (!o.dryRun && root === '/' && (await systemdIsPid1())) {
      const r = await execa('systemctl', ['disable', '--now', 'containerd'], { reject: false, timeout: 120_000 });
      report.serviceStopped = r.exitCode === 0;
      if (r.exitCode !== 0) emit({ type: 'warn', message: `systemctl disable --now containerd failed: ${String(r.stderr).trim().split('\n').pop()}` });
    }

    const observed = await observeFiles(root, Object.keys(m.files));
    for (const [nodePath, f] of Object.entries(m.files).sort(([a], [b]) => a.localeCompare(b))) {
      const now = observed.get(nodePath);
      if (now === undefined) continue;
      if (now !== f.sha256 && !o.force) {
        report.kept.push({ path: nodePath, reason: 'changed since node-prep wrote it (use --force to remove it)' });
        emit({ type: 'warn', message: `kept ${inRoot(root, nodePath)}: it changed since node-prep wrote it; --force removes it` });
        continue;
      }
      if (!o.dryRun) await unlink(inRoot(root, nodePath));
      report.removed.push(nodePath);
    }
    for (const [nodePath, target] of Object.entries(m.links ?? {})) {
      const link = inRoot(root, nodePath);
      const st = await lstat(link).catch(() => undefined);
      if (st?.isSymbolicLink() && (await readlink(link)) === target) {
        if (!o.dryRun) await unlink(link);
        report.removed.push(nodePath);
      }
    }
    for (const [nodePath, b] of Object.entries(m.backups)) {
      if (report.kept.some((k) => k.path === nodePath)) continue;
      if (!o.dryRun) await restoreBackup(root, nodePath, b);
      report.restored.push(nodePath);
    }
    if (o.purge) {
      for (const p of PURGE) {
        if (!(await lstat(inRoot(root, p)).then(() => true, () => false))) continue;
        if (!o.dryRun) await rm(inRoot(root, p), { recursive: true, force: true });
        report.purged.push(p);
      }
    }
    if (!o.dryRun) {
      // node-prep's own state and, when it lives in the root, its download cache.
      await rm(inRoot(root, MANIFEST_PATH), { force: true });
      await rm(inRoot(root, BACKUPS_DIR), { recursive: true, force: true });
      await rm(inRoot(root, `${NODE_PATHS.stateDir}/tx`), { recursive: true, force: true });
      if (!o.cacheDir) await rm(inRoot(root, NODE_PATHS.cacheDir), { recursive: true, force: true });
      createdDirs = m.dirs ?? [];
    }
  } finally {
    await lock?.release();
  }
  // Folders node-prep created, deepest first, when nothing else lives in them now (the state
  // folder too, once the lock is gone).
  for (const d of [NODE_PATHS.stateDir, ...createdDirs].sort((a, b) => b.split('/').length - a.split('/').length)) {
    if (d === NODE_PATHS.stateDir || createdDirs.includes(d)) await rmdir(inRoot(root, d)).catch(() => undefined);
  }
  const lines = [`${o.dryRun ? 'Would remove' : 'Removed'} ${report.removed.length} files.`];
  for (const p of report.restored) lines.push(`  ${o.dryRun ? 'would restore' : 'restored'} ${inRoot(root, p)} from its backup`);
  for (const k of report.kept) lines.push(`  kept ${inRoot(root, k.path)}: ${k.reason}`);
  for (const p of report.purged) lines.push(`  ${o.dryRun ? 'would purge' : 'purged'} ${inRoot(root, p)}`);
  return { report, text: `${lines.join('\n')}\n` };
}
