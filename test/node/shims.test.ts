/**
 * Running shims found from /proc as uninstall finds them: a real process started from a file named
 * like containerd's shim, with a shim's flags, and a child of it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { descendants, mountsBelow, runningShims } from '../../src/node/shims.ts';

let work: string | undefined;
afterEach(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('runningShims', () => {
  it('finds a process running the shim binary, with its namespace and id, and its descendants', async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'np-shims-'));
    // bash, renamed: its exe is the shim path; `-c` runs a child so there is a descendant to find.
    const shim = path.join(work, 'containerd-shim-runc-v2');
    await copyFile('/bin/bash', shim);
    const child = spawn(shim, ['-c', 'sleep 30; true', '-namespace', 'k8s.io', '-id', 'abc123'], { stdio: 'ignore' });
    await once(child, 'spawn');
    try {
      await new Promise((r) => setTimeout(r, 200));
      const found = await runningShims([shim]);
      // bash takes -c's arguments after the script as $0...: the flags are still in its cmdline.
      expect(found).toEqual([{ pid: child.pid, exe: shim, namespace: 'k8s.io', id: 'abc123' }]);
      expect((await descendants(child.pid!)).length).toBeGreaterThanOrEqual(1);
      expect(await runningShims([path.join(work, 'other')])).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('lists mount points below a prefix deepest first, unescaping mountinfo', async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'np-mounts-'));
    const info = path.join(work, 'mountinfo');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(info, [
      '22 1 0:21 / /run rw - tmpfs tmpfs rw',
      '90 22 0:50 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw',
      '91 22 0:51 / /run/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm rw - tmpfs shm rw',
      '92 22 0:52 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/with\\040space/rootfs rw - overlay overlay rw',
      '93 22 0:53 / /run/containerd2/elsewhere rw - tmpfs tmpfs rw',
    ].join('\n'));
    expect(await mountsBelow(['/run/containerd/io.containerd.runtime.v2.task', '/run/containerd/io.containerd.grpc.v1.cri'], info)).toEqual([
      '/run/containerd/io.containerd.runtime.v2.task/k8s.io/with space/rootfs',
      '/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs',
      '/run/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm',
    ]);
  });
});
