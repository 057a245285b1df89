/**
 * The ways an install can go wrong on a real machine, and what node-prep does about each: a run
 * already in progress, a folder that leads outside the image root, a unit link in the way, files
 * changed behind its back, configuration that a new plan no longer wants.
 */
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { snapshot } from '../support/layout.ts';
import type { ReleaseServer } from '../support/release-server.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';

let gh: ReleaseServer;
let work: string;
let sums: string;
let root: string;

const install = (...extra: string[]) =>
  runCli(['install', '--root', root, '--no-start', '--skip-smoke', '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64', '--cache-dir', path.join(work, 'cache'), ...extra]);
const installJson = async (...extra: string[]) => {
  const r = await install('--json', ...extra);
  return { ...r, report: JSON.parse(r.stdout) };
};

let mirror: SyntheticMirror;
beforeAll(async () => {
  mirror = await startSyntheticMirror('np-safety-', { signer: null });
  ({ gh, work, sums } = mirror);
});
afterAll(() => mirror.close());
beforeEach(async () => {
  root = await mkdtemp(path.join(work, 'root-'));
});

describe('install refuses before it changes anything', () => {
  it('a directory where /etc/crictl.yaml goes: plan says BLOCKED and exits 1, install stops before downloading with the same reason', async () => {
    await mkdir(path.join(root, 'etc/crictl.yaml'), { recursive: true });
    await writeFile(path.join(root, 'etc/crictl.yaml/keep'), 'someone else’s\n');
    const before = await snapshot(root);
    const plan = await runCli(['plan', '--root', root, '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64', '--json']);
    expect(plan.code).toBe(1);
    const change = JSON.parse(plan.stdout).files.find((f: { path: string }) => f.path === '/etc/crictl.yaml').change;
    expect(change).toEqual({ kind: 'blocked', reason: 'it is a directory: node-prep only replaces regular files; move it aside and run again' });
    const text = await runCli(['plan', '--root', root, '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64']);
    expect(text.stdout).toContain(`BLOCKED: /etc/crictl.yaml: ${change.reason}`);

    gh.requests.length = 0;
    const r = await install();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`/etc/crictl.yaml: ${change.reason}`);
    expect(r.stderr).not.toContain('Download and verify');
    // Nothing was fetched, no backup was made, the root is as it was.
    expect(gh.requests.filter((q) => q.path.includes('/releases/download/')).map((q) => q.path)).toEqual([]);
    expect(await snapshot(root)).toEqual(before);
  });

  it.each([
    ['a regular file where a folder must go', async () => writeFile(path.join(root, 'etc/containerd'), 'not a folder\n'), '/etc/containerd/config.toml: it is below /etc/containerd, which is a regular file'],
    ['a regular file where the unit’s wants link goes', async () => {
      await mkdir(path.join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
      await writeFile(path.join(root, 'etc/systemd/system/multi-user.target.wants/containerd.service'), 'not a link\n');
    }, '/etc/systemd/system/multi-user.target.wants/containerd.service exists and is not a link to a containerd.service'],
    ['a regular file where the wants folder goes', async () => {
      await mkdir(path.join(root, 'etc/systemd/system'), { recursive: true });
      await writeFile(path.join(root, 'etc/systemd/system/multi-user.target.wants'), 'not a folder\n');
    }, '/etc/systemd/system/multi-user.target.wants is not a folder'],
  ])('%s: plan exits 1 with BLOCKED, install stops before downloading', async (_name, arrange, reason) => {
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await arrange();
    const plan = await runCli(['plan', '--root', root, '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64']);
    expect(plan.code).toBe(1);
    expect(plan.stdout).toContain(`BLOCKED: ${reason}`);
    gh.requests.length = 0;
    const r = await install();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(reason);
    expect(gh.requests.filter((q) => q.path.includes('/releases/download/')).map((q) => q.path)).toEqual([]);
  });

  it('while another run holds the lock, and leaves that run’s files alone', async () => {
    const sleeper = spawn('sleep', ['30']);
    try {
      const state = path.join(root, 'var/lib/node-prep');
      await mkdir(path.join(state, 'tx/tx-other'), { recursive: true });
      await writeFile(path.join(state, 'tx/tx-other/0-containerd'), 'the other run’s backup');
      await writeFile(path.join(state, 'lock'), `${JSON.stringify({ pid: sleeper.pid, startedAt: new Date().toISOString(), hostname: os.hostname() })}\n`);
      const r = await install();
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`another node-prep run (pid ${sleeper.pid}`);
      expect(await readFile(path.join(state, 'tx/tx-other/0-containerd'), 'utf8')).toBe('the other run’s backup');
    } finally {
      sleeper.kill();
    }
  });

  it('when a folder in the image root is a symlink that leads outside it', async () => {
    const outside = await mkdtemp(path.join(work, 'outside-'));
    await symlink(outside, path.join(root, 'etc'));
    const r = await install();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`behind the symlink ${root}/etc -> ${outside}, which leads outside the root`);
    expect(await snapshot(outside)).toEqual({});
    expect(Object.keys(await snapshot(root))).toEqual(['etc']);
  });

  it('when a regular file sits where the unit’s wants link goes', async () => {
    const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants');
    await mkdir(wants, { recursive: true });
    await writeFile(path.join(wants, 'containerd.service'), 'not a link');
    const before = await snapshot(root);
    const r = await install();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not a link to a containerd.service');
    expect(await snapshot(root)).toEqual(before);
  });
});

describe.skipIf(process.getuid?.() !== 0)('a run that fails midway (root: chattr)', () => {
  it('leaves the backups folder as it found it: the copy of a foreign config.toml goes with the rollback', async () => {
    await mkdir(path.join(root, 'etc/containerd'), { recursive: true });
    await writeFile(path.join(root, 'etc/containerd/config.toml'), 'version = 2\n# the site’s own\n');
    // An immutable file (chattr +i) where nerdctl.toml goes: its replacement fails in the transaction,
    // after config.toml was backed up and replaced.
    const nerdctl = path.join(root, 'etc/nerdctl/nerdctl.toml');
    await mkdir(path.dirname(nerdctl), { recursive: true });
    await writeFile(nerdctl, '# immutable\n');
    await execa('chattr', ['+i', nerdctl]);
    try {
      const r = await install();
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/nerdctl\.toml failed \(EPERM/);
      expect(await readFile(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toBe('version = 2\n# the site’s own\n');
      await expect(lstat(path.join(root, 'var/lib/node-prep/backups'))).rejects.toThrow();
      await expect(lstat(path.join(root, 'var/lib/node-prep/manifest.json'))).rejects.toThrow();
      // No trace at all: the state, transaction and staging folders it made are gone again.
      await expect(lstat(path.join(root, 'var'))).rejects.toThrow();
    } finally {
      await execa('chattr', ['-i', nerdctl]);
    }
  });
});

describe('the disk changing while install runs', () => {
  it('a file changed after the comparison is not replaced on the stale decision: install stops, nothing changed', async () => {
    // containerd's download is held back; the others are verified and staged meanwhile, which
    // shows that the comparison is done.
    gh.setFault({ match: 'containerd-2.3.4-linux-amd64.tar.gz', delayMs: 2_000 });
    try {
      const running = install();
      const state = path.join(root, 'var/lib/node-prep');
      const deadline = Date.now() + 15_000;
      while (!(await readdir(state).catch(() => [] as string[])).some((n) => n.startsWith('staging-')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await mkdir(path.join(root, 'etc'), { recursive: true });
      await writeFile(path.join(root, 'etc/crictl.yaml'), 'runtime-endpoint: written meanwhile\n');
      const r = await running;
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/etc\/crictl\.yaml changed while node-prep was installing: it was absent, now a file/);
      expect(await readFile(path.join(root, 'etc/crictl.yaml'), 'utf8')).toBe('runtime-endpoint: written meanwhile\n');
      await expect(lstat(path.join(root, 'usr/local/bin/containerd'))).rejects.toThrow();
      await expect(lstat(path.join(state, 'manifest.json'))).rejects.toThrow();
    } finally {
      gh.clearFaults();
    }
  });
});

describe('install into a root that does not exist yet', () => {
  it('creates it', async () => {
    const fresh = path.join(root, 'not', 'yet');
    const r = await runCli(['install', '--root', fresh, '--no-start', '--skip-smoke', '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64', '--cache-dir', path.join(work, 'cache')]);
    expect(r.code, r.stderr).toBe(0);
    expect((await lstat(path.join(fresh, 'usr/local/bin/containerd'))).isFile()).toBe(true);
  });
});

describe('install keeps what is on disk and in the record in step', () => {
  it('takes a distro package’s wants link as enabled, and uninstall leaves it', async () => {
    const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants');
    await mkdir(wants, { recursive: true });
    await symlink('/lib/systemd/system/containerd.service', path.join(wants, 'containerd.service'));
    const r = await installJson();
    expect(r.code, r.stderr).toBe(0);
    expect(r.report.service).toMatchObject({ kind: 'enabled-in-image', created: false });
    expect((await runCli(['uninstall', '--root', root])).code).toBe(0);
    expect(await readlink(path.join(wants, 'containerd.service'))).toBe('/lib/systemd/system/containerd.service');
  });

  it('reinstalls a binary whose mode was changed', async () => {
    expect((await install()).code).toBe(0);
    await chmod(path.join(root, 'usr/local/bin/containerd'), 0o644);
    const r = await installJson();
    expect(r.report.components.find((c: { name: string }) => c.name === 'containerd')).toMatchObject({ action: 'install', reason: '/usr/local/bin/containerd changed since it was installed' });
    expect((await lstat(path.join(root, 'usr/local/bin/containerd'))).mode & 0o777).toBe(0o755);
  });

  it('notices a binary changed in place even when its size and mtime were put back', async () => {
    expect((await install()).code).toBe(0);
    const file = path.join(root, 'usr/local/bin/ctr');
    const st = await lstat(file);
    const body = await readFile(file, 'utf8');
    await writeFile(file, body.replace('synthetic', 'SYNTHETIC'));
    await utimes(file, st.atime, st.mtime);
    const r = await installJson();
    expect(r.report.components.find((c: { name: string }) => c.name === 'containerd').action).toBe('install');
    expect(await readFile(file, 'utf8')).toBe(body);
  });

  it('removes the hosts.toml of a registry mirror that is no longer asked for', async () => {
    expect((await install('--registry-mirror', 'docker.io=https://mirror.example.com')).code).toBe(0);
    const hosts = path.join(root, 'etc/containerd/certs.d/docker.io/hosts.toml');
    expect((await lstat(hosts)).isFile()).toBe(true);
    // plan shows the removal install then makes.
    const plan = JSON.parse((await runCli(['plan', '--root', root, '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64', '--json'])).stdout);
    expect(plan.removals).toEqual([{ path: '/etc/containerd/certs.d/docker.io/hosts.toml', component: 'containerd', reason: 'no longer rendered for this plan' }]);
    const r = await installJson();
    expect(r.report.changed).toBe(true);
    expect(r.report.files).toContainEqual(expect.objectContaining({ path: '/etc/containerd/certs.d/docker.io/hosts.toml', outcome: expect.objectContaining({ kind: 'removed' }) }));
    await expect(lstat(hosts)).rejects.toThrow();
    const status = JSON.parse((await runCli(['status', '--root', root, '--json'])).stdout);
    expect(status.drift).toEqual([]);
  });

  it('keeps a copy of an edit to a node-prep file, but uninstall does not bring the edit back', async () => {
    expect((await install()).code).toBe(0);
    await writeFile(path.join(root, 'etc/crictl.yaml'), 'edited by hand\n');
    const r = await installJson();
    expect(r.report.warnings.join('\n')).toMatch(/\/etc\/crictl\.yaml was changed since node-prep wrote it; kept a copy at \/var\/lib\/node-prep\/backups\/etc\/crictl\.yaml/);
    expect((await runCli(['uninstall', '--root', root])).code).toBe(0);
    await expect(lstat(path.join(root, 'etc/crictl.yaml'))).rejects.toThrow();
  });
});
