import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemExec } from '../../src/exec/exec.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-exec-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('systemExec.run', () => {
  it('returns exit code and output, and never throws', async () => {
    expect(await systemExec.run('sh', ['-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 5_000 })).toMatchObject({ exitCode: 3, stdout: 'out', stderr: 'err', failed: true, spawnError: undefined });
    expect(await systemExec.run('/nonexistent/tool', [], { timeoutMs: 5_000 })).toMatchObject({ failed: true, spawnError: 'ENOENT' });
    expect(await systemExec.run('sleep', ['5'], { timeoutMs: 100 })).toMatchObject({ failed: true, timedOut: true });
    expect(await systemExec.run('sh', ['-c', 'echo $NP_X'], { timeoutMs: 5_000, env: { NP_X: 'set' } })).toMatchObject({ exitCode: 0, stdout: 'set' });
  });
});

describe('systemExec.spawn', () => {
  it('writes stderr to the log file and says how the child ended', async () => {
    const log = path.join(dir, 'a.log');
    const child = systemExec.spawn('sh', ['-c', 'echo to-log >&2; exit 4'], { stderrFile: log });
    expect(await child.done).toMatchObject({ exitCode: 4, failed: true });
    expect(await readFile(log, 'utf8')).toBe('to-log\n');
  });

  it('ends when the child ends, even when a grandchild keeps the log open', async () => {
    const child = systemExec.spawn('sh', ['-c', 'sleep 3 & exit 0'], { stderrFile: path.join(dir, 'b.log') });
    const t = Date.now();
    await child.done;
    expect(Date.now() - t).toBeLessThan(2_000);
  });

  // The temporary containerd of the smoke test must not outlive node-prep when CI cancels a job.
  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('the child dies with this process on %s', async (signal) => {
    const script = `import { systemExec } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../src/exec/exec.ts'))};
const s = systemExec.spawn('sleep', ['300'], { stderrFile: ${JSON.stringify(path.join(dir, `${signal}.log`))} });
console.log(s.pid);
setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
    expect(alive(pid)).toBe(true);
    const ended = new Promise<string | null>((resolve) => parent.once('exit', (_code, sig) => resolve(sig)));
    parent.kill(signal);
    expect(await ended).toBe(signal);
    const deadline = Date.now() + 3_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
  });
});
