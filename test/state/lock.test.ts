import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, LOCK_PATH, LockHeldError, type LockOwner, procStartOf } from '../../src/state/lock.ts';

let root: string;
const lockFile = () => path.join(root, LOCK_PATH);
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'np-lock-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function plant(owner: Partial<LockOwner> & { pid: number }): Promise<void> {
  await mkdir(path.dirname(lockFile()), { recursive: true });
  await writeFile(lockFile(), JSON.stringify({ startedAt: '2026-01-01T00:00:00.000Z', hostname: os.hostname(), ...owner }));
}

/** A pid that certainly belonged to a process which has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await once(child, 'exit');
  return child.pid!;
}

describe('acquireLock', () => {
  it('gives one run the lock; a second gets a clear error naming the holder; release frees it', async () => {
    const first = await acquireLock(root);
    expect(first.tookOverFrom).toBeUndefined();
    const owner = JSON.parse(await readFile(lockFile(), 'utf8')) as LockOwner;
    expect(owner).toMatchObject({ pid: process.pid, hostname: os.hostname() });
    expect(owner.procStart).toBe(await procStartOf(process.pid));

    const err = await acquireLock(root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as Error).message).toContain(`another node-prep run (pid ${process.pid}, since ${owner.startedAt}) is in progress`);
    expect((err as LockHeldError).hint).toContain(lockFile());

    await first.release();
    await first.release(); // twice is fine
    const second = await acquireLock(root);
    await second.release();
    expect((await readdir(path.dirname(lockFile()))).filter((n) => n.includes('lock') || n.includes('.node-prep-'))).toEqual([]);
  });

  it('takes over a lock left by a dead process and says whose it was', async () => {
    const pid = await deadPid();
    await plant({ pid });
    const lock = await acquireLock(root);
    expect(lock.tookOverFrom).toMatchObject({ pid });
    expect(JSON.parse(await readFile(lockFile(), 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('takes over a lock whose pid now belongs to another process (start time differs)', async () => {
    await plant({ pid: process.pid, procStart: '1' });
    const lock = await acquireLock(root);
    expect(lock.tookOverFrom).toMatchObject({ pid: process.pid, procStart: '1' });
    await lock.release();
  });

  it('respects a lock held by another live process', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    try {
      await plant({ pid: child.pid!, procStart: await procStartOf(child.pid!) });
      await expect(acquireLock(root)).rejects.toThrow(`another node-prep run (pid ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('does not judge a lock from another host, nor one it cannot read', async () => {
    await plant({ pid: await deadPid(), hostname: 'image-builder-7' });
    await expect(acquireLock(root)).rejects.toThrow(/on image-builder-7/);
    await writeFile(lockFile(), 'garbage');
    await expect(acquireLock(root)).rejects.toThrow(/is not a node-prep lock/);
  });

  it('release leaves a lock that is no longer ours alone', async () => {
    const lock = await acquireLock(root);
    await writeFile(lockFile(), JSON.stringify({ pid: 1, startedAt: 'x', hostname: os.hostname() }));
    await lock.release();
    expect(await readFile(lockFile(), 'utf8')).toContain('"pid":1');
  });

  it('lets exactly one of many concurrent takeovers of a stale lock win', async () => {
    await plant({ pid: await deadPid() });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => acquireLock(root)));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockHeldError);
  });
});
