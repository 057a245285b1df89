/**
 * A set of file changes applied one by one, each atomically (atomic.ts), that can be undone as a whole:
 * before a file is replaced or removed its current inode is kept in a private backup directory, so a
 * failure midway (or a failed smoke test after commit) puts back exactly the previous files and removes
 * the ones that did not exist. Puts whose content and mode already match touch nothing, which is what
 * makes a second run write nothing (DESIGN.md: idempotency).
 *
 * Known limit: the undo list lives in memory. A crash (not an exception) midway leaves each file old or
 * new, never torn, and the backups in `<backupDir>/tx-*`, but does not roll back by itself.
 */
import type { Stats } from 'node:fs';
import { chown, link, lstat, mkdir, mkdtemp, rename, rm, rmdir, utimes } from 'node:fs/promises';
import path from 'node:path';
import { NodePrepError } from '../errors.ts';
import { atomicReplace, copyKeepingMetadata, ensureDir, fsyncDir, type AtomicSource } from './atomic.ts';
import { InstallTargetError, TransactionError } from './errors.ts';
import { sha256Data, sha256File } from './hash.ts';

/** What a put or remove did to one path (STYLE.md 7: a tagged union, switched on exhaustively). */
export type FileOutcome =
  | { kind: 'created' }
  | { kind: 'replaced'; previousSha256: string }
  | { kind: 'unchanged' }
  | { kind: 'removed'; previousSha256: string };

export interface FileResult {
  path: string;
  outcome: FileOutcome;
}

/** `sha256`, when the caller already knows it (a staged member), saves hashing the source again. */
export type PutSource = AtomicSource & { sha256?: string };

export interface TransactionOptions {
  /** Parent of the private backup directory; keep it on the node's state file system (…/var/lib/node-prep/tx). */
  backupDir: string;
}

export interface RollbackFailure {
  path: string;
  error: string;
  /** Where the previous content still is, if anywhere. */
  backup?: string;
}

/** A step of the caller's (a backup copy) that runs in order with the file changes and says how to undo it. */
export type Step = () => Promise<{ undo: () => Promise<void> } | undefined>;

type Op = { kind: 'put'; dest: string; source: PutSource; mode: number } | { kind: 'remove'; dest: string } | { kind: 'step'; dest: string; run: Step };
type Undo =
  | { kind: 'delete'; path: string; createdDirs: string[] }
  | { kind: 'restore'; path: string; backup: string; linked: boolean; st: Stats }
  | { kind: 'step'; path: string; undo: () => Promise<void> };

async function sha256Of(source: PutSource): Promise<string> {
  if (source.sha256) return source.sha256;
  return 'file' in source ? sha256File(source.file) : sha256Data(source.data);
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Only regular files are node-prep's to replace; a directory or symlink there is someone else's setup. */
function assertRegular(p: string, st: Stats): void {
  if (st.isFile()) return;
  const what = st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symlink' : 'not a regular file';
  throw new InstallTargetError(p, `it is ${what}`, `node-prep only replaces regular files; move ${p} aside and run again.`);
}


export class Transaction {
  readonly #backupDir: string;
  readonly #ops: Op[] = [];
  readonly #dests = new Set<string>();
  #undo: Undo[] = [];
  #txDir: string | undefined;
  #state: 'open' | 'committed' | 'rolled-back' = 'open';
  #committing = false;

  constructor(opts: TransactionOptions) {
    this.#backupDir = opts.backupDir;
  }

  put(dest: string, source: PutSource, mode: number): this {
    this.#add({ kind: 'put', dest: path.resolve(dest), source, mode });
    return this;
  }

  remove(dest: string): this {
    this.#add({ kind: 'remove', dest: path.resolve(dest) });
    return this;
  }

  /** `name` says what the step is for, in errors; a rollback undoes it with the file changes. */
  step(name: string, run: Step): this {
    this.#add({ kind: 'step', dest: `step:${name}`, run });
    return this;
  }

  #add(op: Op): void {
    if (this.#state !== 'open' || this.#committing) throw new NodePrepError('TX_STATE', 'This transaction was already committed.');
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
        if (op.kind === 'step') {
          const done = await op.run();
          if (done) this.#undo.push({ kind: 'step', path: op.dest, undo: done.undo });
          continue;
        }
        results.push({ path: op.dest, outcome: op.kind === 'put' ? await this.#put(op) : await this.#remove(op) });
      } catch (err) {
        const failures = await this.rollback();
        throw new TransactionError(op.dest, err, failures);
      }
    }
    this.#state = 'committed';
    this.#committing = false;
    return results;
  }

  async #put(op: Extract<Op, { kind: 'put' }>): Promise<FileOutcome> {
    const current = await lstatOrUndefined(op.dest);
    const newSha = await sha256Of(op.source);
    if (!current) {
      // Recorded before writing, so a failure after the rename (fsync of the directory) is still undone.
      const undo: Undo = { kind: 'delete', path: op.dest, createdDirs: [] };
      this.#undo.push(undo);
      undo.createdDirs = await ensureDir(path.dirname(op.dest));
      await atomicReplace(op.dest, op.source, op.mode);
      return { kind: 'created' };
    }
    assertRegular(op.dest, current);
    const previousSha256 = await sha256File(op.dest);
    if (previousSha256 === newSha && (current.mode & 0o7777) === op.mode) return { kind: 'unchanged' };
    await this.#keep(op.dest, current);
    try {
      await atomicReplace(op.dest, op.source, op.mode);
    } catch (err) {
      // The rename did not happen, so the file is as it was: nothing to put back (putting back an
      // immutable or read-only file would fail the rollback for nothing).
      await this.#forgetKeep(op.dest);
      throw err;
    }
    return { kind: 'replaced', previousSha256 };
  }

  async #remove(op: Extract<Op, { kind: 'remove' }>): Promise<FileOutcome> {
    const current = await lstatOrUndefined(op.dest);
    if (!current) return { kind: 'unchanged' };
    assertRegular(op.dest, current);
    const previousSha256 = await sha256File(op.dest);
    await this.#keep(op.dest, current);
    try {
      await rm(op.dest);
    } catch (err) {
      await this.#forgetKeep(op.dest);
      throw err;
    }
    await fsyncDir(path.dirname(op.dest));
    return { kind: 'removed', previousSha256 };
  }

  /** Drop the last kept copy of `dest` (its change failed before it took effect). */
  async #forgetKeep(dest: string): Promise<void> {
    const last = this.#undo.at(-1);
    if (last?.kind !== 'restore' || last.path !== dest) return;
    this.#undo.pop();
    await rm(last.backup, { force: true });
  }

  /** Keep the current inode: a hard link costs nothing and keeps owner, mode and mtime exactly. */
  async #keep(dest: string, st: Stats): Promise<void> {
    if (!this.#txDir) {
      await mkdir(this.#backupDir, { recursive: true, mode: 0o700 });
      this.#txDir = await mkdtemp(path.join(this.#backupDir, 'tx-'));
    }
    const backup = path.join(this.#txDir, `${this.#undo.length}-${path.basename(dest)}`);
    let linked = true;
    try {
      await link(dest, backup);
    } catch (err) {
      // EXDEV: backups on another file system; EPERM: protected_hardlinks for a non-owner.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
      linked = false;
      await copyKeepingMetadata(dest, backup, st);
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
          ...(undo.kind === 'restore' ? { backup: undo.backup } : {}),
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
      case 'delete':
        await rm(undo.path, { force: true });
        for (const dir of [...undo.createdDirs].reverse()) {
          await rmdir(dir).catch(() => undefined); // only if still empty: someone may have added files
        }
        return;
      case 'step':
        await undo.undo();
        return;
      case 'restore':
        if (undo.linked) {
          // Same file system (the link worked), so the original inode goes back atomically.
          await rename(undo.backup, undo.path);
          await fsyncDir(path.dirname(undo.path));
        } else {
          await atomicReplace(undo.path, { file: undo.backup }, undo.st.mode & 0o7777);
          await utimes(undo.path, undo.st.atime, undo.st.mtime);
          await chown(undo.path, undo.st.uid, undo.st.gid).catch(() => undefined);
        }
        return;
      default: {
        const never: never = undo;
        return never;
      }
    }
  }

  /** Drop the previous versions once the caller is satisfied (after commit and smoke test). */
  async discardBackups(): Promise<void> {
    if (this.#txDir) await rm(this.#txDir, { recursive: true, force: true });
    this.#txDir = undefined;
    if (this.#state === 'committed') this.#undo = [];
  }
}
