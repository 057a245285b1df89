/**
 * One node-prep run per root at a time: <root>/var/lib/node-prep/lock names its holder (pid, start time,
 * host). The lock is created exclusively: the content is written to an O_EXCL temp file which is then
 * hard-linked to `lock`; link(2) fails with EEXIST exactly like open(O_CREAT|O_EXCL), and a reader
 * never sees a half-written lock (an empty O_EXCL file could not be told from a run that just started).
 *
 * A lock whose process is gone is stale and is taken over; so is one whose pid now belongs to another
 * process (the kernel start time in /proc/<pid>/stat differs). Breaking a stale lock happens under a
 * short-lived `lock.break` guard and only if the lock still holds what was judged stale, so two runs
 * breaking the same stale lock cannot delete each other's fresh one.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodePrepError } from '../errors.ts';
import { tempNameFor } from '../install/atomic.ts';
import { RootFs, type Dir } from '../install/root-fs.ts';
import { inRoot, NODE_PATHS } from '../node/paths.ts';

export const LOCK_PATH = `${NODE_PATHS.stateDir}/lock`;
const GUARD_STALE_MS = 30_000;
const ATTEMPTS = 5;

export interface LockOwner {
  pid: number;
  /** ISO time the run took the lock, for the message. */
  startedAt: string;
  /** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot): tells a reused pid apart. */
  procStart?: string;
  hostname: string;
}

export interface Lock {
  path: string;
  owner: LockOwner;
  /** Set when a stale lock left by a dead run was taken over: worth a note in the report. */
  tookOverFrom?: LockOwner;
  /** Remove the lock if it is still ours; safe to call twice. */
  release(): Promise<void>;
}

export class LockHeldError extends NodePrepError {
  constructor(lockPath: string, owner: LockOwner | undefined, detail?: string) {
    const who = owner
      ? `another node-prep run (pid ${owner.pid}${owner.hostname !== os.hostname() ? ` on ${owner.hostname}` : ''}, since ${owner.startedAt}) is in progress`
      : `the lock ${lockPath} is held${detail ? ` (${detail})` : ''}`;
    super('LOCKED', `Cannot start: ${who}.`, {
      hint: `Wait for it to finish. If no node-prep is running, remove ${lockPath}.`,
      fields: { lockPath, owner },
    });
    this.name = 'LockHeldError';
  }
}

/** The kernel's start time of `pid`, or undefined without /proc (then pid liveness alone decides). */
export async function procStartOf(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and ')': fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19]; // field 22; fields[0] is field 3
  } catch {
    return undefined;
  }
}

export function parseLockOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return undefined;
    if (typeof v.startedAt !== 'string' || typeof v.hostname !== 'string') return undefined;
    return { pid: v.pid, startedAt: v.startedAt, hostname: v.hostname, ...(typeof v.procStart === 'string' ? { procStart: v.procStart } : {}) };
  } catch {
    return undefined;
  }
}

/** 'unknown' when the holder is on another host (a shared or mounted root): its pids mean nothing here. */
export async function ownerState(owner: LockOwner): Promise<'alive' | 'dead' | 'unknown'> {
  if (owner.hostname !== os.hostname()) return 'unknown';
  try {
    process.kill(owner.pid, 0); // signal 0: existence check only
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'dead';
    // EPERM: the process exists but belongs to another user.
  }
  if (owner.procStart === undefined) return 'alive';
  const now = await procStartOf(owner.pid);
  return now === undefined || now === owner.procStart ? 'alive' : 'dead';
}

const LOCK_NAME = 'lock';
const GUARD_NAME = 'lock.break';
const MAX_LOCK_BYTES = 4096;

/** The state folder, opened without following a link below the root (root-fs.ts). */
async function withStateDir<T>(root: string, fn: (dir: Dir) => Promise<T>): Promise<T> {
  return RootFs.with(root, { create: true }, (fs) => fs.withDir(NODE_PATHS.stateDir, { create: true, private: true }, fn));
}

async function readLockText(dir: Dir, name = LOCK_NAME): Promise<string | undefined> {
  const opened = await dir.openRegular(name).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!opened) return undefined;
  try {
    const buf = Buffer.alloc(MAX_LOCK_BYTES);
    const { bytesRead } = await opened.fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await opened.fh.close();
  }
}

/** Exclusive create with complete content; false when the lock exists. */
async function tryCreate(dir: Dir, content: string): Promise<boolean> {
  const tmp = tempNameFor(LOCK_NAME);
  try {
    const fh = await dir.createExclusive(tmp, 0o644);
    try {
      await fh.writeFile(content);
      await fh.chmod(0o644);
    } finally {
      await fh.close();
    }
    await dir.link(tmp, dir, LOCK_NAME);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await dir.unlinkIfPresent(tmp);
  }
}

/** Remove the lock only if it still holds `staleText`; false when another run is breaking it right now. */
async function breakStale(dir: Dir, staleText: string): Promise<boolean> {
  let fh;
  try {
    fh = await dir.createExclusive(GUARD_NAME, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // A breaker that died holding the guard must not block every later run.
    const st = await dir.lstat(GUARD_NAME);
    if (st && Date.now() - st.mtimeMs > GUARD_STALE_MS) await dir.unlinkIfPresent(GUARD_NAME);
    return false;
  }
  try {
    const now = await readLockText(dir).catch(() => undefined);
    if (now === staleText) await dir.unlinkIfPresent(LOCK_NAME);
    return true;
  } finally {
    await fh.close();
    await dir.unlinkIfPresent(GUARD_NAME);
  }
}

export async function acquireLock(root = '/'): Promise<Lock> {
  const lockPath = inRoot(root, LOCK_PATH);
  const procStart = await procStartOf(process.pid);
  const owner: LockOwner = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    ...(procStart !== undefined ? { procStart } : {}),
    hostname: os.hostname(),
  };
  const content = `${JSON.stringify(owner)}\n`;
  let tookOverFrom: LockOwner | undefined;

  return withStateDir(root, async (dir) => {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (await tryCreate(dir, content)) {
        let released = false;
        return {
          path: lockPath,
          owner,
          ...(tookOverFrom ? { tookOverFrom } : {}),
          async release() {
            if (released) return;
            released = true;
            await withStateDir(root, async (d) => {
              if ((await readLockText(d).catch(() => undefined)) === content) await d.unlinkIfPresent(LOCK_NAME);
            }).catch(() => undefined);
          },
        };
      }
      const text = await readLockText(dir);
      if (text === undefined) continue; // released between our link and our read
      const holder = parseLockOwner(text);
      if (!holder) throw new LockHeldError(lockPath, undefined, 'its content is not a node-prep lock');
      const state = await ownerState(holder);
      if (state !== 'dead') throw new LockHeldError(lockPath, holder);
      if (await breakStale(dir, text)) tookOverFrom = holder;
      else await sleep(20 * (attempt + 1));
    }
    throw new LockHeldError(lockPath, undefined, `it kept changing hands over ${ATTEMPTS} attempts`);
  });
}
