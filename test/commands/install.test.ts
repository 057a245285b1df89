/**
 * `node-prep install --root DIR` end to end: the built CLI, the test release server with synthetic
 * releases in the real upstream layouts, real files in a temporary image root.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { containerdRelease, syntheticOutput, testSigner, type TestSigner } from '../support/fixtures.ts';
import { withHostLock } from '../support/host-lock.ts';
import { checksumsFor, contentOf, snapshot } from '../support/layout.ts';
import type { ReleaseServer } from '../support/release-server.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';
import { file, tarGz } from '../install/tar-craft.ts';

let gh: ReleaseServer;
let work: string;
let sums: string;
let signer: TestSigner;
let root: string;

const base = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64'];
const install = (...extra: string[]) => runCli(['install', '--root', root, '--no-start', '--skip-smoke', ...base(), ...extra]);

let mirror: SyntheticMirror;
beforeAll(async () => {
  signer = await testSigner();
  mirror = await startSyntheticMirror('np-install-', { signer });
  ({ gh, work, sums } = mirror);
});
afterAll(() => mirror.close());
beforeEach(async () => {
  gh.clearFaults();
  root = await mkdtemp(path.join(work, 'root-'));
});

describe('install --root DIR', () => {
  it('lays out the image root as DESIGN.md says', async () => {
    const r = await install('--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ kind: 'install', ok: true, changed: true, service: { kind: 'enabled-in-image', created: true } });
    const tree = await snapshot(root);
    for (const bin of ['containerd', 'ctr', 'containerd-shim-runc-v2', 'nerdctl', 'crictl']) {
      expect(tree[`usr/local/bin/${bin}`], bin).toMatchObject({ type: 'file', mode: 0o755 });
    }
    expect(tree['usr/local/sbin/runc']).toMatchObject({ type: 'file', mode: 0o755 });
    for (const plugin of ['bridge', 'host-local', 'loopback', 'portmap']) expect(tree[`opt/cni/bin/${plugin}`]).toMatchObject({ type: 'file', mode: 0o755 });
    expect(tree['opt/cni/bin/README.md']).toBeUndefined();
    for (const f of ['etc/containerd/config.toml', 'etc/systemd/system/containerd.service', 'etc/crictl.yaml', 'etc/nerdctl/nerdctl.toml', 'etc/modules-load.d/node-prep.conf', 'etc/sysctl.d/90-node-prep.conf', 'var/lib/node-prep/manifest.json']) {
      expect(tree[f], f).toMatchObject({ type: 'file', mode: 0o644 });
    }
    expect(tree['etc/systemd/system/multi-user.target.wants/containerd.service']).toMatchObject({ type: 'link', target: '/etc/systemd/system/containerd.service' });
    // The binaries are the ones from the right archives: the synthetic ones say who they are.
    expect(execFileSync(path.join(root, 'usr/local/bin/containerd'), { encoding: 'utf8' }).trim()).toBe(syntheticOutput('containerd', '2.3.4'));
    expect(execFileSync(path.join(root, 'usr/local/sbin/runc'), { encoding: 'utf8' }).trim()).toBe(syntheticOutput('runc', '1.4.3'));
    const config = await readFile(path.join(root, 'etc/containerd/config.toml'), 'utf8');
    expect(config).toMatch(/^version = 4$/m);
    expect(config).toContain('BinaryName = "/usr/local/sbin/runc"');
    // The image has no systemd init here, so the cgroup driver falls back to cgroupfs, and says why.
    expect(config).toContain('SystemdCgroup = false');
    // Signatures of the synthetic runc and nerdctl releases are by a key node-prep does not know.
    expect(report.warnings.join('\n')).toMatch(/runc\.sha256sum: signature not verified: signed by an unknown key/);
  });

  it('a second run writes nothing, reports every item unchanged and keeps every mtime', async () => {
    expect((await install()).code).toBe(0);
    const before = await snapshot(root);
    const r = await install('--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.changed).toBe(false);
    expect(report.components.every((c: { action: string; download: string }) => c.action === 'unchanged' && c.download === 'not needed')).toBe(true);
    expect(new Set(report.files.map((f: { outcome: { kind: string } }) => f.outcome.kind))).toEqual(new Set(['unchanged']));
    expect(await snapshot(root)).toEqual(before);
    const human = await install();
    expect(human.stdout).toContain('Nothing changed');
  });

  it('changing one version replaces only that component', async () => {
    expect((await install()).code).toBe(0);
    const r = await install('--crictl', '1.35.0', '--json');
    expect(r.code, r.stderr).toBe(0);
    const changed = JSON.parse(r.stdout).files.filter((f: { outcome: { kind: string } }) => f.outcome.kind !== 'unchanged');
    expect(changed).toEqual([{ path: '/usr/local/bin/crictl', component: 'crictl', outcome: { kind: 'replaced', previousSha256: expect.any(String) } }]);
    expect(execFileSync(path.join(root, 'usr/local/bin/crictl'), { encoding: 'utf8' }).trim()).toBe(syntheticOutput('crictl', '1.35.0'));
  });

  it('an upgrade from containerd 1.7 to 2.3 removes the shims 2.x no longer ships', async () => {
    expect((await install('--containerd', '1.7.34')).code).toBe(0);
    expect((await snapshot(root))['usr/local/bin/containerd-shim-runc-v1']).toBeDefined();
    const r = await install('--json');
    expect(r.code, r.stderr).toBe(0);
    const files = JSON.parse(r.stdout).files;
    expect(files).toContainEqual(expect.objectContaining({ path: '/usr/local/bin/containerd-shim-runc-v1', outcome: expect.objectContaining({ kind: 'removed' }) }));
    const tree = await snapshot(root);
    expect(tree['usr/local/bin/containerd-shim-runc-v1']).toBeUndefined();
    expect(tree['usr/local/bin/containerd-shim']).toBeUndefined();
    expect(await readFile(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toMatch(/^version = 4$/m);
  });

  it('backs up a foreign config.toml, shows it in the plan as a diff, and uninstall puts everything back', async () => {
    await mkdir(path.join(root, 'etc/containerd'), { recursive: true });
    await writeFile(path.join(root, 'etc/containerd/config.toml'), 'version = 2\n# the operator\'s own\n', { mode: 0o600 });
    const pristine = contentOf(await snapshot(root));

    const plan = await runCli(['plan', '--root', root, ...base()]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('config.toml  (containerd config (CRI plugin enabled)) [replaces a file node-prep did not write: backed up first]');
    // Only its owner may read it: the plan says it changes, not what it holds, unless asked.
    expect(plan.stdout).not.toContain("the operator's own");
    expect(plan.stdout).toContain('/etc/containerd/config.toml: no diff shown: only its owner may read it');
    const shown = (await runCli(['plan', '--root', root, ...base(), '--show-private'])).stdout;
    expect(shown).toContain("-# the operator's own");
    expect(shown).toContain('+version = 4');

    const r = await install('--json');
    expect(r.code, r.stderr).toBe(0);
    const entry = JSON.parse(r.stdout).files.find((f: { path: string }) => f.path === '/etc/containerd/config.toml');
    expect(entry).toMatchObject({ outcome: { kind: 'replaced' }, backup: '/var/lib/node-prep/backups/etc/containerd/config.toml' });

    const u = await runCli(['uninstall', '--root', root]);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toContain('restored');
    expect(contentOf(await snapshot(root))).toEqual(pristine);
  });

  it("warns when it replaces Docker's containerd.io config that disables CRI", async () => {
    await mkdir(path.join(root, 'etc/containerd'), { recursive: true });
    await writeFile(path.join(root, 'etc/containerd/config.toml'), '#   Copyright 2018-2022 Docker Inc.\ndisabled_plugins = ["cri"]\n');
    const r = await install('--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).warnings.join('\n')).toContain("disables the CRI plugin (Docker's containerd.io ships it that way)");
  });

  it('status reports a changed mode as drift, and --check exits 1 on any drift', async () => {
    expect((await install()).code).toBe(0);
    expect((await runCli(['status', '--root', root, '--check'])).code).toBe(0);
    await chmod(path.join(root, 'usr/local/sbin/runc'), 0o700);
    const status = await runCli(['status', '--root', root, '--check', '--json']);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout).drift).toEqual([{ kind: 'mode', path: '/usr/local/sbin/runc', component: 'runc', expectedMode: 0o755, actualMode: 0o700 }]);
    expect((await runCli(['status', '--root', root])).stdout).toMatch(/mode {5}.*\/usr\/local\/sbin\/runc \(0700, written as 0755\)/);
    expect((await runCli(['status', '--root', root])).code).toBe(0);
  });

  it('the unit\'s wants link is in the plan and in status: a removed link is drift, and plan shows install making it again', async () => {
    expect((await install()).code).toBe(0);
    const link = '/etc/systemd/system/multi-user.target.wants/containerd.service';
    const planJson = async () => JSON.parse((await runCli(['plan', '--root', root, ...base(), '--json'])).stdout);
    expect((await planJson()).service.link).toEqual({ path: link, target: '/etc/systemd/system/containerd.service', change: 'same' });
    await rm(path.join(root, link));
    const status = await runCli(['status', '--root', root, '--check', '--json']);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout).drift).toEqual([{ kind: 'link', path: link, component: 'containerd', expectedTarget: '/etc/systemd/system/containerd.service', actualTarget: null }]);
    expect((await planJson()).service.link.change).toBe('create');
    const again = JSON.parse((await install('--json')).stdout);
    expect(again.files).toContainEqual(expect.objectContaining({ path: link, outcome: { kind: 'created' } }));
  });

  it('uninstall keeps a file changed since install unless --force', async () => {
    expect((await install()).code).toBe(0);
    await writeFile(path.join(root, 'etc/crictl.yaml'), 'runtime-endpoint: edited\n');
    const status = await runCli(['status', '--root', root, '--json']);
    expect(JSON.parse(status.stdout).drift).toEqual([expect.objectContaining({ kind: 'changed', path: '/etc/crictl.yaml' })]);
    const kept = await runCli(['uninstall', '--root', root]);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toContain('kept');
    expect(await readFile(path.join(root, 'etc/crictl.yaml'), 'utf8')).toBe('runtime-endpoint: edited\n');
  });

  it('never touches the host outside DIR', async () => {
    const hostPaths = ['/usr/local/bin', '/usr/local/sbin', '/opt/cni', '/etc/containerd', '/etc/systemd/system', '/var/lib/node-prep', '/var/cache/node-prep', '/etc/crictl.yaml'];
    await withHostLock(async () => {
      const before = await Promise.all(hostPaths.map((p) => snapshot(p)));
      expect((await install()).code).toBe(0);
      expect((await runCli(['uninstall', '--root', root])).code).toBe(0);
      expect(await Promise.all(hostPaths.map((p) => snapshot(p)))).toEqual(before);
    });
  });

  it('a tampered artifact is refused with exit 1 and nothing is installed', async () => {
    gh.setFault({ match: 'containerd-2.3.4-linux-amd64.tar.gz', corrupt: true });
    const cache = await mkdtemp(path.join(work, 'cache-'));
    const r = await install('--cache-dir', cache);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sha256 of containerd-2\.3\.4-linux-amd64\.tar\.gz does not match: expected [0-9a-f]{64} \(pinned \(--checksums .*\)\), got [0-9a-f]{64}/);
    expect(await snapshot(root)).toEqual({});
  });

  it('a hostile archive is refused with exit 1 and nothing is installed', async () => {
    const hostile = tarGz([file('bin/containerd', 'x'), file('bin/ctr', 'x'), file('bin/containerd-shim-runc-v2', 'x'), file('../../../etc/evil', 'x')]);
    const rel = await containerdRelease('2.2.9', ['amd64']);
    rel.assets['containerd-2.2.9-linux-amd64.tar.gz'] = hostile;
    gh.addRelease('containerd/containerd', rel);
    const pins = path.join(work, 'hostile.sums');
    await writeFile(pins, checksumsFor({ x: [rel] }) + (await readFile(sums, 'utf8')));
    const r = await runCli([
      'install', '--root', root, '--no-start', '--skip-smoke', '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', pins,
      '--cache-dir', path.join(work, 'hostile-cache'), '--arch', 'amd64', '--containerd', '2.2.9', '--cni', 'none', '--nerdctl', 'none', '--crictl', 'none',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Refusing');
    expect(r.stderr).toContain('../../../etc/evil');
    expect(await snapshot(root)).toEqual({});
  });
});

describe('signatures', () => {
  it('verifies runc and nerdctl signatures against a --keyring', async () => {
    const keyring = path.join(work, 'test.asc');
    await writeFile(keyring, signer.publicKeyArmored);
    const r = await install('--keyring', keyring, '--json');
    expect(r.code, r.stderr).toBe(0);
    const sigs = JSON.parse(r.stdout).signatures;
    const results = sigs.flatMap((s: { results: Array<{ file: string; result: { kind: string; fingerprint?: string } }> }) => s.results);
    expect(results.map((x: { file: string }) => x.file).sort()).toEqual(['SHA256SUMS.asc', 'runc.amd64.asc', 'runc.sha256sum']);
    expect(results.every((x: { result: { kind: string; fingerprint?: string } }) => x.result.kind === 'verified' && x.result.fingerprint === signer.fingerprint)).toBe(true);
  });

  it('--verify strict fails when a published signature cannot be verified', async () => {
    const r = await install('--verify', 'strict', '--cache-dir', path.join(work, 'strict-cache'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/signature .* could not be verified: signed by an unknown key/);
    expect(await snapshot(root)).toEqual({});
  });
});

describe('offline bundles', () => {
  it('download --bundle, then plan and install --bundle with no server at all', async () => {
    const bundle = path.join(work, 'bundle');
    const d = await runCli(['download', '--bundle', bundle, '--arch', 'amd64,arm64', '--cache-dir', path.join(work, 'bcache'), '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums]);
    expect(d.code, d.stderr).toBe(0);
    const lock = JSON.parse(await readFile(path.join(bundle, 'node-prep-bundle.json'), 'utf8'));
    expect(lock.artifacts).toHaveLength(10);
    // No --mirror: the bundle is all there is (and the tripwire proxy catches any request).
    // arm64 is planned for an image root (this machine cannot run it).
    const p = await runCli(['plan', '--bundle', bundle, '--arch', 'arm64', '--root', path.join(work, 'no-image-yet'), '--json', '--checksums', sums]);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout).components.every((c: { resolvedFrom: string }) => c.resolvedFrom === 'bundle')).toBe(true);
    const i = await runCli(['install', '--bundle', bundle, '--root', root, '--no-start', '--skip-smoke', '--arch', 'amd64', '--checksums', sums]);
    expect(i.code, i.stderr).toBe(0);
    expect(execFileSync(path.join(root, 'usr/local/bin/containerd'), { encoding: 'utf8' }).trim()).toBe(syntheticOutput('containerd', '2.3.4'));
  });

  it('a bundle without the target arch, or made with other pins, says so before anything is fetched', async () => {
    const bundle = path.join(work, 'bundle3');
    expect((await runCli(['download', '--bundle', bundle, '--cache-dir', path.join(work, 'bcache'), '--arch', 'amd64', '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums])).code).toBe(0);
    const arm = await runCli(['plan', '--bundle', bundle, '--arch', 'arm64', '--root', path.join(work, 'no-image-yet'), '--checksums', sums]);
    expect(arm.code).toBe(1);
    expect(arm.stderr).toContain('The bundle holds no containerd-2.3.4-linux-arm64.tar.gz');
    expect(arm.stderr).toContain('--arch arm64');
    // Without the pins it was made with, the built-in pins disagree with the synthetic artifacts.
    const pins = await runCli(['plan', '--bundle', bundle, '--arch', 'amd64']);
    expect(pins.code).toBe(1);
    expect(pins.stderr).toContain(`The bundle was made with --checksums ${sums}: pass the same pins here.`);
  });

  it('a tampered artifact in a bundle is refused', async () => {
    const bundle = path.join(work, 'bundle2');
    expect((await runCli(['download', '--bundle', bundle, '--cache-dir', path.join(work, 'bcache'), '--arch', 'amd64', '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums])).code).toBe(0);
    const asset = path.join(bundle, 'opencontainers/runc/releases/download/v1.4.3/runc.amd64');
    await writeFile(asset, '#!/bin/sh\necho evil\n');
    const i = await runCli(['install', '--bundle', bundle, '--root', root, '--no-start', '--skip-smoke', '--arch', 'amd64', '--checksums', sums, '--cache-dir', path.join(work, 'other-cache')]);
    expect(i.code).toBe(1);
    expect(i.stderr).toContain('sha256 of runc.amd64 does not match');
    expect(await snapshot(root)).toEqual({});
  });
});
