/**
 * Tests that install into this machine's real paths, and tests that prove a run left those paths
 * alone, must not overlap: test files run in parallel. They take this lock (a file created with
 * O_EXCL) around the part that touches or inspects the host.
 */
import { open, readFile, rm } from 'node:fs/promises';

const LOCK = '/tmp/node-prep-tests-host.lock';

export async function withHostLock<T>(fn: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(LOCK, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline) throw err;
      // A lock left by a test process that died (killed run) is stale.
      const holder = Number(await readFile(LOCK, 'utf8').catch(() => ''));
      if (holder > 0 && !alive(holder)) await rm(LOCK, { force: true });
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(LOCK, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
