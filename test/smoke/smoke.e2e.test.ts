// The smoke test for real, as root: Debian's containerd 1.6.20 and 2.1.9, runc 1.1.5 and CNI 1.1.1
// laid out in a temporary image root, a temporary containerd started from it, a busybox container
// run, and afterwards nothing left: no containerd or shim, no mount, no temp dir, no cgroup.
//
// All in one file on purpose: vitest runs the tests of a file one after the other, and two
// containerds cleaning up /run/containerd and the node-prep-smoke cgroups at once would make the
// "nothing left" assertions race.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemExec } from '../../src/exec/exec.ts';
import { installedBinaries } from '../../src/smoke/binaries.ts';
import { runSmoke, summarizeSmoke } from '../../src/smoke/checks.ts';
import { plannedChecks } from '../../src/plan/smoke-checks.ts';
import { smokeExitCode } from '../../src/commands/smoke.ts';
import { cleanupHost, shimSocketPath } from '../../src/smoke/cleanup.ts';
import { dumpConfig } from '../../src/smoke/config.ts';
import { listenersOutside } from '../../src/smoke/temp-config.ts';
import { stringify } from 'smol-toml';
import { prepareRootfs, removeContainer, runContainer, SMOKE_NAMESPACE } from '../../src/smoke/container.ts';
import { stopTemporary } from '../../src/smoke/daemon.ts';
import { cgroupMounts, cgroupProcs, findProcesses, mountsUnder } from '../../src/smoke/host.ts';
import { ALL_CHECKS, check, expectNothingLeft, failures, requirePrerequisites, runnable, smoke, startDaemon, VERSIONS, writeTemporaryConfig } from './e2e.ts';
import { ASSETS, configToml, E2E, expectFor, makeImageRoot, recordBinaries, type ImageRoot } from './image-root.ts';

let base: string;
beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'np-e2e-'));
});
afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

describe.skipIf(!runnable && !E2E)('smoke test in a temporary containerd (real binaries, root)', () => {
  // /run/containerd: the temporary containerd creates it when it is missing; it must be gone again.
  let runDirBefore: boolean;
  beforeAll(() => {
    runDirBefore = existsSync('/run/containerd');
  });

  // One image root per containerd version (extracting it is most of a test's time); the negative
  // cases change one thing and put it back.
  const images = new Map<string, ImageRoot>();
  const image = async (version: string) => {
    requirePrerequisites();
    if (!images.has(version)) images.set(version, await makeImageRoot(version));
    return images.get(version)!;
  };
  afterAll(async () => {
    for (const img of images.values()) await img.remove();
  });

  describe.each(VERSIONS)('containerd %s', (version) => {
    it('passes every check, adapts SystemdCgroup (no systemd here) and leaves nothing behind', async () => {
      const run = await smoke(base, version, await image(version));
      const { report } = run;
      expect(failures(report)).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.mode).toBe('temporary');
      expect(report.checks.map((c) => c.name)).toEqual(ALL_CHECKS);
      expect(report.adaptations).toHaveLength(1);
      expect(report.adaptations[0]).toMatch(/^SystemdCgroup = true → false for runtime runc/);
      // The config check holds the installed file to the intended value, not the adapted one.
      expect(check(report, 'config').detail).toContain('SystemdCgroup = true');
      expect(check(report, 'cri version').detail).toContain(`runtime "containerd" "${version}`);
      // Observed, not assumed: its gRPC and ttrpc sockets in the scratch dir and CRI streaming on loopback.
      expect(check(report, 'containerd start').detail).toMatch(
        /listens only on (\/\S+)\/containerd\.sock, \1\/containerd\.sock\.ttrpc, tcp 127\.0\.0\.1:\d+ \(CRI streaming, ephemeral port on loopback\);/,
      );
      expect(check(report, 'cri status').detail).toMatch(/RuntimeReady=true, NetworkReady=false/);
      expect(check(report, 'container run').detail).toMatch(/ran as PID 1 of its own PID namespace and read this run's nonce from \/node-prep-smoke-[0-9a-f]{16}\/nonce in its rootfs \(printed "node-prep-smoke pid=1 nonce=[0-9a-f]{32}"\)/);
      expect(check(report, 'nerdctl ps').detail).toContain('stand-in');
      for (const c of report.checks) expect(c.durationMs).toBeGreaterThanOrEqual(0);
      await expectNothingLeft(run);
      expect(existsSync('/run/containerd')).toBe(runDirBefore);
      console.log(`containerd ${version}: smoke run took ${Math.round(run.ms)} ms (${report.checks.map((c) => `${c.name} ${c.durationMs}`).join(', ')})`);
    });

    it('fails the config check, naming SystemdCgroup, when the installed file says false', async () => {
      const img = await image(version);
      const config = path.join(img.root, 'etc/containerd/config.toml');
      await writeFile(config, configToml(version, false));
      try {
        const run = await smoke(base, version, img);
        expect(run.report.ok).toBe(false);
        expect(failures(run.report)).toEqual([
          'config: /etc/containerd/config.toml does not have the intended values: SystemdCgroup (runtime runc): want true, effective false',
        ]);
        // Nothing to adapt: the file already asks for cgroupfs.
        expect(run.report.adaptations).toEqual([]);
        await expectNothingLeft(run);
      } finally {
        await writeFile(config, configToml(version, true));
      }
    });

    it('fails runc version and container run, naming runc, when runc is missing', async () => {
      const img = await image(version);
      const runc = path.join(img.root, 'usr/local/sbin/runc');
      await rename(runc, `${runc}.away`);
      try {
        const run = await smoke(base, version, img);
        // Under --root the smoke test runs private copies of the recorded binaries: a missing one is not copied.
        const why = 'runc: /usr/local/sbin/runc is gone, or no longer a regular file (node-prep installed it); not run';
        // The runtime's BinaryName names it too: the temporary containerd is not started with it.
        const failed = failures(run.report);
        expect(failed[0]).toBe(`runc version: ${why}`);
        expect(failed[1]).toBe('containerd start: runtime runc runs /usr/local/sbin/runc, which is not a binary node-prep installed and finds as it installed it: the smoke test runs only the binaries it verified');
        expect(failed.slice(2).every((f) => f.endsWith('skipped: the temporary containerd did not start'))).toBe(true);
        await expectNothingLeft(run);
      } finally {
        await rename(`${runc}.away`, runc);
      }
    });
    it('reads the temporary config back through the real binary: nothing listens outside, and a debug socket would be named', async () => {
      const { scratch, paths, bins, tc, file } = await writeTemporaryConfig(base, await image(version), 'rb-');
      const back = await dumpConfig(systemExec, bins.containerd, file, 10_000);
      if (back.kind !== 'ok') throw new Error(back.why);
      expect(listenersOutside(back.config, paths)).toEqual([]);
      const leaky = structuredClone(tc.config) as any;
      leaky.debug.address = path.join(base, 'debug.sock');
      await writeFile(file, stringify(leaky));
      const leaked = await dumpConfig(systemExec, bins.containerd, file, 10_000);
      if (leaked.kind !== 'ok') throw new Error(leaked.why);
      expect(listenersOutside(leaked.config, paths)).toEqual([`debug.address = "${path.join(base, 'debug.sock')}"`]);
      await rm(scratch, { recursive: true, force: true });
    });
  });

  // A containerd the smoke test cannot see listening (here: behind a shell that does not exec it) is
  // not taken on trust: the start check fails and everything it started is gone afterwards.
  it('fails containerd start when the daemon\'s own listeners cannot be seen, and leaves nothing behind', async () => {
    const img = await image('2.1.9');
    const bin = path.join(img.root, 'usr/local/bin/containerd');
    await rename(bin, `${bin}.real`);
    await writeFile(bin, `#!/bin/sh\n# node-prep test: a wrapper that does not exec, so its pid holds no socket\nexec_real='${bin}.real'\n"$exec_real" "$@"\n`, { mode: 0o755 });
    await recordBinaries(img.root); // as installed: the smoke test runs only recorded binaries
    try {
      const tmp = await mkdtemp(path.join(base, 't-'));
      const report = await runSmoke(
        { root: img.root, prefix: '/usr/local', expect: expectFor('2.1.9'), mode: 'temporary', busybox: ASSETS.busybox },
        { exec: systemExec, tmpDir: tmp, timeouts: { listenersMs: 300 } },
      );
      expect(check(report, 'containerd start')).toMatchObject({ ok: false });
      expect(check(report, 'containerd start').detail).toMatch(/: it does not listen on \S+\/containerd\.sock and \S+\/containerd\.sock\.ttrpc after 0\.3 s; stopped it at once/);
      expect(check(report, 'socket').detail).toBe('skipped: the temporary containerd did not start');
      await expectNothingLeft({ report, image: img, tmp, ms: 0 });
    } finally {
      await rename(`${bin}.real`, bin);
      await recordBinaries(img.root);
    }
  });

  // Where ctr is cut off varies (before the task, with a shim up, with runc init in the cgroup):
  // whatever the container check says, nothing may be left.
  it.each([25, 50])('a container run cut off after %i ms by its timeout still leaves nothing behind', async (ms) => {
    requirePrerequisites();
    const tmp = await mkdtemp(path.join(base, 't-'));
    const img = await image('2.1.9');
    const report = await runSmoke(
      { root: img.root, prefix: '/usr/local', expect: expectFor('2.1.9'), mode: 'temporary', busybox: ASSETS.busybox },
      { exec: systemExec, tmpDir: tmp, timeouts: { containerMs: ms } },
    );
    expect(failures(report).filter((f) => !f.startsWith('container run: '))).toEqual([]);
    await expectNothingLeft({ report, image: img, tmp, ms: 0 });
  });

  it('fails container run, naming what is missing, without a static busybox', async () => {
    const run = await smoke(base, '2.1.9', await image('2.1.9'), { busybox: '/bin/ls' });
    const failed = failures(run.report);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/^container run: no static busybox for the test container's rootfs \(\/bin\/ls: dynamically linked \(\/.*\)\); install busybox-static or pass its path; the installed runc \(.*\/sbin\/runc\) is not a static binary either/);
    await expectNothingLeft(run);
  });

  it('skips what needs the daemon, instead of hanging, when the installed config is missing', async () => {
    const img = await image('2.1.9');
    const config = path.join(img.root, 'etc/containerd/config.toml');
    await rm(config);
    try {
      const run = await smoke(base, '2.1.9', img);
      const failed = failures(run.report);
      expect(failed[0]).toMatch(/^config: `containerd config dump` of \/etc\/containerd\/config.toml: cannot read .*config.toml \(ENOENT\)$/);
      expect(failed[1]).toMatch(/^containerd start: skipped: the installed config cannot be read/);
      expect(failed.slice(2)).toEqual(
        ['socket', 'cri version', 'cri status', 'container run', 'nerdctl ps', 'ctr images'].map((n) => `${n}: skipped: the temporary containerd did not start`),
      );
      expect(check(run.report, 'cleanup').ok).toBe(true);
      await expectNothingLeft(run);
    } finally {
      await writeFile(config, configToml('2.1.9', true));
    }
  });

  // The handler is given, not found: these binaries are this machine's own and run natively. What
  // is tested is what the smoke test runs when it knows the binaries run under qemu-user.
  it('under a binfmt handler: runs the binaries and the config, lists containerd and the container as not run', async () => {
    const handler = { name: 'qemu-aarch64', interpreter: '/usr/bin/qemu-aarch64-static', flags: 'F' };
    const run = await smoke(base, '2.1.9', await image('2.1.9'), { emulation: handler });
    const { report } = run;
    expect(failures(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(plannedChecks('emulated', ['containerd', 'runc', 'cni', 'nerdctl', 'crictl']));
    expect(report.notRun.map((c) => c.name)).toEqual(['containerd start', 'socket', 'cri version', 'cri status', 'container run', 'nerdctl ps', 'ctr images']);
    expect(report.notRun[0]!.why).toMatch(/^not run under user-mode emulation \(binfmt handler qemu-aarch64\): qemu-user cannot make runc's container namespaces/);
    expect(report.emulatedBy).toBe('qemu-aarch64 (/usr/bin/qemu-aarch64-static)');
    expect(summarizeSmoke(report)).toMatch(/^smoke test \(the binaries under qemu-aarch64 \(\/usr\/bin\/qemu-aarch64-static\)\): INCOMPLETE: 7 checks could not run here\n/);
    expect(smokeExitCode(report)).toBe(3);
    await expectNothingLeft(run);
  });

  it('under a binfmt handler: a dynamically linked binary whose loader this machine lacks is not run, and neither is the config', async () => {
    const img = await image('2.1.9');
    const bin = path.join(img.root, 'usr/local/bin/containerd');
    const original = await readFile(bin);
    // The same binary asking for a loader that is not here, as an arm64 containerd asks for ld-linux-aarch64.so.1.
    const at = original.indexOf('/lib64/ld-linux-x86-64.so.2\0');
    expect(at).toBeGreaterThan(0);
    const patched = Buffer.from(original);
    patched.write('/lib64/ld-linux-x86-64.so.X', at);
    await writeFile(bin, patched);
    await recordBinaries(img.root);
    try {
      const run = await smoke(base, '2.1.9', img, { emulation: { name: 'qemu-aarch64', interpreter: '/usr/bin/qemu-aarch64-static', flags: 'F' } });
      expect(failures(run.report)).toEqual([]);
      expect(run.report.checks.map((c) => c.name)).toEqual(['ctr version', 'shim version', 'runc version', 'nerdctl version', 'crictl version', 'cleanup']);
      expect(run.report.notRun.slice(0, 2)).toEqual([
        { name: 'containerd version', why: 'containerd is dynamically linked and its loader /lib64/ld-linux-x86-64.so.X is not on this machine, so it cannot load under user-mode emulation (the smoke test does not run the image\'s own libraries)' },
        { name: 'config', why: expect.stringMatching(/^containerd does not load here: containerd is dynamically linked/) },
      ]);
      expect(smokeExitCode(run.report)).toBe(3);
      await expectNothingLeft(run);
    } finally {
      await writeFile(bin, original);
      await recordBinaries(img.root);
    }
  });

  it('service mode without a running containerd: fails the socket check at once and skips the rest', async () => {
    const tmp = await mkdtemp(path.join(base, 't-'));
    const socket = path.join(tmp, 'no-such.sock');
    const report = await runSmoke(
      { root: (await image('1.6.20')).root, prefix: '/usr/local', expect: expectFor('1.6.20'), mode: 'service', socket: `unix://${socket}`, busybox: ASSETS.busybox },
      { exec: systemExec, tmpDir: tmp },
    );
    expect(failures(report)).toEqual([
      `socket: containerd does not answer on ${socket}: the socket does not exist (is containerd running?)`,
      ...['cri version', 'cri status', 'container run', 'nerdctl ps', 'ctr images'].map((n) => `${n}: skipped: containerd does not answer on its socket`),
    ]);
    expect(check(report, 'socket').durationMs).toBeLessThan(1_000);
  });

  it('service mode: checks the running containerd on its socket, neither starting nor stopping it', async () => {
    requirePrerequisites();
    const img = await image('2.1.9');
    const config = path.join(img.root, 'etc/containerd/config.toml');
    await writeFile(config, configToml('2.1.9', false));
    const service = await startDaemon(base, img);
    try {
      const tmp = await mkdtemp(path.join(base, 't-'));
      const report = await runSmoke(
        { root: img.root, prefix: '/usr/local', expect: expectFor('2.1.9', { systemdCgroup: false }), mode: 'service', socket: service.paths.socket, busybox: ASSETS.busybox },
        { exec: systemExec, tmpDir: tmp },
      );
      expect(failures(report)).toEqual([]);
      expect(report.checks.map((c) => c.name)).toEqual(ALL_CHECKS.filter((n) => n !== 'containerd start'));
      expect(report.adaptations).toEqual([]);
      expect(service.daemon.exit()).toBeUndefined();
      const ctr = installedBinaries(img.root, '/usr/local').ctr;
      const namespaces = await execa(ctr, ['--address', service.paths.socket, 'namespaces', 'ls', '-q']);
      expect(namespaces.stdout.split('\n')).not.toContain(SMOKE_NAMESPACE);
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      await service.stop();
      await writeFile(config, configToml('2.1.9', true));
    }
  });

  // Without a static busybox the container runs the installed runc: `runc spec` must write its file
  // in the rootfs. Debian's runc is dynamically linked, so its loader and libraries go in too.
  it('the runc payload in a real container writes its spec in the rootfs, and says what it cannot prove', async () => {
    requirePrerequisites();
    const img = await image('2.1.9');
    const bins = installedBinaries(img.root, '/usr/local');
    const service = await startDaemon(base, img);
    const scratch = await mkdtemp(path.join(base, 'runc-'));
    const id = `smoke-runc-${randomBytes(3).toString('hex')}`;
    try {
      const rootfs = path.join(scratch, 'rootfs');
      const proof = await prepareRootfs(rootfs, { kind: 'runc', path: bins.runc });
      for (const lib of (await execa('ldd', [bins.runc])).stdout.matchAll(/(\/\S+\.so[.\d]*)/g)) {
        await mkdir(path.join(rootfs, path.dirname(lib[1]!)), { recursive: true });
        await copyFile(lib[1]!, path.join(rootfs, lib[1]!));
      }
      await mkdir(path.join(scratch, 'fifo'));
      const outcome = await runContainer(systemExec, {
        ctr: bins.ctr, socket: service.paths.socket, id, rootfs, proof, runc: bins.runc,
        runcRoot: path.join(scratch, 'runc-ctr'), fifoDir: path.join(scratch, 'fifo'), systemdCgroup: false, timeoutMs: 30_000,
      });
      expect(outcome.detail).toMatch(new RegExp(`^container of the static runc binary ${id} in namespace node-prep-smoke wrote ${proof.dir}/config.json \\(OCI 1\\.\\S+\\) inside its rootfs, a path that does not exist on this host; runc cannot show that it ran as PID 1`));
      expect(outcome.ok).toBe(true);
      expect(existsSync(proof.dir)).toBe(false);
      expect(await removeContainer(systemExec, bins.ctr, service.paths.socket, id, 10_000)).toBeUndefined();
    } finally {
      await service.stop();
      const { problems } = await cleanupHost(systemExec, {
        scratchDir: scratch, containerIds: [id], temporary: { socket: service.paths.socket, runDirExisted: service.runDirExisted, shimSocketDir: service.shimSocketDir },
      });
      expect(problems).toEqual([]);
    }
  });

  it.each(VERSIONS)('cleanup kills a shim and container that outlived containerd %s, and removes their traces', async (version) => {
    requirePrerequisites();
    const img = await image(version);
    const bins = installedBinaries(img.root, '/usr/local');
    const { paths, daemon, runDirExisted, shimSocketDir } = await startDaemon(base, img);
    const scratch = paths.dir;
    const id = `smoke-left-${randomBytes(3).toString('hex')}`;
    await prepareRootfs(path.join(scratch, 'rootfs'), { kind: 'busybox', path: ASSETS.busybox });
    await mkdir(path.join(scratch, 'fifo'));
    await execa(bins.ctr, [
      '--address', paths.socket, '--namespace', SMOKE_NAMESPACE, 'run', '-d', '--fifo-dir', path.join(scratch, 'fifo'),
      '--runc-binary', bins.runc, '--runc-root', path.join(scratch, 'runc-ctr'), '--rootfs', path.join(scratch, 'rootfs'), id, '/bin/sh', '-c', 'sleep 300',
    ], { timeout: 30_000 });
    expect((await cgroupProcs(path.join(SMOKE_NAMESPACE, id))).length).toBeGreaterThan(0);
    // SIGTERM stops containerd but not its shims and containers (as in production).
    expect((await stopTemporary(daemon, 10_000)).stopped).toBe(true);
    const fromScratch = (argv: string[]) => argv.some((a) => a.includes(scratch));
    expect((await findProcesses(fromScratch)).map((p) => path.basename(p.argv[0]!))).toContain('containerd-shim-runc-v2');

    const result = await cleanupHost(systemExec, { scratchDir: scratch, containerIds: [id], temporary: { socket: paths.socket, runDirExisted, shimSocketDir } });
    expect(result.problems).toEqual([]);
    expect(result.done.join('; ')).toMatch(/killed leftover containerd-shim-runc-v2\[\d+\]/);
    expect(await findProcesses(fromScratch)).toEqual([]);
    expect(await cgroupProcs(path.join(SMOKE_NAMESPACE, id))).toEqual([]);
    for (const mount of await cgroupMounts()) expect(existsSync(path.join(mount, SMOKE_NAMESPACE, id))).toBe(false);
    expect(await mountsUnder(scratch)).toEqual([]);
    expect(existsSync(scratch)).toBe(false);
    expect(existsSync(shimSocketPath(paths.socket, SMOKE_NAMESPACE, id, shimSocketDir))).toBe(false);
    expect(existsSync('/run/containerd')).toBe(runDirExisted);
  });
});
