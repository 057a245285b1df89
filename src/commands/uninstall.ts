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
 * /var/lib/containerd, /run/containerd, /opt/containerd and /var/lib/nerdctl, and the CNI conf dir
 * containerd makes for itself (/etc/cni/net.d, /etc/cni) when it is empty. Configuration folders are not purged:
 * /etc/containerd/conf.d and /etc/containerd/certs.d hold other tools' drop-ins and registry
 * credentials and CAs; they lose only the files node-prep recorded (as always), and the folders
 * themselves only when node-prep created them and they are empty.
 */
import path from 'node:path';
import { RootFs, splitNodePath, type Dir } from '../install/root-fs.ts';
import { systemdIsPid1 } from '../node/init.ts';
import { descendants, mountsBelow, runningShims } from '../node/shims.ts';
import { COMPONENT_NAMES, COMPONENTS } from '../components/index.ts';
import type { Context } from './context.ts';
import type { Emit } from '../events.ts';
import { NodePrepError, UsageError } from '../errors.ts';
import { NODE_PATHS, inRoot } from '../node/paths.ts';
import { describeRepair, repairInterrupted } from '../apply/journal.ts';
import { START_VERDICT_MS } from '../apply/services.ts';
import { uninstallCalls } from '../apply/takeover.ts';
import { acquireLock } from '../state/lock.ts';
import {
  BackupError,
  MANIFEST_PATH,
  BACKUPS_DIR,
  observeFiles,
  openStateDir,
  readManifest,
  removeManifest,
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
  /** The unit found before the first install (a package's), given back: what was done with it. */
  givenBack?: string[];
  /** --stop-containers: what was stopped (`namespace/id`) and unmounted. */
  stoppedContainers?: string[];
}

/** Where containerd's shims mount a task's rootfs and a pod's shm: unmounted once their shims are stopped. */
const TASK_MOUNTS = ['/run/containerd/io.containerd.runtime.v2.task', '/run/containerd/io.containerd.grpc.v1.cri'];

export type Confirm = (question: string) => Promise<boolean>;

/** The runtime's state (images, snapshots, containers, sockets); never configuration. */
/** The runtime state each component keeps, from the catalog. */
const PURGE = COMPONENT_NAMES.flatMap((n) => COMPONENTS[n].purgePaths);
const PURGE_IF_EMPTY = COMPONENT_NAMES.flatMap((n) => COMPONENTS[n].purgeIfEmpty ?? []);

const KEPT_REASON = 'changed since node-prep wrote it (use --force to remove it)';

export async function uninstallCommand(ctx: Context, emit: Emit, confirm?: Confirm): Promise<{ report: UninstallReport; text: string }> {
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
  const fs = await RootFs.openExisting(root);
  if (!fs) return { report, text: `node-prep has installed nothing in ${root}: nothing to remove.\n` };
  const lock = o.dryRun ? undefined : await acquireLock(root).catch(async (err: unknown) => {
    await fs.close();
    throw err;
  });
  let emptyDirs: string[] = [];
  try {
    // A dead install's transaction is finished first: what is removed is what the record says.
    if (!o.dryRun) {
      const said = describeRepair(await repairInterrupted(root));
      if (said) emit({ type: 'warn', message: said });
    }
    const m = await readManifest(root);
    if (!m) return { report, text: `node-prep has installed nothing in ${root === '/' ? 'this machine' : root}: nothing to remove.\n` };
    // Every folder this removes from is reached inside the root: a link on the way that leaves it
    // stops the uninstall before anything is removed (and each removal checks again as it happens).
    await fs.assertWritable([...Object.keys(m.files), ...Object.keys(m.links ?? {}), ...(o.purge ? PURGE : [])].map((p) => path.posix.dirname(p)));
    await fs.assertWritable([NODE_PATHS.stateDir, BACKUPS_DIR], { private: true });

    // Containers still running under node-prep's containerd: refused unless told to stop them.
    const shimBinaries = Object.keys(m.files).filter((p) => path.posix.basename(p).startsWith('containerd-shim'));
    const shims = root === '/' ? await runningShims(shimBinaries) : [];
    const running = shims.map((s) => `${s.namespace ?? '?'}/${s.id ?? `pid ${s.pid}`}`);
    if (shims.length > 0 && !o.stopContainers && !o.dryRun) {
      throw new NodePrepError('CONTAINERS_RUNNING', `${shims.length} container${shims.length === 1 ? ' is' : 's are'} still running under node-prep's containerd: ${running.slice(0, 10).join(', ')}${running.length > 10 ? ', …' : ''}.`, {
        hint: 'Nothing was removed. Stop them (crictl stop / nerdctl stop, or drain the node), or run uninstall with --stop-containers to stop their shims and unmount their rootfs.',
        fields: { containers: running },
      });
    }
    if (o.purge && !o.dryRun && !o.yes) {
      const what = PURGE.map((p) => inRoot(root, p)).join(', ');
      if (!confirm) {
        throw new UsageError(`uninstall --purge removes the runtime's state (${what}): images, snapshots and containers. Without a terminal to ask on, it needs --yes.`, 'Add --yes to confirm.');
      }
      if (!(await confirm(`Remove ${what} (images, snapshots, containers)?`))) {
        throw new NodePrepError('NOT_CONFIRMED', 'Nothing was removed: the purge was not confirmed.', { hint: 'Run it again and answer y, or give --yes.' });
      }
    }

    const systemd = !o.dryRun && root === '/' && (await systemdIsPid1());
    const calls = uninstallCalls(m.foundUnit);
    if (systemd) {
      for (const args of calls.before) {
        const r = await ctx.exec.run('systemctl', args, { timeoutMs: 120_000 });
        report.serviceStopped = r.exitCode === 0;
        if (r.exitCode !== 0) emit({ type: 'warn', message: `systemctl ${args.join(' ')} failed: ${String(r.stderr).trim().split('\n').pop()}` });
      }
    }

    if (shims.length > 0 && o.stopContainers && !o.dryRun) {
      // As k3s-killall.sh does: the containers' processes, then their shims, then their mounts.
      for (const shim of shims) {
        for (const pid of [...(await descendants(shim.pid)).reverse(), shim.pid]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
      await waitGone(shims.map((s) => s.pid));
      const unmounted: string[] = [];
      for (const mount of await mountsBelow(TASK_MOUNTS)) {
        const r = await ctx.exec.run('umount', [mount], { timeoutMs: 30_000 });
        if (r.exitCode === 0) unmounted.push(mount);
        else emit({ type: 'warn', message: `could not unmount ${mount}: ${String(r.stderr).trim().split('\n').pop()}` });
      }
      report.stoppedContainers = [...running, ...unmounted.map((u) => `unmounted ${u}`)];
    }

    // Listed before any restore: what is in the backups folder that no record names.
    const recordedBackups = new Set(Object.values(m.backups).map((b) => b.backupPath));
    report.unrecordedBackups = (await filesUnder(fs, BACKUPS_DIR)).filter((p) => !recordedBackups.has(p));

    const keptFiles: Manifest['files'] = {};
    const restoredEarlier = new Set<string>();
    const observed = await observeFiles(root, Object.keys(m.files));
    for (const [nodePath, f] of Object.entries(m.files).sort(([a], [b]) => a.localeCompare(b))) {
      const now = observed.get(nodePath);
      if (now === undefined) continue;
      // The original is back already (an uninstall cut off after restoring it): not someone's edit.
      if (now !== f.sha256 && m.backups[nodePath]?.sha256 === now) {
        restoredEarlier.add(nodePath);
        continue;
      }
      if (now !== f.sha256 && !o.force) {
        keptFiles[nodePath] = f;
        const backup = m.backups[nodePath]?.backupPath;
        report.kept.push({ path: nodePath, reason: KEPT_REASON, ...(backup ? { backup } : {}) });
        const original = backup ? `; the original it replaced stays at ${inRoot(root, backup)}` : '';
        emit({ type: 'warn', message: `kept ${inRoot(root, nodePath)}: it changed since node-prep wrote it; --force removes it${original}` });
        continue;
      }
      if (!o.dryRun) await inParent(fs, nodePath, (d, name) => d.unlinkIfPresent(name));
      report.removed.push(nodePath);
    }
    for (const [nodePath, target] of Object.entries(m.links ?? {})) {
      const ours = await inParent(fs, nodePath, async (d, name) => (await d.lstat(name))?.isSymbolicLink() === true && (await d.readlink(name)) === target);
      if (ours) {
        if (!o.dryRun) await inParent(fs, nodePath, (d, name) => d.unlinkIfPresent(name));
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
      if (restoredEarlier.has(nodePath)) {
        // Its copy, if the cut-off run had not removed it yet, is the same bytes: it goes now.
        if (!o.dryRun) await inParent(fs, b.backupPath, (d, name) => d.unlinkIfPresent(name), { private: true });
        report.restored.push(nodePath);
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
      const rootDev = root === '/' ? undefined : await fs.withDir('/', {}, async (d) => (await d.handle.stat()).dev);
      for (const p of PURGE) {
        const st = await inParent(fs, p, (d, name) => d.lstat(name));
        if (!st) continue;
        // An image root with the host's /run or /var/lib bind-mounted into it: that state is the host's.
        if (rootDev !== undefined && st.dev !== rootDev) {
          emit({ type: 'warn', message: `left ${inRoot(root, p)}: it is on another file system than ${root} (mounted into it), so not the image's to purge` });
          continue;
        }
        if (!o.dryRun) await inParent(fs, p, (d, name) => d.removeTree(name));
        report.purged.push(p);
      }
      for (const p of PURGE_IF_EMPTY) {
        // rmdir removes only an empty folder, never a link; a dry run looks inside instead.
        const gone = o.dryRun
          ? await inParent(fs, p, async (d, name) => {
              const sub = await d.sub(name).catch(() => undefined);
              return sub ? (await sub.readdir().finally(() => sub.close())).length === 0 : false;
            })
          : await inParent(fs, p, (d, name) => d.rmdirIfEmpty(name));
        if (!gone) continue;
        report.purged.push(p);
      }
    }

    // The unit found before node-prep's first install (a package's) is systemd's again: as it was.
    if (systemd) {
      for (const args of calls.after) {
        const r = await ctx.exec.run('systemctl', args, { timeoutMs: args[0] === 'start' ? START_VERDICT_MS : 60_000 });
        if (r.exitCode !== 0) emit({ type: 'warn', message: `systemctl ${args.join(' ')} failed: ${String(r.stderr).trim().split('\n').pop()}` });
        else if (args[0] === 'enable' || args[0] === 'start') {
          (report.givenBack ??= []).push(`${args[0] === 'enable' ? 'enabled' : 'started'} containerd from ${m.foundUnit?.fragmentPath ?? 'its own unit'}`);
        }
      }
    }

    // Folders node-prep created that hold a kept file stay recorded, so that `--force` removes them later.
    const keptPaths = [...Object.keys(keptFiles), ...Object.values(keptBackups).map((b) => b.backupPath)];
    const keptDirs = (m.dirs ?? []).filter((d) => keptPaths.some((p) => p.startsWith(`${d}/`)));
    const remains = Object.keys(keptFiles).length + Object.keys(keptBackups).length > 0;
    if (remains) report.record = MANIFEST_PATH;
    if (!o.dryRun) {
      if (remains) await writeManifest(root, reducedManifest(m, keptFiles, keptBackups, keptDirs));
      else await removeManifest(root);
      const state = await openStateDir(fs);
      if (state) {
        try {
          // Only folders: every backup file still there is either recorded or listed as unrecorded.
          const backups = await state.sub('backups');
          if (backups) await removeEmptyDirs(backups).finally(() => backups.close());
          await state.rmdirIfEmpty('backups');
          await state.removeTree('tx');
        } finally {
          await state.close();
        }
      }
      // A cache a version before 0.2 kept inside the root (the default cache is outside it now).
      if (!o.cacheDir) await inParent(fs, NODE_PATHS.cacheDir, (d, name) => d.removeTree(name), { private: true });
      emptyDirs = (m.dirs ?? []).filter((d) => !keptDirs.includes(d));
    }
  } finally {
    await lock?.release();
  }
  // Folders node-prep created, deepest first, when nothing else lives in them now (the state
  // folder too, once the lock is gone).
  try {
    for (const d of [NODE_PATHS.stateDir, ...emptyDirs].sort((a, b) => b.split('/').length - a.split('/').length)) {
      await inParent(fs, d, (p, name) => p.rmdirIfEmpty(name)).catch(() => undefined);
    }
  } finally {
    await fs.close();
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
  for (const g of report.givenBack ?? []) lines.push(`  ${g} (as it was before node-prep's first install)`);
  for (const c of report.stoppedContainers ?? []) lines.push(`  stopped ${c}`);
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

/** Wait (a few seconds at most) until the processes are gone. */
async function waitGone(pids: number[]): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    if (alive.length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Run `fn` on the folder that holds `nodePath` (opened inside the root) and its name; undefined when
 * that folder does not exist.
 */
async function inParent<T>(fs: RootFs, nodePath: string, fn: (dir: Dir, name: string) => Promise<T>, opts: { private?: boolean } = {}): Promise<T | undefined> {
  const { dir, name } = splitNodePath(nodePath);
  const d = await fs.dirIfPresent(dir, opts);
  if (!d) return undefined;
  try {
    return await fn(d, name);
  } finally {
    await d.close();
  }
}

/** Node paths of the regular files (and links) under `nodeDir`, sorted; no link is followed. */
async function filesUnder(fs: RootFs, nodeDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: Dir): Promise<void> => {
    for (const name of (await dir.readdir()).sort()) {
      const st = await dir.lstat(name);
      if (st?.isDirectory()) {
        const sub = await dir.sub(name).catch(() => undefined);
        if (sub) await walk(sub).finally(() => sub.close());
      } else if (st) out.push(dir.nodePathOf(name));
    }
  };
  const top = await fs.dirIfPresent(nodeDir, { private: true });
  if (top) await walk(top).finally(() => top.close());
  return out.sort();
}

/** Removes the empty folders inside `dir`, deepest first; never a file. */
async function removeEmptyDirs(dir: Dir): Promise<void> {
  for (const name of await dir.readdir()) {
    if (!(await dir.lstat(name))?.isDirectory()) continue;
    const sub = await dir.sub(name).catch(() => undefined);
    if (!sub) continue;
    await removeEmptyDirs(sub).finally(() => sub.close());
    await dir.rmdirIfEmpty(name);
  }
}
