/**
 * A set of file changes applied one by one, each atomically (atomic.ts), that can be undone as a whole:
 * before a file is replaced or removed its current inode is kept in a private backup directory, so a
 * failure midway (or a failed smoke test after commit) puts back exactly the previous files and removes
 * the ones that did not exist. Puts whose content and mode already match touch nothing, which is what
 * makes a second run write nothing (DESIGN.md: idempotency).
 *
 * Every path is a node path, opened through the root's descriptors (root-fs.ts): a folder swapped for
 * a symlink while the transaction runs redirects nothing, and each file that is replaced is hashed and
 * kept through the descriptor it was opened with.
 *
 * The undo list lives in memory; for a crash (kill -9, a power cut) the transaction's folder
 * `<backupDir>/tx-*` holds what a later run needs to undo it (apply/journal.ts): the previous version
 * of op N of a replaced or removed file as `N-NAME` (made before the change), and for a created file
 * an empty `N-NAME.created` (made, and synced, before the rename that creates it).
 */
import type { Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { NodePrepError } from '../errors.ts';
import { throwIfInterrupted } from '../util/interrupt.ts';
import { copyHandle, sha256Handle, tempNameFor, writeAtomic, type AtomicSource, type DirFile } from './atomic.ts';
import { InstallTargetError, TransactionError } from './errors.ts';
import { sha256Data } from './hash.ts';
import { describeType, splitNodePath, type Dir, type RootFs } from './root-fs.ts';

/** What a put or remove did to one path (STYLE.md 7: a tagged union, switched on exhaustively). */
export type FileOutcome =
  | { kind: 'created' }
  | { kind: 'replaced'; previousSha256: string }
  | { kind: 'unchanged' }
  | { kind: 'removed'; previousSha256: string };

export interface FileResult {
  /** Node path. */
  path: string;
  outcome: FileOutcome;
}

/** A staged file (`from`) comes with the sha256 it was verified with: the bytes copied are held to it. */
export type PutSource = { data: string | Buffer; sha256?: string } | { from: DirFile; sha256: string };

export interface TransactionOptions {
  fs: RootFs;
  /** Node path of the parent of the private backup folder (…/var/lib/node-prep/tx): node-prep's own, so no link on the way. */
  backupDir: string;
}

export interface RollbackFailure {
  path: string;
  error: string;
  /** Where the previous content still is, if anywhere (host path). */
  backup?: string;
}

/** A change as a journal records it (apply/journal.ts). */
export interface PreparedOp {
  index: number;
  path: string;
  kind: 'put' | 'remove';
  sha256?: string;
}

/** A step of the caller's (a backup copy) that runs in order with the file changes and says how to undo it. */
export type Step = () => Promise<{ undo: () => Promise<void> } | undefined>;

type Op = { kind: 'put'; dest: string; source: PutSource; mode: number } | { kind: 'remove'; dest: string } | { kind: 'step'; dest: string; run: Step };
type Undo =
  | { kind: 'delete'; path: string; createdDirs: string[] }
  | { kind: 'restore'; path: string; backup: string; linked: boolean; st: Stats }
  | { kind: 'step'; path: string; undo: () => Promise<void> };

/** Only regular files are node-prep's to replace; a directory or symlink there is someone else's setup. */
function assertRegular(p: string, st: Stats): void {
  if (st.isFile()) return;
  throw new InstallTargetError(p, `it is ${describeType(st)}`, `node-prep only replaces regular files; move ${p} aside and run again.`);
}

function diskChanged(p: string): NodePrepError {
  return new NodePrepError('DISK_CHANGED', `${p} changed while node-prep was replacing it.`, {
    hint: 'Nothing of it was changed. Stop whatever changes it, then run node-prep again.',
    fields: { path: p },
  });
}

const toSource = (s: PutSource): AtomicSource => ('data' in s ? { data: s.data } : { from: s.from });

export class Transaction {
  readonly #fs: RootFs;
  readonly #backupDir: string;
  readonly #ops: Op[] = [];
  readonly #dests = new Set<string>();
  #undo: Undo[] = [];
  #txDir: Dir | undefined;
  #txName: string | undefined;
  #state: 'open' | 'committed' | 'rolled-back' = 'open';
  #committing = false;

  constructor(opts: TransactionOptions) {
    this.#fs = opts.fs;
    this.#backupDir = opts.backupDir;
  }

  put(dest: string, source: PutSource, mode: number): this {
    this.#add({ kind: 'put', dest, source, mode });
    return this;
  }

  remove(dest: string): this {
    this.#add({ kind: 'remove', dest });
    return this;
  }

  /** `name` says what the step is for, in errors; a rollback undoes it with the file changes. */
  step(name: string, run: Step): this {
    this.#add({ kind: 'step', dest: `step:${name}`, run });
    return this;
  }

  #add(op: Op): void {
    if (this.#state !== 'open' || this.#committing) throw new NodePrepError('TX_STATE', 'This transaction was already committed.');
    if (op.kind !== 'step' && (!op.dest.startsWith('/') || op.dest.split('/').includes('..'))) {
      throw new NodePrepError('BAD_NODE_PATH', `${JSON.stringify(op.dest)} is not an absolute path on the node.`);
    }
    // One change per path keeps "the previous version" unambiguous for rollback.
    if (this.#dests.has(op.dest)) throw new NodePrepError('TX_DUPLICATE', `${op.dest} is changed twice in one transaction.`);
    this.#dests.add(op.dest);
    this.#ops.push(op);
  }

  /** Apply every change in order; on the first failure roll back and throw TransactionError. */
  async commit(): Promise<FileResult[]> {
    if (this.#state !== 'open' || this.#committing) throw new NodePrepError('TX_STATE', 'This transaction was already committed.');
    this.#committing = true;
    const results: FileResult[] = [];
    for (const op of this.#ops) {
      try {
        // A signal stops the transaction before its next change; the rollback below puts back the rest.
        throwIfInterrupted();
        if (op.kind === 'step') {
          const done = await op.run();
          if (done) this.#undo.push({ kind: 'step', path: op.dest, undo: done.undo });
          continue;
        }
        const index = this.#ops.indexOf(op);
        results.push({ path: op.dest, outcome: op.kind === 'put' ? await this.#put(op, index) : await this.#remove(op, index) });
      } catch (err) {
        const failures = await this.rollback();
        throw new TransactionError(this.#fs.hostPath(op.dest), err, failures);
      }
    }
    this.#state = 'committed';
    this.#committing = false;
    return results;
  }

  async #put(op: Extract<Op, { kind: 'put' }>, index: number): Promise<FileOutcome> {
    const { dir: parent, name } = splitNodePath(op.dest);
    const newSha = op.source.sha256 ?? sha256Data((op.source as { data: string | Buffer }).data);
    const dir = await this.#fs.dir(parent, { create: true });
    try {
      const current = await dir.lstat(name);
      if (!current) {
        // Recorded before writing, so a failure after the rename (fsync of the directory) is still undone.
        this.#undo.push({ kind: 'delete', path: op.dest, createdDirs: dir.created });
        await this.#markCreated(index, name);
        await writeAtomic(dir, name, toSource(op.source), op.mode, { expectSha256: newSha });
        return { kind: 'created' };
      }
      assertRegular(this.#fs.hostPath(op.dest), current);
      const opened = await this.#hashOpened(dir, name, current, op.dest);
      const previousSha256 = opened.sha256;
      if (previousSha256 === newSha && (opened.st.mode & 0o7777) === op.mode) return { kind: 'unchanged' };
      await this.#keep(dir, op.dest, opened.st, index);
      try {
        await writeAtomic(dir, name, toSource(op.source), op.mode, { expectSha256: newSha });
      } catch (err) {
        // The rename did not happen, so the file is as it was: nothing to put back (putting back an
        // immutable or read-only file would fail the rollback for nothing).
        await this.#forgetKeep(op.dest);
        throw err;
      }
      return { kind: 'replaced', previousSha256 };
    } finally {
      await dir.close();
    }
  }

  async #remove(op: Extract<Op, { kind: 'remove' }>, index: number): Promise<FileOutcome> {
    const { dir: parent, name } = splitNodePath(op.dest);
    const dir = await this.#fs.dirIfPresent(parent);
    if (!dir) return { kind: 'unchanged' };
    try {
      const current = await dir.lstat(name);
      if (!current) return { kind: 'unchanged' };
      assertRegular(this.#fs.hostPath(op.dest), current);
      const opened = await this.#hashOpened(dir, name, current, op.dest);
      const previousSha256 = opened.sha256;
      await this.#keep(dir, op.dest, opened.st, index);
      try {
        await dir.unlink(name);
      } catch (err) {
        await this.#forgetKeep(op.dest);
        throw err;
      }
      await dir.sync();
      return { kind: 'removed', previousSha256 };
    } finally {
      await dir.close();
    }
  }

  /** The file lstat saw as `current`, opened (no link followed) and hashed: it must still be that inode. */
  async #hashOpened(dir: Dir, name: string, current: Stats, dest: string): Promise<{ st: Stats; sha256: string }> {
    const opened = await dir.openRegular(name);
    if (!opened || opened.st.ino !== current.ino) {
      await opened?.fh.close();
      throw diskChanged(this.#fs.hostPath(dest));
    }
    try {
      return { st: opened.st, sha256: await sha256Handle(opened.fh) };
    } finally {
      await opened.fh.close();
    }
  }

  /** Drop the last kept copy of `dest` (its change failed before it took effect). */
  async #forgetKeep(dest: string): Promise<void> {
    const last = this.#undo.at(-1);
    if (last?.kind !== 'restore' || last.path !== dest) return;
    this.#undo.pop();
    await this.#txDir?.unlinkIfPresent(last.backup);
  }

  /** The crash record of a file about to be created: synced before the rename that creates it. */
  async #markCreated(index: number, name: string): Promise<void> {
    const tx = await this.#openTxDir();
    await (await tx.createExclusive(`${index}-${name}.created`, 0o600)).close();
    await tx.sync();
  }

  /**
   * Make the transaction's folder now and say what it will do, for a journal written before the
   * first change (apply/journal.ts).
   */
  async prepare(): Promise<{ txName: string; ops: PreparedOp[] }> {
    // Only the name: the folder is made at the first change, after the journal that names it.
    const txName = (this.#txName ??= `tx-${randomBytes(6).toString('hex')}`);
    const ops = this.#ops.flatMap((op, index): PreparedOp[] => {
      if (op.kind === 'step') return [];
      if (op.kind === 'remove') return [{ index, path: op.dest, kind: 'remove' as const }];
      return [{ index, path: op.dest, kind: 'put' as const, sha256: op.source.sha256 ?? sha256Data((op.source as { data: string | Buffer }).data) }];
    });
    return { txName, ops };
  }

  async #openTxDir(): Promise<Dir> {
    if (!this.#txDir) {
      const parent = await this.#fs.dir(this.#backupDir, { create: true, private: true });
      try {
        this.#txDir = await parent.sub((this.#txName ??= `tx-${randomBytes(6).toString('hex')}`), { create: true, mode: 0o700 });
      } finally {
        await parent.close();
      }
    }
    return this.#txDir!;
  }

  /**
   * Keep the file opened as `st`: a hard link costs nothing and keeps owner, mode and mtime exactly;
   * a copy is made from the opened descriptor when linking is not possible.
   */
  async #keep(dir: Dir, dest: string, st: Stats, index: number): Promise<void> {
    const tx = await this.#openTxDir();
    const { name } = splitNodePath(dest);
    const backup = `${index}-${name}`;
    let linked = true;
    try {
      await dir.link(name, tx, backup);
      // link(2) names whatever is there now: it must be the file that was hashed.
      if ((await tx.lstat(backup))?.ino !== st.ino) {
        await tx.unlinkIfPresent(backup);
        throw diskChanged(this.#fs.hostPath(dest));
      }
    } catch (err) {
      // EXDEV: backups on another file system; EPERM: protected_hardlinks for a non-owner.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
      linked = false;
      // Under a temp name, then renamed: a copy cut off by a crash is never taken for the previous version.
      const tmp = tempNameFor(backup);
      await copyOpened(dir, name, st, tx, tmp, this.#fs.hostPath(dest));
      await tx.rename(tmp, tx, backup);
      await tx.sync();
    }
    this.#undo.push({ kind: 'restore', path: dest, backup, linked, st });
  }

  /**
   * Undo every change made so far, newest first; usable after a successful commit too (a smoke test
   * that fails). Returns what could not be undone; the backup directory is kept if anything failed.
   */
  async rollback(): Promise<RollbackFailure[]> {
    const failures: RollbackFailure[] = [];
    for (const undo of [...this.#undo].reverse()) {
      try {
        await this.#undoOne(undo);
      } catch (err) {
        failures.push({
          path: undo.path,
          error: err instanceof Error ? err.message : String(err),
          ...(undo.kind === 'restore' && this.#txDir ? { backup: this.#txDir.hostPathOf(undo.backup) } : {}),
        });
      }
    }
    this.#undo = [];
    this.#state = 'rolled-back';
    this.#committing = false;
    if (failures.length === 0) await this.discardBackups();
    return failures;
  }

  async #undoOne(undo: Undo): Promise<void> {
    switch (undo.kind) {
      case 'delete': {
        const { dir: parent, name } = splitNodePath(undo.path);
        const dir = await this.#fs.dirIfPresent(parent);
        if (dir) {
          try {
            await dir.unlinkIfPresent(name);
          } finally {
            await dir.close();
          }
        }
        for (const created of [...undo.createdDirs].reverse()) {
          const up = splitNodePath(created);
          const d = await this.#fs.dirIfPresent(up.dir).catch(() => undefined);
          if (!d) continue;
          await d.rmdirIfEmpty(up.name); // only if still empty: someone may have added files
          await d.close();
        }
        return;
      }
      case 'step':
        await undo.undo();
        return;
      case 'restore': {
        const { dir: parent, name } = splitNodePath(undo.path);
        await this.#fs.withDir(parent, {}, async (dir) => {
          const tx = this.#txDir!;
          if (undo.linked) {
            // Same file system (the link worked), so the original inode goes back atomically.
            await tx.rename(undo.backup, dir, name);
            await dir.sync();
          } else {
            await writeAtomic(dir, name, { from: { dir: tx, name: undo.backup } }, undo.st.mode & 0o7777, {
              keep: { uid: undo.st.uid, gid: undo.st.gid, atime: undo.st.atime, mtime: undo.st.mtime },
            });
          }
        });
        return;
      }
      default: {
        const never: never = undo;
        return never;
      }
    }
  }

  /** Drop the previous versions once the caller is satisfied (after commit and smoke test). */
  async discardBackups(): Promise<void> {
    const tx = this.#txDir;
    this.#txDir = undefined;
    if (tx) {
      const { dir: parent, name } = splitNodePath(tx.nodePath);
      await tx.close();
      await this.#fs.withDir(parent, { private: true }, (d) => d.removeTree(name));
      const up = splitNodePath(parent);
      await this.#fs.withDir(up.dir, { private: true }, (d) => d.rmdirIfEmpty(up.name)).catch(() => undefined);
    }
    if (this.#state === 'committed') this.#undo = [];
  }

  /** Host path of the folder holding this transaction's copies, while there is one. */
  get backupFolder(): string | undefined {
    return this.#txDir ? this.#fs.hostPath(this.#txDir.nodePath) : undefined;
  }
}

/** A copy of the file opened as `st` (it must still be that inode), with its owner, mode and times, synced. */
export async function copyOpened(dir: Dir, name: string, st: Stats, to: Dir, toName: string, forMessages: string): Promise<string> {
  const src = await dir.openRegular(name);
  if (!src || src.st.ino !== st.ino || src.st.dev !== st.dev) {
    await src?.fh.close();
    throw diskChanged(forMessages);
  }
  try {
    const out = await to.createExclusive(toName, 0o600);
    try {
      const { sha256 } = await copyHandle(src.fh, out);
      await out.chown(st.uid, st.gid).catch(() => undefined); // only root may; content and mode are what matter
      await out.chmod(st.mode & 0o7777); // after chown, which clears set-id bits
      await out.utimes(st.atime, st.mtime);
      await out.sync();
      return sha256;
    } catch (err) {
      await to.unlinkIfPresent(toName).catch(() => undefined);
      throw err;
    } finally {
      await out.close();
    }
  } finally {
    await src.fh.close();
  }
}
