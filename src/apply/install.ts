/**
 * Apply a plan: decide what differs from the disk (decide.ts, from the plan's diff), download and
 * verify only that, stage it (staging.ts), swap it in as one transaction with its backups
 * (commit.ts, backup-step.ts), record it (record.ts). Each phase is a method so the CLI can show it as a task;
 * the state between phases lives on the run.
 */
import path from 'node:path';
import type { Emit } from '../events.ts';
import { NodePrepError } from '../errors.ts';
import type { ArtifactCache } from '../fetch/cache.ts';
import type { FetchResult } from '../fetch/download.ts';
import { fetchAll } from '../fetch/fetch-all.ts';
import { RootFs, splitNodePath } from '../install/root-fs.ts';
import type { StagedMember } from '../install/extract.ts';
import type { FileOutcome, FileResult, Transaction } from '../install/transaction.ts';
import { TransactionError } from '../install/errors.ts';
import type { Http } from '../net/http.ts';
import { NODE_PATHS, WANTS_LINK, inRoot } from '../node/paths.ts';
import { toTarget } from '../plan/artifact.ts';
import type { DiskView, FileChange } from '../plan/changes.ts';
import type { ComponentName, Plan, PlannedFile } from '../plan/types.ts';
import { acquireLock, type Lock } from '../state/lock.ts';
import { BACKUPS_DIR, readManifest, removeManifest, serializeManifest, writeManifest, type Manifest } from '../state/manifest.ts';
import { statFacts } from '../state/observe.ts';
import { prepareCommit, type Write } from './commit.ts';
import { decideComponents, type ComponentDecision } from './decide.ts';
import { nextRecord } from './record.ts';
import { enableInImage, removeWantsLink, wantsLinkState } from './services.ts';
import { describeRepair, removeJournal, repairInterrupted, writeJournal, type Journal, type Repair } from './journal.ts';
import { Staging } from './staging.ts';

const WANTS_DIR = path.posix.dirname(WANTS_LINK);


/** The folders among `nodePaths` and their parents that do not exist under root yet. */
async function missingDirs(fs: RootFs, nodePaths: string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const p of nodePaths) {
    for (let d = p; d !== '/' && !out.has(d); d = path.posix.dirname(d)) {
      if (await isDir(fs, d)) break;
      out.add(d);
    }
  }
  return [...out];
}

async function isDir(fs: RootFs, nodePath: string): Promise<boolean> {
  const dir = await fs.dirIfPresent(nodePath).catch(() => undefined);
  await dir?.close();
  return dir !== undefined;
}

async function existing(fs: RootFs, nodePaths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of nodePaths) if (await isDir(fs, p)) out.push(p);
  return out;
}

export type ItemOutcome = FileOutcome | { kind: 'kept'; reason: string };

export type { ComponentDecision } from './decide.ts';

export interface InstallItem {
  path: string;
  component: PlannedFile['component'];
  outcome: ItemOutcome;
  backup?: string | undefined;
}

/** What an install run takes from outside. */
export interface InstallDeps {
  http: () => Http;
  cache: () => ArtifactCache;
}

export class InstallRun {
  readonly root: string;
  decisions: ComponentDecision[] = [];
  fetched = new Map<ComponentName, FetchResult>();
  items: InstallItem[] = [];
  manifest: Manifest | undefined;
  private staged = new Map<ComponentName, StagedMember[]>();
  private readonly staging: Staging;
  private lock: Lock | undefined;
  private tx: Transaction | undefined;
  /** The root, opened in begin() and closed in finish(): every write goes through it. */
  private fs: RootFs | undefined;

  constructor(
    readonly deps: InstallDeps,
    readonly plan: Plan,
    readonly emit: Emit,
  ) {
    this.root = plan.root;
    this.staging = new Staging(plan.root);
  }

  /**
   * Enable the unit by making its wants link (what `systemctl enable` does) instead of asking systemd:
   * an image root, or a root file system whose systemd is not running (a container build, a chroot).
   */
  get enableByLink(): boolean {
    return this.plan.service.manage === 'wants-link';
  }

  /** The containerd unit as it was before the first install on a live host (recorded, given back by uninstall). */
  foundUnit: Manifest['foundUnit'];

  /** What begin() found of a dead run and did about it. */
  repair: Repair = { kind: 'none' };
  /** The journal of this run's commit, while there is one. */
  private journal: Journal | undefined;

  /** Directories that do not exist yet and that this run may create (node paths). */
  private createdDirs: string[] = [];

  /** Take the lock and read the record of the last install. */
  async begin(): Promise<void> {
    // Nothing is written (not even the lock) through a link in node-prep's own folders; the target
    // folders are held to the same by the plan's diff (a file behind such a link is blocked), and
    // every write checks again when it happens (root-fs.ts).
    this.fs = await RootFs.open(this.root, { create: true });
    await this.fs.assertWritable([NODE_PATHS.stateDir, BACKUPS_DIR, `${NODE_PATHS.stateDir}/tx`], { private: true });
    // Before anything is created: which folders are new, so uninstall can leave the root as it found it.
    const wanted = new Set<string>([NODE_PATHS.stateDir, `${NODE_PATHS.stateDir}/tx`, WANTS_DIR]);
    for (const f of this.plan.files) wanted.add(path.posix.dirname(f.path));
    this.createdDirs = await missingDirs(this.fs, [...wanted]);
    this.lock = await acquireLock(this.root);
    if (this.lock.tookOverFrom) this.emit({ type: 'warn', message: `took over a stale lock left by pid ${this.lock.tookOverFrom.pid}` });
    // With the lock held, no other run is using what a dead run left: finish its transaction first.
    this.repair = await repairInterrupted(this.root);
    const said = describeRepair(this.repair);
    if (said) this.emit({ type: 'warn', message: said });
    this.manifest = await readManifest(this.root);
    this.previousManifest = this.manifest;
  }

  /** Per component, from the plan's diff against the disk: install it, or is it as planned? */
  decide(changes: Map<string, FileChange>, disk: DiskView): ComponentDecision[] {
    this.decisions = decideComponents(this.plan, this.manifest, changes);
    this.disk = disk;
    return this.decisions;
  }

  /** The disk as the comparison saw it: the commit holds every path it writes to that. */
  private disk: DiskView | undefined;

  get toInstall(): ComponentDecision[] {
    return this.decisions.filter((d) => d.action === 'install');
  }

  /** Download (or take from the cache) and verify the sha256 of every artifact that is needed. */
  async download(): Promise<void> {
    const needed = this.toInstall.map((d) => d.artifact);
    if (needed.length === 0) return;
    const results = await fetchAll(this.deps.http(), this.deps.cache(), needed.map(toTarget), {
      emit: this.emit,
      // Extraction into the private staging folder starts as soon as an artifact's sha256 is
      // verified, while the others still download. Nothing is installed before commit().
      onFetched: (i, r) => void this.staging.start(needed[i]!, r.path),
    });
    needed.forEach((a, i) => this.fetched.set(a.component, results[i]!));
  }

  /** Extract only the expected members of each verified artifact into the run's staging folder. */
  async stage(): Promise<void> {
    await Promise.all(
      this.toInstall.map(async (d) => {
        this.staged.set(d.name, await this.staging.start(d.artifact, this.fetched.get(d.name)!.path));
      }),
    );
  }

  /** One transaction for every file that differs (commit.ts), then the link and the record. */
  async commit(): Promise<void> {
    const { tx, writes, backups, unchanged } = await prepareCommit({
      root: this.root, fs: this.fs!, plan: this.plan, manifest: this.manifest, toInstall: this.toInstall, staged: this.staged, disk: this.disk, emit: this.emit,
    });
    this.items.push(...unchanged);
    // Refuse before anything changes, not after: a regular file where the wants link goes.
    const linkState = this.enableByLink ? await wantsLinkState(this.root) : undefined;
    if (linkState === 'conflict') await enableInImage(this.root);
    // The journal, before the first change: a run killed from here on is repaired by the next one.
    const { txName, ops } = await tx.prepare();
    // A run that changes no file writes nothing, not even a journal.
    if (ops.length > 0) this.journal = {
      schemaVersion: 1,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      tx: txName,
      ops,
      previousRecord: this.manifest ? serializeManifest(this.manifest) : null,
      createsWantsLink: linkState === 'absent',
      committed: false,
    };
    if (this.journal) await writeJournal(this.root, this.journal);
    let results: FileResult[];
    try {
      results = await tx.commit();
    } catch (err) {
      // Putting back failed for some file: the journal and the kept versions stay for the next run.
      if (err instanceof TransactionError && err.rollbackErrors.length > 0) this.rollbackFailed = true;
      throw err;
    }
    this.tx = tx;
    try {
      await this.afterCommit(results, writes, backups);
    } catch (err) {
      // Anything failing between the swap and the record puts the previous files back.
      await this.rollback();
      throw err;
    }
  }

  private async afterCommit(results: FileResult[], writes: Write[], backups: Manifest['backups']): Promise<void> {
    if (this.enableByLink) {
      const link = await enableInImage(this.root);
      this.linkCreated = link.created;
      if (link.created) this.items.push({ path: WANTS_LINK, component: 'containerd', outcome: { kind: 'created' } });
    }
    for (const r of results) {
      const nodePath = r.path;
      const w = writes.find((x) => x.nodePath === nodePath);
      this.items.push({ path: nodePath, component: w?.component ?? 'node', outcome: r.outcome, backup: backups[nodePath]?.backupPath });
      this.emit({ type: 'write', path: nodePath, outcome: r.outcome.kind });
    }
    const removed = results.filter((r) => r.outcome.kind === 'removed').map((r) => r.path);
    await this.record(writes, backups, removed);
  }

  private linkCreated = false;
  private recorded = false;
  private rollbackFailed = false;

  /** The record is written last: it says what is installed only once it is. */
  private async record(writes: Write[], backups: Manifest['backups'], removed: string[]): Promise<void> {
    const prev = this.manifest;
    const next = nextRecord({
      previous: prev,
      plan: this.plan,
      installed: this.toInstall.map((d) => d.name),
      written: await Promise.all(writes.map(async (w) => ({ ...w, stat: await statFacts(this.root, w.nodePath) }))),
      removed,
      backups,
      linked: this.enableByLink,
      createdDirs: await existing(this.fs!, this.createdDirs),
      changed: this.changed,
      now: () => new Date(),
      ...(this.foundUnit ? { foundUnit: this.foundUnit } : {}),
    });
    if (prev && serializeManifest({ ...prev, installedAt: '' }) === serializeManifest({ ...next, installedAt: '' })) {
      await this.markCommitted();
      return;
    }
    await writeManifest(this.root, next);
    this.recorded = true;
    this.manifest = next;
    await this.markCommitted();
  }

  /** The record as it was before this run (undefined: nothing was installed). */
  private previousManifest: Manifest | undefined;

  get hadPreviousInstall(): boolean {
    return this.previousManifest !== undefined;
  }

  get changed(): boolean {
    return this.items.some((i) => i.outcome.kind !== 'unchanged');
  }

  /** The record says what is installed now: a run killed from here on is finished, not rolled back. */
  private async markCommitted(): Promise<void> {
    if (!this.journal) return;
    this.journal = { ...this.journal, committed: true };
    await writeJournal(this.root, this.journal);
  }

  /** Put back the previous files and the previous record (after a failed smoke test on an upgrade). */
  async rollback(): Promise<void> {
    // Killed while rolling back, the next run rolls back the rest.
    if (this.journal?.committed) {
      this.journal = { ...this.journal, committed: false };
      await writeJournal(this.root, this.journal);
    }
    const failures = (await this.tx?.rollback()) ?? [];
    if (this.linkCreated) await removeWantsLink(this.root);
    if (this.recorded) {
      if (this.previousManifest) await writeManifest(this.root, this.previousManifest);
      else await removeManifest(this.root);
      this.manifest = this.previousManifest;
    }
    if (failures.length > 0) {
      // The transaction's copies of the previous files stay where they are: finish() keeps them.
      this.rollbackFailed = true;
      throw new NodePrepError('ROLLBACK', `Putting back the previous files failed for ${failures.map((f) => inRoot(this.root, f.path)).join(', ')}.`, {
        hint: `The previous versions are kept under ${inRoot(this.root, `${NODE_PATHS.stateDir}/tx`)}; copy them back by hand, then run \`node-prep status\`.`,
        fields: { failures },
      });
    }
  }

  async finish(): Promise<void> {
    // Without the lock this run touched nothing, and must not touch another run's files either.
    if (!this.lock) return;
    if (!this.rollbackFailed) {
      await this.tx?.discardBackups().catch(() => undefined);
      // Done either way: a later run has nothing to repair (unless putting back failed: then the
      // journal and the kept copies let the next run try again).
      if (this.journal) await removeJournal(this.root).catch(() => undefined);
      this.journal = undefined;
    }
    // Extractions started while downloading may still run after a failed download: let them end first.
    await this.staging.close();
    await this.lock.release();
    // A run that recorded nothing leaves no trace: the folders it created go again, when empty.
    if (this.manifest === undefined && this.fs) {
      for (const d of [...this.createdDirs].sort((a, b) => b.split('/').length - a.split('/').length)) {
        const up = splitNodePath(d);
        await this.fs.withDir(up.dir, {}, (p) => p.rmdirIfEmpty(up.name)).catch(() => undefined);
      }
    }
    await this.fs?.close();
    this.fs = undefined;
  }
}

