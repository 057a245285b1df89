/**
 * `node-prep uninstall`: remove exactly what the record lists, put back what was backed up, and leave
 * the root as node-prep found it.
 *
 * Nothing is lost on the way. A file changed since node-prep wrote it is kept (with a warning) unless
 * --force, and so is the backup of the original it replaced: the record is then rewritten to list only
 * what remains (the kept files and their backups), so a later `uninstall --force` finishes the job. A
 * backup is deleted only by restoring it; copies in the backups folder that no record names (install
 * keeps one of each edited file it replaces) are left where they are and listed.
 *
 * --purge also removes the runtime's own state: images, snapshots, containers and sockets, in
 * /var/lib/containerd, /run/containerd and /var/lib/nerdctl. Configuration folders are not purged:
 * /etc/containerd/conf.d and /etc/containerd/certs.d hold other tools' drop-ins and registry
 * credentials and CAs; they lose only the files node-prep recorded (as always), and the folders
 * themselves only when node-prep created them and they are empty.
 */
import { lstat, readdir, readlink, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { systemdIsPid1 } from '../node/init.ts';
import { COMPONENT_NAMES, COMPONENTS } from '../components/index.ts';
import type { Context } from './context.ts';
import type { Emit } from '../events.ts';
import { NodePrepError } from '../errors.ts';
import { NODE_PATHS, inRoot } from '../node/paths.ts';
import { acquireLock } from '../state/lock.ts';
import {
  BackupError,
  MANIFEST_PATH,
  BACKUPS_DIR,
  observeFiles,
  readManifest,
  restoreBackup,
  writeManifest,
  type Manifest,
} from '../state/manifest.ts';

export interface UninstallReport {
  kind: 'uninstall';
  dryRun: boolean;
  removed: string[];
  /** Files left in place; `backup`: where the original it replaced is kept (not restored, not deleted). */
  kept: Array<{ path: string; reason: string; backup?: string }>;
  restored: string[];
  purged: string[];
  serviceStopped: boolean;
  /** Backups that could not be restored (gone, or changed since): left in place, still recorded. */
  notRestored: Array<{ path: string; backup: string; reason: string }>;
  /** Files in the backups folder no record names (copies of edited files install replaced): left in place. */
  unrecordedBackups: string[];
  /** Node path of the install record when it remains, listing only what was kept. */
  record?: string;
}

/** The runtime's state (images, snapshots, containers, sockets); never configuration. */
/** The runtime state each component keeps, from the catalog. */
const PURGE = COMPONENT_NAMES.flatMap((n) => COMPONENTS[n].purgePaths);

const KEPT_REASON = 'changed since node-prep wrote it (use --force to remove it)';

export async function uninstallCommand(ctx: Context, emit: Emit): Promise<{ report: UninstallReport; text: string }> {
  const o = ctx.options;
  const root = o.root;
  if (root === '/' && process.getuid?.() !== 0 && !o.dryRun) {
    throw new NodePrepError('NOT_ROOT', 'node-prep uninstall changes /usr/local, /etc and services, so it needs root.', { hint: 'Run it with sudo.' });
  }
  const report: UninstallReport = {
    kind: 'uninstall',
    dryRun: o.dryRun,
    removed: [],
    kept: [],
    restored: [],
    purged: [],
    serviceStopped: false,
    notRestored: [],
    unrecordedBackups: [],
  };
  const lock = o.dryRun ? undefined : await acquireLock(root);
  let emptyDirs: string[] = [];
  try {
    const m = await readManifest(root);
    if (!m) return { report, text: `node-prep has installed nothing in ${root === '/' ? 'this machine' : root}: nothing to remove.\n` };

    if (!o.dryRun && root === '/' && (await systemdIsPid1())) {
      const r = await ctx.exec.run('systemctl', ['disable', '--now', 'containerd'], { timeoutMs: 120_000 });
      report.serviceStopped = r.exitCode === 0;
      if (r.exitCode !== 0) emit({ type: 'warn', message: `systemctl disable --now containerd failed: ${String(r.stderr).trim().split('\n').pop()}` });
    }

    // Listed before any restore: what is in the backups folder that no record names.
    const recordedBackups = new Set(Object.values(m.backups).map((b) => b.backupPath));
    report.unrecordedBackups = (await filesUnder(root, BACKUPS_DIR)).filter((p) => !recordedBackups.has(p));

    const keptFiles: Manifest['files'] = {};
    const observed = await observeFiles(root, Object.keys(m.files));
    for (const [nodePath, f] of Object.entries(m.files).sort(([a], [b]) => a.localeCompare(b))) {
      const now = observed.get(nodePath);
      if (now === undefined) continue;
      if (now !== f.sha256 && !o.force) {
        keptFiles[nodePath] = f;
        const backup = m.backups[nodePath]?.backupPath;
        report.kept.push({ path: nodePath, reason: KEPT_REASON, ...(backup ? { backup } : {}) });
        const original = backup ? `; the original it replaced stays at ${inRoot(root, backup)}` : '';
        emit({ type: 'warn', message: `kept ${inRoot(root, nodePath)}: it changed since node-prep wrote it; --force removes it${original}` });
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

    // A backup is deleted only by restoring it; the backup of a kept file stays, and stays recorded.
    const keptBackups: Manifest['backups'] = {};
    for (const [nodePath, b] of Object.entries(m.backups).sort(([a], [b]) => a.localeCompare(b))) {
      if (keptFiles[nodePath]) {
        keptBackups[nodePath] = b;
        continue;
      }
      if (o.dryRun) {
        report.restored.push(nodePath);
        continue;
      }
      try {
        await restoreBackup(root, nodePath, b);
        report.restored.push(nodePath);
      } catch (err) {
        if (!(err instanceof BackupError)) throw err;
        keptBackups[nodePath] = b;
        report.notRestored.push({ path: nodePath, backup: b.backupPath, reason: err.message });
        emit({ type: 'warn', message: `${err.message} It stays recorded; node-prep did not delete it.` });
      }
    }

    if (o.purge) {
      for (const p of PURGE) {
        if (!(await lstat(inRoot(root, p)).then(() => true, () => false))) continue;
        if (!o.dryRun) await rm(inRoot(root, p), { recursive: true, force: true });
        report.purged.push(p);
      }
    }

    // Folders node-prep created that hold a kept file stay recorded, so that `--force` removes them later.
    const keptPaths = [...Object.keys(keptFiles), ...Object.values(keptBackups).map((b) => b.backupPath)];
    const keptDirs = (m.dirs ?? []).filter((d) => keptPaths.some((p) => p.startsWith(`${d}/`)));
    const remains = Object.keys(keptFiles).length + Object.keys(keptBackups).length > 0;
    if (remains) report.record = MANIFEST_PATH;
    if (!o.dryRun) {
      if (remains) await writeManifest(root, reducedManifest(m, keptFiles, keptBackups, keptDirs));
      else await rm(inRoot(root, MANIFEST_PATH), { force: true });
      // Only folders: every backup file still there is either recorded or listed as unrecorded.
      await removeEmptyDirs(inRoot(root, BACKUPS_DIR));
      await rm(inRoot(root, `${NODE_PATHS.stateDir}/tx`), { recursive: true, force: true });
      if (!o.cacheDir) await rm(inRoot(root, NODE_PATHS.cacheDir), { recursive: true, force: true });
      emptyDirs = (m.dirs ?? []).filter((d) => !keptDirs.includes(d));
    }
  } finally {
    await lock?.release();
  }
  // Folders node-prep created, deepest first, when nothing else lives in them now (the state
  // folder too, once the lock is gone).
  for (const d of [NODE_PATHS.stateDir, ...emptyDirs].sort((a, b) => b.split('/').length - a.split('/').length)) {
    await rmdir(inRoot(root, d)).catch(() => undefined);
  }
  const text = describe(report, root);
  if (report.notRestored.length > 0) {
    const first = report.notRestored[0]!;
    throw new NodePrepError('BACKUP', `Uninstalled, but the original of ${report.notRestored.map((n) => inRoot(root, n.path)).join(', ')} could not be restored: ${first.reason}`, {
      hint: `The backup is left at ${inRoot(root, first.backup)} and listed in ${inRoot(root, MANIFEST_PATH)}; check it and restore it by hand.`,
      fields: { notRestored: report.notRestored },
    });
  }
  return { report, text };
}

/** The record after an uninstall that kept something: only the kept files, their backups and folders. */
function reducedManifest(m: Manifest, files: Manifest['files'], backups: Manifest['backups'], dirs: string[]): Manifest {
  return {
    schemaVersion: 1,
    nodePrepVersion: m.nodePrepVersion,
    installedAt: m.installedAt,
    arch: m.arch,
    prefix: m.prefix,
    // Nothing is installed any more: the kept files are leftovers, not a component.
    components: {},
    files,
    backups,
    ...(dirs.length > 0 ? { dirs } : {}),
  };
}

function describe(report: UninstallReport, root: string): string {
  const dry = report.dryRun;
  const lines = [`${dry ? 'Would remove' : 'Removed'} ${report.removed.length} files.`];
  for (const p of report.restored) lines.push(`  ${dry ? 'would restore' : 'restored'} ${inRoot(root, p)} from its backup`);
  for (const k of report.kept) {
    lines.push(`  kept ${inRoot(root, k.path)}: ${k.reason}`);
    if (k.backup) lines.push(`    the original it replaced is kept at ${inRoot(root, k.backup)}; \`uninstall --force\` restores it`);
  }
  for (const n of report.notRestored) lines.push(`  NOT restored ${inRoot(root, n.path)}: ${n.reason} (the backup stays at ${inRoot(root, n.backup)})`);
  for (const p of report.purged) lines.push(`  ${dry ? 'would purge' : 'purged'} ${inRoot(root, p)}`);
  for (const p of report.unrecordedBackups) {
    lines.push(`  left ${inRoot(root, p)}: a copy install made of a file before replacing it; not restored, not deleted`);
  }
  if (report.record) {
    lines.push(
      `node-prep's record ${inRoot(root, report.record)} ${dry ? 'would list' : 'now lists'} only what was kept;`,
      '  `node-prep uninstall --force` removes the kept files and restores the originals they replaced.',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Node paths of the regular files (and links) under `nodeDir`, sorted. */
async function filesUnder(root: string, nodeDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(inRoot(root, dir), { withFileTypes: true }).catch(() => [])) {
      const p = path.posix.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(nodeDir);
  return out.sort();
}

/** Removes the empty folders in the tree at `dir` (itself included), deepest first; never a file. */
async function removeEmptyDirs(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) await removeEmptyDirs(path.join(dir, e.name));
  }
  await rmdir(dir).catch(() => undefined);
}
