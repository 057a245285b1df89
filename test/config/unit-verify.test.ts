// The rendered containerd.service through `systemd-analyze verify`. It works without systemd as
// PID 1 (it loads units in test mode) but checks that ExecStart exists on this host. `--root DIR`
// is no way out: inside DIR it then also needs sysinit.target & co. So the unit is rendered with a
// --prefix inside a temp dir holding a stub `bin/containerd`; the targets it orders after come from
// this host's systemd. --man=no and --generators=no keep host man pages and generators out of it,
// --recursive-errors=no keeps other units' problems out; any output at all fails the test
// (verify prints "Unknown key …" for a misspelt directive).
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderNodeFiles } from '../../src/config/render.ts';
import { E2E, findSystemdAnalyze, missing } from './real-tools.ts';

const analyze = await findSystemdAnalyze();

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'node-prep-unit-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let n = 0;
async function verify(containerdVersion: string, opts: { stub: boolean; edit?: (unit: string) => string }) {
  if (analyze === undefined) throw missing('systemd-analyze', 'install systemd');
  const dir = path.join(tmp, `case-${n++}`);
  const prefix = path.join(dir, 'prefix');
  await mkdir(path.join(prefix, 'bin'), { recursive: true });
  if (opts.stub) {
    await writeFile(path.join(prefix, 'bin/containerd'), '#!/bin/sh\nexit 0\n');
    await chmod(path.join(prefix, 'bin/containerd'), 0o755);
  }
  const files = await renderNodeFiles({
    containerdVersion, prefix, cgroupDriver: 'systemd', registryMirrors: [], namespace: 'k8s.io', components: ['containerd', 'runc'],
  });
  const unit = files.find((f) => f.nodePath === '/etc/systemd/system/containerd.service')!.content;
  const unitPath = path.join(dir, 'containerd.service');
  await writeFile(unitPath, opts.edit ? opts.edit(unit) : unit);
  const args = ['verify', '--man=no', '--generators=no', ...(analyze.recursiveErrors ? ['--recursive-errors=no'] : []), unitPath];
  return execa(analyze.path, args, { reject: false, all: true, timeout: 30_000, env: { SYSTEMD_LOG_LEVEL: 'notice' } });
}

describe.skipIf(analyze === undefined && !E2E)('systemd-analyze verify containerd.service', () => {
  it.each(['1.6.20', '1.7.34', '2.0.11', '2.1.4', '2.2.0', '2.3.4'])('passes for containerd %s', async (version) => {
    const result = await verify(version, { stub: true });
    expect(result.all).toBe('');
    expect(result.exitCode).toBe(0);
  });

  // Controls: the check above means something only if verify does fail on these.
  it('fails when ExecStart does not exist', async () => {
    const result = await verify('2.2.0', { stub: false });
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toMatch(/containerd is not executable/);
  });

  it('reports a misspelt directive', async () => {
    const result = await verify('2.2.0', { stub: true, edit: (unit) => unit.replace('Delegate=yes', 'Delegated=yes') });
    expect(result.all).toMatch(/Unknown key.*Delegated/);
  });
});
