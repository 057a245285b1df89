/**
 * The journal of an install's commit, `<root>/var/lib/node-prep/journal.json`, so that a run killed
 * midway (kill -9, a power cut, a second Ctrl-C) is finished by the next one instead of leaving a
 * node that is neither the old set nor the new.
 *
 * Written (atomically, synced) before the transaction's first change: which files it changes, its
 * folder under var/lib/node-prep/tx (where the previous version of each replaced file is kept, and a
 * marker for each created one, before the change; install/transaction.ts), the record as it was, and
 * whether the unit's wants link is new. Marked committed once the new record is written; removed
 * when the run ends either way.
 *
 * The next run that takes the lock (install, uninstall, and status) repairs what it finds before
 * anything else: not committed, it rolls back (previous versions renamed back, created files
 * removed, the previous record put back); committed, it finishes (the new set is what the record
 * says). Either way the dead run's temp files, transaction and staging folders go.
 */
import path from 'node:path';
import { readBounded, sha256Handle, TEMP_NAME, writeAtomic } from '../install/atomic.ts';
import { RootFs, splitNodePath, type Dir } from '../install/root-fs.ts';
import { NodePrepError } from '../errors.ts';
import { NODE_PATHS, WANTS_LINK } from '../node/paths.ts';
import { MANIFEST_PATH, openNodeFile, openStateDir } from '../state/manifest.ts';

export const JOURNAL_NAME = 'journal.json';
const MAX_JOURNAL_BYTES = 4 * 1024 * 1024;

export interface JournalOp {
  index: number;
  /** Node path. */
  path: string;
  kind: 'put' | 'remove';
  /** The new content's sha256 (put). */
  sha256?: string;
}

export interface Journal {
  schemaVersion: 1;
  pid: number;
  startedAt: string;
  /** The transaction's folder, under var/lib/node-prep/tx. */
  tx: string;
  ops: JournalOp[];
  /** The record before this run (its text), or null when there was none. */
  previousRecord: string | null;
  /** This run makes the unit's wants link (it was not there). */
  createsWantsLink: boolean;
  committed: boolean;
}

export type Repair =
  | { kind: 'none' }
  | { kind: 'rolled-back'; pid: number; startedAt: string; restored: string[]; removed: string[]; keptAside: string[]; keptIn?: string }
  | { kind: 'finished'; pid: number; startedAt: string };

async function withState<T>(root: string, fn: (fs: RootFs, state: Dir) => Promise<T>): Promise<T | undefined> {
  const fs = await RootFs.openExisting(root);
  if (!fs) return undefined;
  try {
    const state = await openStateDir(fs);
    if (!state) return undefined;
    try {
      return await fn(fs, state);
    } finally {
      await state.close();
    }
  } finally {
    await fs.close();
  }
}

export async function writeJournal(root: string, j: Journal): Promise<void> {
  await withState(root, (_fs, state) => writeAtomic(state, JOURNAL_NAME, { data: `${JSON.stringify(j)}\n` }, 0o600));
}

export async function readJournal(root: string): Promise<Journal | undefined> {
  return withState(root, async (_fs, state) => {
    const opened = await state.openRegular(JOURNAL_NAME).catch(() => undefined);
    if (!opened) return undefined;
    try {
      const text = await readBounded(opened.fh, MAX_JOURNAL_BYTES);
      if (text === undefined) return undefined;
      const j = JSON.parse(text) as Journal;
      return j.schemaVersion === 1 && typeof j.tx === 'string' && /^tx-[0-9a-f]+$/.test(j.tx) && Array.isArray(j.ops) ? j : undefined;
    } catch {
      return undefined;
    } finally {
      await opened.fh.close();
    }
  });
}

export async function removeJournal(root: string): Promise<void> {
  await withState(root, async (_fs, state) => {
    await state.unlinkIfPresent(JOURNAL_NAME);
    await state.sync();
  });
}

/** Whether the state folder holds anything of a run: a journal, a lock, staging folders or temp files. */
export async function hasLeftovers(root: string): Promise<boolean> {
  const found = await withState(root, async (_fs, state) =>
    (await state.readdir()).some((n) => n === JOURNAL_NAME || n === 'lock' || n === 'tx' || n.startsWith('staging-') || TEMP_NAME.test(n)));
  return found === true;
}

/**
 * Finish what a dead run left (call with the lock held). Returns what was done, for the report: the
 * caller says it ("an interrupted run (pid N) was rolled back").
 */
export async function repairInterrupted(root: string): Promise<Repair> {
  const j = await readJournal(root);
  const result = await withState(root, async (fs, state): Promise<Repair> => {
    if (!j) {
      // No journal: at most leftovers of a run killed before its commit (staging, temp files, an
      // empty transaction folder).
      await removeLeftovers(fs, state, undefined);
      const txParent = await state.sub('tx').catch(() => undefined);
      if (txParent) {
        for (const name of await txParent.readdir()) if (/^tx-[0-9a-f]+$/.test(name) && (await isEmptyDir(txParent, name))) await txParent.rmdirIfEmpty(name);
        await txParent.close();
        await state.rmdirIfEmpty('tx');
      }
      return { kind: 'none' };
    }
    const txParent = await state.sub('tx').catch(() => undefined);
    const tx = await txParent?.sub(j.tx).catch(() => undefined);
    const restored: string[] = [];
    const removed: string[] = [];
    /** Files changed since the run died: left as they are, their previous version kept in tx. */
    const keptAside: string[] = [];
    try {
      if (!j.committed) {
        for (const op of [...j.ops].sort((a, b) => b.index - a.index)) {
          const { dir: d, name } = splitNodePath(op.path);
          const backup = `${op.index}-${name}`;
          const dir = await fs.dirIfPresent(d).catch(() => undefined);
          if (!dir) continue;
          try {
            await removeTemps(dir, name);
            const kept = tx ? await tx.lstat(backup) : undefined;
            if (tx && kept?.isFile() && !(await asTheDeadRunLeftIt(fs, dir, name, op, kept))) {
              // Changed by someone since the run died: theirs stays, and so does the previous version.
              keptAside.push(op.path);
            } else if (tx && kept?.isFile()) {
              // The previous version, kept before the change: back in place atomically (a copy, when
              // the transaction's folder is on another file system).
              await tx.rename(backup, dir, name).catch(async (err: NodeJS.ErrnoException) => {
                if (err.code !== 'EXDEV') throw err;
                await writeAtomic(dir, name, { from: { dir: tx, name: backup } }, kept.mode & 0o7777, { keep: { uid: kept.uid, gid: kept.gid, atime: kept.atime, mtime: kept.mtime } });
              });
              await dir.sync();
              restored.push(op.path);
            } else if (tx && (await tx.lstat(`${backup}.created`)) && op.kind === 'put') {
              // Created by the dead run: removed if it is what that run wrote.
              const opened = await openNodeFile(fs, op.path);
              const sha = opened ? await sha256Handle(opened.fh).finally(() => opened.fh.close()) : undefined;
              if (sha === op.sha256 && (await dir.unlinkIfPresent(name))) removed.push(op.path);
            }
          } finally {
            await dir.close();
          }
        }
        // The record as it was (the dead run may have written its new one already).
        const recordName = path.posix.basename(MANIFEST_PATH);
        if (j.previousRecord === null) await state.unlinkIfPresent(recordName);
        else await writeAtomic(state, recordName, { data: j.previousRecord }, 0o644);
        if (j.createsWantsLink) await removeWantsLinkIn(fs);
      }
    } catch (err) {
      // Some file could not be put back: the journal and every previous version stay, for the next
      // run to try again (or for a person), and nothing claims the node is consistent.
      await tx?.close();
      await txParent?.close();
      throw new NodePrepError('ROLLBACK', `Finishing an interrupted run (pid ${j.pid}) failed: ${(err as Error).message}`, {
        hint: `Its previous versions are kept in ${fs.hostPath(`${NODE_PATHS.stateDir}/tx/${j.tx}`)} and its journal in ${fs.hostPath(`${NODE_PATHS.stateDir}/${JOURNAL_NAME}`)}; fix the cause and run node-prep again.`,
        cause: err,
      });
    }
    await tx?.close();
    if (txParent) {
      // Nothing is lost: with a file kept aside, the previous versions stay where they are.
      if (keptAside.length === 0) await txParent.removeTree(j.tx);
      await txParent.close();
      await state.rmdirIfEmpty('tx');
    }
    await removeLeftovers(fs, state, j);
    await state.unlinkIfPresent(JOURNAL_NAME);
    await state.sync();
    return j.committed
      ? { kind: 'finished', pid: j.pid, startedAt: j.startedAt }
      : { kind: 'rolled-back', pid: j.pid, startedAt: j.startedAt, restored, removed, keptAside, ...(keptAside.length > 0 ? { keptIn: `${NODE_PATHS.stateDir}/tx/${j.tx}` } : {}) };
  });
  return result ?? { kind: 'none' };
}

/**
 * The file at `name` is as the dead run left it: its previous version's very inode (the change never
 * happened), the new content (it did), or gone (a removal). Anything else is someone's later edit.
 */
async function asTheDeadRunLeftIt(fs: RootFs, dir: Dir, name: string, op: JournalOp, kept: import('node:fs').Stats): Promise<boolean> {
  const now = await dir.lstat(name);
  if (!now || (now.ino === kept.ino && now.dev === kept.dev)) return true;
  if (op.kind !== 'put' || !now.isFile()) return false;
  const opened = await openNodeFile(fs, op.path);
  const sha = opened ? await sha256Handle(opened.fh).finally(() => opened.fh.close()) : undefined;
  return sha === op.sha256;
}

async function isEmptyDir(parent: Dir, name: string): Promise<boolean> {
  const d = await parent.sub(name).catch(() => undefined);
  if (!d) return false;
  try {
    return (await d.readdir()).length === 0;
  } finally {
    await d.close();
  }
}

/** A dead run's temp files beside `name` (`.NAME.node-prep-1a2b3c4d5e6f`). */
async function removeTemps(dir: Dir, name: string): Promise<void> {
  for (const entry of await dir.readdir()) {
    if (TEMP_NAME.test(entry) && entry.startsWith(`.${name}.node-prep-`)) await dir.unlinkIfPresent(entry);
  }
}

/** Staging folders, temp files in the state folder and beside every file of the journal. */
async function removeLeftovers(fs: RootFs, state: Dir, j: Journal | undefined): Promise<void> {
  for (const entry of await state.readdir()) {
    if (entry.startsWith('staging-')) await state.removeTree(entry);
    else if (TEMP_NAME.test(entry) && !entry.startsWith('.lock.')) await state.unlinkIfPresent(entry);
  }
  for (const op of j?.ops ?? []) {
    const { dir: d, name } = splitNodePath(op.path);
    const dir = await fs.dirIfPresent(d).catch(() => undefined);
    if (!dir) continue;
    await removeTemps(dir, name).finally(() => dir.close());
  }
}

async function removeWantsLinkIn(fs: RootFs): Promise<void> {
  const { dir: d, name } = splitNodePath(WANTS_LINK);
  const dir = await fs.dirIfPresent(d).catch(() => undefined);
  if (!dir) return;
  try {
    const st = await dir.lstat(name);
    if (st?.isSymbolicLink() && (await dir.readlink(name)) === NODE_PATHS.containerdUnit) await dir.unlink(name);
  } finally {
    await dir.close();
  }
}

/** One line for people. */
export function describeRepair(r: Repair): string | undefined {
  switch (r.kind) {
    case 'none':
      return undefined;
    case 'finished':
      return `an interrupted run (pid ${r.pid}, ${r.startedAt}) had committed its install: finished it and removed what it left`;
    case 'rolled-back': {
      const aside = r.keptAside.length > 0 ? `; left ${r.keptAside.join(', ')} as changed since, with the previous versions in ${r.keptIn}` : '';
      return `an interrupted run (pid ${r.pid}, ${r.startedAt}) was rolled back to the recorded set: ${r.restored.length} files put back, ${r.removed.length} it had created removed${aside}`;
    }
  }
}
