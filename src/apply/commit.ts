/**
 * The transaction of an install: staged binaries of the components to install, rendered config files
 * whose content differs, the removals the plan shows, and a backup step before each replaced file
 * node-prep did not write (or that was changed since). Every path is held to what the plan's diff
 * saw: one that changed since is not replaced on a stale decision.
 */
import { stat } from 'node:fs/promises';
import { readBounded } from '../install/atomic.ts';
import { criDisabledInText } from '../config/layout.ts';
import type { Emit } from '../events.ts';
import { NodePrepError } from '../errors.ts';
import type { StagedMember } from '../install/extract.ts';
import type { RootFs } from '../install/root-fs.ts';
import { Transaction } from '../install/transaction.ts';
import { NODE_PATHS, inRoot } from '../node/paths.ts';
import { diffRemovals, isConfigPath, type DiskView } from '../plan/changes.ts';
import type { ComponentName, Plan, PlannedFile } from '../plan/types.ts';
import { BACKUPS_DIR, backupReason, openNodeFile, type Manifest } from '../state/manifest.ts';
import { observe, type Observed } from '../state/observe.ts';
import { backupStep } from './backup-step.ts';
import type { ComponentDecision } from './decide.ts';

/** A file the transaction writes, or finds already as planned. */
export interface Write {
  nodePath: string;
  component: PlannedFile['component'];
  mode: number;
  sha256: string;
}

export interface CommitInputs {
  root: string;
  /** The root, opened: every change goes through its descriptors. */
  fs: RootFs;
  plan: Plan;
  manifest: Manifest | undefined;
  toInstall: ComponentDecision[];
  staged: Map<ComponentName, StagedMember[]>;
  /** The disk as the comparison saw it. */
  disk: DiskView | undefined;
  emit: Emit;
}

export interface PreparedCommit {
  tx: Transaction;
  writes: Write[];
  /** Filled as the transaction makes the copies (and emptied again if it rolls back). */
  backups: Manifest['backups'];
  /** Files already as planned: not in the transaction. */
  unchanged: Array<{ path: string; component: PlannedFile['component']; outcome: { kind: 'unchanged' } }>;
}

export async function prepareCommit(i: CommitInputs): Promise<PreparedCommit> {
  const unchanged: PreparedCommit['unchanged'] = [];
  const m = i.manifest;
  const tx = new Transaction({ fs: i.fs, backupDir: `${NODE_PATHS.stateDir}/tx` });
  const writes: Write[] = [];
  const backups: Manifest['backups'] = {};
  // Backups are steps of the transaction: a run that fails or rolls back leaves the folder as it was.
  const backupsDirExisted = await stat(inRoot(i.root, BACKUPS_DIR)).then(() => true, () => false);
  const backUp = (nodePath: string, reason: 'foreign' | 'modified', sha256: string) => {
    // Every replaced foreign or edited file is copied; the record keeps the first one (the original
    // foreign file), which is what uninstall restores. A copy of an edit to a node-prep file is
    // kept for the operator, not restored.
    const restorable = reason === 'foreign' && !m?.backups[nodePath];
    tx.step(`back up ${nodePath}`, backupStep({
      root: i.root, nodePath, reason, backupsDirExisted, sha256,
      onCopy: (copy) => {
        if (copy === undefined) return void delete backups[nodePath];
        if (restorable) backups[nodePath] = copy;
        i.emit({ type: 'warn', message: `${nodePath} was ${reason === 'foreign' ? 'not written by node-prep' : 'changed since node-prep wrote it'}; kept a copy at ${copy.backupPath}` });
      },
    }));
  };

  const prepare = async (nodePath: string, component: PlannedFile['component'], sha256: string, mode: number): Promise<boolean> => {
    const recorded = m?.files[nodePath];
    const seen: Observed = await observe(i.root, nodePath, recorded);
    // What is written is what the plan's diff decided: a path that changed since (while the
    // downloads ran) is not replaced on a stale decision.
    const then = i.disk?.observed.get(nodePath);
    if (then !== undefined && !sameObservation(then, seen)) {
      throw new NodePrepError('DISK_CHANGED', `${inRoot(i.root, nodePath)} changed while node-prep was installing: it was ${describeObserved(then)}, now ${describeObserved(seen)}.`, {
        hint: 'Nothing was changed. Run node-prep again: the new comparison starts from what is there now.',
      });
    }
    if (seen.kind === 'other') {
      throw new NodePrepError('INSTALL_TARGET', `Cannot write ${inRoot(i.root, nodePath)}: it is ${seen.what}.`, {
        hint: `node-prep only replaces regular files; move it aside and run again.`,
      });
    }
    if (seen.kind === 'file' && seen.sha256 === sha256 && seen.mode === mode) {
      unchanged.push({ path: nodePath, component, outcome: { kind: 'unchanged' } });
      writes.push({ nodePath, component, mode, sha256 });
      return false;
    }
    if (seen.kind === 'file') {
      if (nodePath === NODE_PATHS.containerdConfig && !m?.files[nodePath]) await warnDockerConfig(i.fs, i.emit);
      const reason = backupReason(m, nodePath, seen.sha256);
      if (reason) backUp(nodePath, reason, seen.sha256);
    }
    writes.push({ nodePath, component, mode, sha256 });
    return true;
  };

  for (const d of i.toInstall) {
    const staged = i.staged.get(d.name) ?? [];
    const now = new Set<string>();
    for (const s of staged) {
      // The plan's file for this member: a bare binary's member is the asset itself.
      const file = i.plan.files.find((f) => f.component === d.name && f.source.kind === 'artifact' && f.source.member === (s.member || d.artifact.name))!;
      const nodePath = file.path;
      now.add(nodePath);
      if (await prepare(nodePath, d.name, s.sha256, s.mode)) tx.put(nodePath, { from: s.staged, sha256: s.sha256 }, s.mode);
    }
    // Binaries the previous version of this component had and this one does not.
    for (const [nodePath, f] of Object.entries(m?.files ?? {})) {
      if (f.component === d.name && !now.has(nodePath) && !isConfigPath(nodePath)) tx.remove(nodePath);
    }
  }
  for (const f of i.plan.files) {
    if (f.source.kind !== 'config') continue;
    const nodePath = f.path;
    if (await prepare(nodePath, f.component, f.sha256!, f.mode)) tx.put(nodePath, { data: f.content!, sha256: f.sha256! }, f.mode);
  }
  // The removals the plan shows (config no longer rendered; binaries the new version lacks are
  // removed above, with the optional members its archive does not have).
  for (const r of diffRemovals(i.plan, m)) if (isConfigPath(r.path)) tx.remove(r.path);
  return { tx, writes, backups, unchanged };
}

/**
 * Docker's containerd.io package ships a config.toml with `disabled_plugins = ["cri"]`: the kubelet
 * cannot use that containerd. node-prep's config enables CRI; say so, since Docker shares the daemon.
 */
async function warnDockerConfig(fs: RootFs, emit: Emit): Promise<void> {
  // Through the root's descriptors and bounded: the file is someone else's (a FIFO, a link, a huge file).
  const opened = await openNodeFile(fs, NODE_PATHS.containerdConfig).catch(() => undefined);
  const text = opened ? ((await readBounded(opened.fh, 1024 * 1024).finally(() => opened.fh.close())) ?? '') : '';
  if (criDisabledInText(text).criDisabled) {
    emit({
      type: 'warn',
      message: `${NODE_PATHS.containerdConfig} disables the CRI plugin (Docker's containerd.io ships it that way); node-prep's config enables it. The old file is backed up; Docker keeps using the same containerd.`,
    });
  }
}

function sameObservation(a: Observed, b: Observed): boolean {
  if (a.kind === 'file' && b.kind === 'file') return a.sha256 === b.sha256 && a.mode === b.mode;
  return a.kind === b.kind;
}

function describeObserved(o: Observed): string {
  switch (o.kind) {
    case 'absent':
      return 'absent';
    case 'other':
      return o.what;
    case 'file':
      return `a file with sha256 ${o.sha256.slice(0, 12)}… and mode 0${o.mode.toString(8)}`;
  }
}
