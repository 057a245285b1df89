/**
 * End to end with real binaries: Debian's containerd (1.6 from Debian 12 and 2.x from sid), runc and
 * CNI plugins packed as upstream release assets, served by the test release server, installed by the
 * built CLI, and proven by the smoke test, which starts that containerd and runs a real container.
 * nerdctl and crictl are stand-ins that say so. Needs root; NODE_PREP_E2E=1 makes a skip a failure.
 */
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { debianRelease, e2eSkipReason, type DebianRelease } from '../support/debian.ts';
import { withHostLock } from '../support/host-lock.ts';
import { contentOf, snapshot } from '../support/layout.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';

const skip = e2eSkipReason();
const fx = debianRelease() as DebianRelease;
let gh: ReleaseServer;
let work: string;

beforeAll(async () => {
  if (skip) return;
  gh = await startReleaseServer({ repos: fx.repos });
  work = await mkdtemp(path.join(os.tmpdir(), 'np-e2e-'));
});
afterAll(async () => {
  await gh?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const versions = (containerd: string) => [
  '--containerd', containerd, '--runc', fx.versions.runc, '--cni', fx.versions.cni, '--nerdctl', fx.versions.nerdctl, '--crictl', fx.versions.crictl,
];
const source = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', fx.checksums, '--cache-dir', path.join(work, 'cache'), '--busybox', fx.busybox];

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

describe.skipIf(skip !== undefined)('real binaries, real containers', () => {
  it.each(fx?.versions.containerd ?? [])('install --root with containerd %s: the smoke test runs a container', async (containerd) => {
    const root = await mkdtemp(path.join(work, 'root-'));
    const r = await runCli(['install', '--root', root, ...versions(containerd), ...source(), '--json'], { timeoutMs: 180_000 });
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.smoke.ok).toBe(true);
    const checks = report.smoke.checks as Check[];
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    for (const name of ['containerd version', 'runc version', 'config', 'socket', 'cri version', 'cri status', 'container run', 'nerdctl ps', 'ctr images']) {
      expect(checks.find((c) => c.name === name), name).toMatchObject({ ok: true });
    }
    expect(checks.find((c) => c.name === 'cri version')!.detail).toContain('containerd');
    expect(report.smoke.mode).toBe('temporary');
  }, 240_000);

  it('the systemd cgroup driver, which this host cannot run, is adapted in the temporary run and said so', async () => {
    const root = await mkdtemp(path.join(work, 'root-'));
    const containerd = fx.versions.containerd.at(-1)!;
    const r = await runCli(['install', '--root', root, '--cgroup-driver', 'systemd', ...versions(containerd), ...source(), '--json'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(await readFile(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toContain('SystemdCgroup = true');
    expect(report.smoke.ok).toBe(true);
    expect(report.smoke.adaptations.join('\n')).toMatch(/SystemdCgroup/);
    expect((report.smoke.checks as Check[]).find((c) => c.name === 'config')).toMatchObject({ ok: true });
  }, 240_000);

  it('a broken setting fails the smoke test and names the check', async () => {
    const root = await mkdtemp(path.join(work, 'root-'));
    const containerd = fx.versions.containerd.at(-1)!;
    expect((await runCli(['install', '--root', root, '--skip-smoke', ...versions(containerd), ...source()], { timeoutMs: 120_000 })).code).toBe(0);

    const config = path.join(root, 'etc/containerd/config.toml');
    const good = await readFile(config, 'utf8');
    await writeFile(config, good.replace('SystemdCgroup = false', 'SystemdCgroup = true'));
    const wrongCgroup = await runCli(['smoke', '--root', root, '--busybox', fx.busybox], { timeoutMs: 120_000 });
    expect(wrongCgroup.code).toBe(1);
    expect(wrongCgroup.stdout).toMatch(/config.*SystemdCgroup/);

    await writeFile(config, good);
    await unlink(path.join(root, 'usr/local/sbin/runc'));
    const noRunc = await runCli(['smoke', '--root', root, '--busybox', fx.busybox, '--json'], { timeoutMs: 120_000 });
    expect(noRunc.code).toBe(1);
    const failed = (JSON.parse(noRunc.stdout).checks as Check[]).filter((c) => !c.ok).map((c) => c.name);
    expect(failed).toContain('runc version');
    expect(failed).toContain('container run');
  }, 240_000);

  it('installs into the real paths of this machine, smoke-tests, and uninstalls back to how it was', async () => {
    await withHostLock(async () => {
      const watched = ['/usr/local/bin', '/usr/local/sbin', '/opt/cni', '/etc/containerd', '/etc/systemd/system', '/etc/crictl.yaml', '/etc/nerdctl', '/etc/modules-load.d', '/etc/sysctl.d', '/var/lib/node-prep'];
      const before = await Promise.all(watched.map(async (p) => contentOf(await snapshot(p))));
      const containerd = fx.versions.containerd.at(-1)!;
      const r = await runCli(['install', ...versions(containerd), ...source(), '--json'], { timeoutMs: 240_000 });
      try {
        expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0);
        const report = JSON.parse(r.stdout);
        expect(report.service).toMatchObject({ kind: 'enabled-in-image', link: '/etc/systemd/system/multi-user.target.wants/containerd.service' });
        expect(report.service.reason).toContain('systemd is not PID 1');
        expect(report.smoke.ok).toBe(true);
        const smoke = await runCli(['smoke', '--busybox', fx.busybox], { timeoutMs: 120_000 });
        expect(smoke.code, smoke.stdout + smoke.stderr).toBe(0);
        expect(smoke.stdout).toContain('container run');
        const again = await runCli(['install', ...versions(containerd), ...source(), '--skip-smoke', '--json'], { timeoutMs: 60_000 });
        expect(JSON.parse(again.stdout).changed).toBe(false);
      } finally {
        const u = await runCli(['uninstall'], { timeoutMs: 60_000 });
        expect(u.code, u.stderr).toBe(0);
      }
      expect(await Promise.all(watched.map(async (p) => contentOf(await snapshot(p))))).toEqual(before);
    });
  }, 400_000);
});
