/**
 * The ways an install can go wrong on a real machine, and what node-prep does about each: a run
 * already in progress, a folder that leads outside the image root, a unit link in the way, files
 * changed behind its back, configuration that a new plan no longer wants.
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
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
    expect(r.stderr).toContain(`leads outside ${root}`);
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

describe('a run that fails midway', () => {
  it('leaves the backups folder as it found it: the copy of a foreign config.toml goes with the rollback', async () => {
    await mkdir(path.join(root, 'etc/containerd'), { recursive: true });
    await writeFile(path.join(root, 'etc/containerd/config.toml'), 'version = 2\n# the site’s own\n');
    // A regular file where a folder must go: the write of /etc/nerdctl/nerdctl.toml fails in the
    // transaction, after config.toml was backed up and replaced.
    await writeFile(path.join(root, 'etc/nerdctl'), 'not a folder\n');
    const r = await install();
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/nerdctl/);
    expect(await readFile(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toBe('version = 2\n# the site’s own\n');
    await expect(lstat(path.join(root, 'var/lib/node-prep/backups'))).rejects.toThrow();
    await expect(lstat(path.join(root, 'var/lib/node-prep/manifest.json'))).rejects.toThrow();
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
