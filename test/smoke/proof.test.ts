/**
 * The container check proves the container ran: what it prints (busybox) or leaves in its rootfs
 * (runc) are values of this run that a command faked in code, or run on the host instead of in a
 * container, cannot produce. The real container's side is in smoke.e2e.test.ts.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemExec, type Exec } from '../../src/exec/exec.ts';
import { findStaticBusybox, prepareRootfs, runContainer, type Payload } from '../../src/smoke/container.ts';
import { judgeProof, proofCommand, writeProof } from '../../src/smoke/proof.ts';
import { recordingExec } from '../support/recording-exec.ts';
import { ASSETS, E2E, isRoot } from './image-root.ts';

let base: string;
let busybox: string | undefined;
const runc = existsSync(ASSETS.runc) ? ASSETS.runc : undefined;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'np-proof-'));
  const found = await findStaticBusybox([ASSETS.busybox, '/bin/busybox', '/usr/bin/busybox']);
  busybox = found.kind === 'found' ? found.path : undefined;
});
afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

/** A rootfs as the smoke test makes it, with the payload and its proof. */
async function rootfsFor(payload: Payload) {
  const rootfs = await mkdtemp(path.join(base, 'rootfs-'));
  const proof = await prepareRootfs(rootfs, payload);
  return { rootfs, proof };
}

const runWith = (exec: Exec, ctr: string, rootfs: string, proof: Awaited<ReturnType<typeof prepareRootfs>>) =>
  runContainer(exec, {
    ctr, socket: '/nonexistent/containerd.sock', id: 'smoke-proof-test', rootfs, proof, runc: '/usr/local/sbin/runc',
    runcRoot: path.join(base, 'runc-root'), fifoDir: path.join(base, 'fifo'), systemdCgroup: false, timeoutMs: 10_000,
  });

function need(what: string, present: unknown, skip: (note: string) => void) {
  if (present) return;
  if (E2E) throw new Error(`NODE_PREP_E2E=1 but ${what} is missing`);
  skip(`no ${what}`);
}

describe('the proof a container leaves', () => {
  it('a fresh folder per run at the rootfs top, absent on this host, with the nonce for busybox', async () => {
    const rootfs = await mkdtemp(path.join(base, 'w-'));
    const a = await writeProof(rootfs, 'busybox');
    const b = await writeProof(rootfs, 'busybox');
    expect(a.dir).toMatch(/^\/node-prep-smoke-[0-9a-f]{16}$/);
    expect(a.dir).not.toBe(b.dir);
    expect(a.nonce).not.toBe(b.nonce);
    expect(existsSync(a.dir)).toBe(false);
    expect(existsSync(path.join(rootfs, a.dir, 'nonce'))).toBe(true);
    expect(proofCommand(a)).toEqual(['/bin/sh', '-c', `read n < ${a.dir}/nonce; echo "node-prep-smoke pid=$$ nonce=$n"`]);
    const r = await writeProof(rootfs, 'runc');
    expect(existsSync(path.join(rootfs, r.dir, 'nonce'))).toBe(false);
    expect(proofCommand(r)).toEqual(['/runc', 'spec', '--bundle', r.dir]);
  });

  it('takes another name when the first one exists on this host', async () => {
    const rootfs = await mkdtemp(path.join(base, 'w-'));
    const tried: string[] = [];
    const proof = await writeProof(rootfs, 'busybox', async (p) => (tried.push(p), tried.length === 1));
    expect(tried).toHaveLength(2);
    expect(proof.dir).toBe(tried[1]);
  });

  it.each([
    ['the right pid and nonce', (n: string) => `node-prep-smoke pid=1 nonce=${n}\n`, true, /^ran as PID 1 of its own PID namespace and read this run's nonce/],
    ['the marker of old, built from the container id', () => 'node-prep-smoke-smoke-1-abc:42\n', false, /not the "node-prep-smoke pid=… nonce=…" line its command prints/],
    ['PID 1 with a nonce of another run', () => `node-prep-smoke pid=1 nonce=${'0'.repeat(32)}\n`, false, /it printed the nonce "0{32}", not this run's [0-9a-f]{32}$/],
    ['a host pid and no nonce', () => 'node-prep-smoke pid=4242 nonce=\n', false, /its shell was process 4242, not PID 1 of a PID namespace of its own; it could not read \/node-prep-smoke-[0-9a-f]+\/nonce, which exists only in the container's rootfs$/],
    ['nothing', () => '', false, /printed "", not the/],
  ])('busybox output: %s', async (_name, output, ok, detail) => {
    const rootfs = await mkdtemp(path.join(base, 'j-'));
    const proof = await writeProof(rootfs, 'busybox');
    const outcome = await judgeProof(proof, output(proof.nonce), rootfs);
    expect(outcome.ok).toBe(ok);
    expect(outcome.detail).toMatch(detail);
  });

  it('runc: a config.json that is not an OCI spec, or a link in its place, does not pass', async () => {
    const rootfs = await mkdtemp(path.join(base, 'j-'));
    const proof = await writeProof(rootfs, 'runc');
    await writeFile(path.join(rootfs, proof.dir, 'config.json'), '{"hello": 1}');
    expect((await judgeProof(proof, '', rootfs)).detail).toMatch(/is not the OCI spec `runc spec` writes/);
    await rm(path.join(rootfs, proof.dir, 'config.json'));
    await writeFile(path.join(base, 'spec.json'), '{"ociVersion": "1.0.2"}');
    await symlink(path.join(base, 'spec.json'), path.join(rootfs, proof.dir, 'config.json'));
    expect(await judgeProof(proof, '', rootfs)).toEqual({ ok: false, detail: expect.stringMatching(/left no \/node-prep-smoke-\w+\/config\.json in its rootfs \(it is a symbolic link\)/) });
  });
});

describe('a container run faked in code fails the check', () => {
  it('busybox: ctr answers the expected-looking line without running anything', async ({ skip }) => {
    need('static busybox', busybox, skip);
    const { rootfs, proof } = await rootfsFor({ kind: 'busybox', path: busybox! });
    const fake = recordingExec(() => ({ stdout: 'node-prep-smoke pid=1 nonce=d41d8cd98f00b204e9800998ecf8427e\n' }));
    const outcome = await runWith(fake, 'ctr', rootfs, proof);
    expect(fake.calls).toHaveLength(1);
    expect(outcome.ok).toBe(false);
    expect(outcome.detail).toMatch(/^the test container's output does not prove it ran in a container \("node-prep-smoke pid=1 nonce=d41d8cd98f00b204e9800998ecf8427e"\): it printed the nonce "d41d8cd98f00b204e9800998ecf8427e", not this run's/);
  });

  it('runc: ctr answers with runc\'s version and exit 0 without running anything', async () => {
    const { rootfs, proof } = await rootfsFor({ kind: 'runc', path: '/bin/true' });
    const fake = recordingExec(() => ({ stdout: 'runc version 1.3.0\ncommit: v1.3.0-0\nspec: 1.2.1\n' }));
    const outcome = await runWith(fake, 'ctr', rootfs, proof);
    expect(outcome.ok).toBe(false);
    expect(outcome.detail).toBe(`the test container (\`runc spec --bundle ${proof.dir}\`) exited 0 but left no ${proof.dir}/config.json in its rootfs (ENOENT): the command did not run in the container's rootfs`);
  });
});

describe('a stand-in ctr that runs the command on this host, not in a container, fails the check', () => {
  // Each takes what follows `--rootfs DIR ID` (the container's command) and runs it here: as given,
  // with the rootfs's own binary, or chrooted into the rootfs (root only) but in this PID namespace.
  const standIn = async (name: string, run: string) => {
    const file = path.join(base, `ctr-stand-in-${name}`);
    await mkdir(base, { recursive: true });
    await writeFile(file, [
      '#!/bin/sh',
      `# node-prep test: a stand-in ctr (${name}) that runs the container's command on the host`,
      'while [ $# -gt 0 ]; do case "$1" in --rootfs) rootfs=$2; shift 3; break ;; *) shift ;; esac; done',
      run, '',
    ].join('\n'), { mode: 0o755 });
    return file;
  };
  const HOST = 'exec "$@"';
  const ROOTFS_BINARY = 'first=$1; shift; exec "$rootfs$first" "$@"';
  const CHROOT = 'exec chroot "$rootfs" "$@"';

  it.for([['as given', HOST], ['with the rootfs\'s binary', ROOTFS_BINARY]])('busybox, %s: not PID 1, and no nonce', async ([name, run], { skip }) => {
    need('static busybox', busybox, skip);
    const { rootfs, proof } = await rootfsFor({ kind: 'busybox', path: busybox! });
    const outcome = await runWith(systemExec, await standIn(name!.replace(/\W+/g, '-'), run!), rootfs, proof);
    expect(outcome.ok).toBe(false);
    expect(outcome.detail).toMatch(new RegExp(`^the test container's output does not prove it ran in a container \\("node-prep-smoke pid=\\d+ nonce="\\): its shell was process \\d+, not PID 1 of a PID namespace of its own; it could not read ${proof.dir}/nonce, which exists only in the container's rootfs$`));
  });

  it('busybox, chrooted into the rootfs: reads the nonce, but is not PID 1', async ({ skip }) => {
    need('static busybox', busybox, skip);
    if (!isRoot) skip('chroot needs root');
    const { rootfs, proof } = await rootfsFor({ kind: 'busybox', path: busybox! });
    const outcome = await runWith(systemExec, await standIn('chroot', CHROOT), rootfs, proof);
    expect(outcome.ok).toBe(false);
    expect(outcome.detail).toMatch(new RegExp(`\\("node-prep-smoke pid=\\d+ nonce=${proof.nonce}"\\): its shell was process \\d+, not PID 1 of a PID namespace of its own$`));
  });

  it.for([['as given', HOST], ['with the rootfs\'s binary', ROOTFS_BINARY]])('runc, %s: the spec is not written in the rootfs', async ([name, run], { skip }) => {
    need('runc from the Debian fixtures', runc, skip);
    const { rootfs, proof } = await rootfsFor({ kind: 'runc', path: runc! });
    const outcome = await runWith(systemExec, await standIn(`runc-${name!.replace(/\W+/g, '-')}`, run!), rootfs, proof);
    expect(outcome.ok).toBe(false);
    // As given, /runc does not exist here; the rootfs's runc cannot enter a folder that exists only in the rootfs.
    expect(outcome.detail).toMatch(name === 'as given' ? /^the test container did not run: .* exited with code 127/ : new RegExp(`^the test container did not run: .*exited with code 1: .*${proof.dir}.*no such file or directory`, 'i'));
    expect(existsSync(proof.dir)).toBe(false);
  });
});
