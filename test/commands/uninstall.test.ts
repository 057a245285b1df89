/**
 * `node-prep uninstall --root DIR` end to end (the built CLI, the test release server): nothing is
 * lost. A file kept because it changed keeps the backup of the original it replaced, and the record
 * then lists just those, so `uninstall --force` finishes the job later; --purge removes containerd's
 * state, never other tools' configuration.
 */
import { appendFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { testSigner } from '../support/fixtures.ts';
import { contentOf, snapshot } from '../support/layout.ts';
import type { ReleaseServer } from '../support/release-server.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';

let gh: ReleaseServer;
let work: string;
let sums: string;
let root: string;

const base = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64'];
const install = (...extra: string[]) => runCli(['install', '--root', root, '--no-start', '--skip-smoke', '--cache-dir', path.join(work, 'cache'), ...base(), ...extra]);
const uninstall = (...extra: string[]) => runCli(['uninstall', '--root', root, ...extra]);
const at = (p: string) => path.join(root, p);
const CONFIG = 'etc/containerd/config.toml';
const BACKUP = 'var/lib/node-prep/backups/etc/containerd/config.toml';
const MANIFEST = 'var/lib/node-prep/manifest.json';

let mirror: SyntheticMirror;
beforeAll(async () => {
  mirror = await startSyntheticMirror('np-uninstall-', { signer: await testSigner() });
  ({ gh, work, sums } = mirror);
});
afterAll(() => mirror.close());
beforeEach(async () => {
  root = await mkdtemp(path.join(work, 'root-'));
});

describe('uninstall keeps what it does not restore', () => {
  it('a kept config keeps the backup of the original it replaced, and uninstall --force restores it later', async () => {
    await mkdir(at('etc/containerd'), { recursive: true });
    await writeFile(at(CONFIG), 'ORIGINAL\n');
    const pristine = contentOf(await snapshot(root));
    expect((await install()).code).toBe(0);
    await appendFile(at(CONFIG), '# an edit after install\n');

    const first = await uninstall();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`kept ${at(CONFIG)}: changed since node-prep wrote it`);
    expect(first.stdout).toContain(`the original it replaced is kept at ${at(BACKUP)}`);
    expect(first.stdout).toContain(`node-prep's record ${at(MANIFEST)} now lists only what was kept`);
    // The original is still there, byte for byte, and the edited file is untouched.
    expect(await readFile(at(BACKUP), 'utf8')).toBe('ORIGINAL\n');
    expect(await readFile(at(CONFIG), 'utf8')).toMatch(/# an edit after install\n$/);
    // Everything else node-prep wrote is gone; the record lists only the kept file and its backup.
    const tree = await snapshot(root);
    expect(tree['usr/local/bin/containerd']).toBeUndefined();
    expect(tree['etc/crictl.yaml']).toBeUndefined();
    const record = JSON.parse(await readFile(at(MANIFEST), 'utf8'));
    expect(record.components).toEqual({});
    expect(Object.keys(record.files)).toEqual(['/etc/containerd/config.toml']);
    expect(record.backups).toEqual({ '/etc/containerd/config.toml': expect.objectContaining({ backupPath: `/${BACKUP}`, reason: 'foreign' }) });

    const status = await runCli(['status', '--root', root, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      installed: true,
      components: [],
      drift: [expect.objectContaining({ kind: 'changed', path: '/etc/containerd/config.toml' })],
      backups: [{ path: '/etc/containerd/config.toml', backupPath: `/${BACKUP}`, reason: 'foreign' }],
    });

    // A second plain uninstall still keeps it (and its original).
    const again = await uninstall('--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ kept: [{ path: '/etc/containerd/config.toml', backup: `/${BACKUP}` }], restored: [], record: `/${MANIFEST}` });
    expect(await readFile(at(BACKUP), 'utf8')).toBe('ORIGINAL\n');

    const forced = await uninstall('--force', '--json');
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ removed: ['/etc/containerd/config.toml'], restored: ['/etc/containerd/config.toml'], kept: [] });
    expect(contentOf(await snapshot(root))).toEqual(pristine);
  });

  it('--json reports the kept file with its backup; --dry-run changes nothing', async () => {
    await mkdir(at('etc/containerd'), { recursive: true });
    await writeFile(at(CONFIG), 'ORIGINAL\n');
    expect((await install()).code).toBe(0);
    await appendFile(at(CONFIG), 'edited\n');
    await writeFile(at('etc/crictl.yaml'), 'runtime-endpoint: edited\n');
    const before = await snapshot(root);
    const dry = await uninstall('--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      kept: [
        { path: '/etc/containerd/config.toml', backup: `/${BACKUP}` },
        { path: '/etc/crictl.yaml', reason: expect.any(String) },
      ],
      restored: [],
      record: `/${MANIFEST}`,
    });
    expect(await snapshot(root)).toEqual(before);

    const done = await uninstall('--json');
    expect(done.code, done.stderr).toBe(0);
    const report = JSON.parse(done.stdout);
    expect(report.kept.find((k: { path: string }) => k.path === '/etc/crictl.yaml').backup).toBeUndefined();
    // crictl.yaml had no original: the record keeps it so that --force can remove it later.
    const record = JSON.parse(await readFile(at(MANIFEST), 'utf8'));
    expect(Object.keys(record.files).sort()).toEqual(['/etc/containerd/config.toml', '/etc/crictl.yaml']);
    expect(Object.keys(record.backups)).toEqual(['/etc/containerd/config.toml']);
    expect((await uninstall('--force')).code).toBe(0);
    const tree = await snapshot(root);
    expect(tree['etc/crictl.yaml']).toBeUndefined();
    expect(await readFile(at(CONFIG), 'utf8')).toBe('ORIGINAL\n');
    expect(tree['var/lib/node-prep']).toBeUndefined();
  });

  it('never deletes a copy in the backups folder that it did not restore', async () => {
    await mkdir(at('etc/containerd'), { recursive: true });
    await writeFile(at(CONFIG), 'ORIGINAL\n');
    expect((await install()).code).toBe(0);
    // An edit, then a re-install with another sandbox image: install replaces the edited file and
    // keeps a copy of the edit (not recorded for restoring: the original is).
    await appendFile(at(CONFIG), '# the edit\n');
    const edited = await readFile(at(CONFIG), 'utf8');
    expect((await install('--sandbox-image', 'registry.example/pause:3.10')).code).toBe(0);
    const copies = Object.keys(await snapshot(at('var/lib/node-prep/backups'))).filter((p) => !p.endsWith('/') && p !== 'etc' && p !== 'etc/containerd');
    expect(copies.sort()).toEqual(['etc/containerd/config.toml', 'etc/containerd/config.toml.1']);

    const u = await uninstall('--json');
    expect(u.code, u.stderr).toBe(0);
    const report = JSON.parse(u.stdout);
    expect(report).toMatchObject({ restored: ['/etc/containerd/config.toml'], kept: [], unrecordedBackups: [`/${BACKUP}.1`] });
    expect(report.record).toBeUndefined();
    expect(await readFile(at(CONFIG), 'utf8')).toBe('ORIGINAL\n');
    expect(await readFile(at(`${BACKUP}.1`), 'utf8')).toBe(edited);
    expect((await snapshot(root))[MANIFEST]).toBeUndefined();
  });
});

describe('uninstall --purge', () => {
  it("removes containerd's and nerdctl's state, never other tools' drop-ins, registry CAs or credentials", async () => {
    const foreign = {
      'etc/containerd/conf.d/99-gpu.toml': '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia]\n',
      'etc/containerd/certs.d/registry.example/ca.crt': '-----BEGIN CERTIFICATE-----\n',
      'etc/containerd/certs.d/registry.example/hosts.toml': 'server = "https://registry.example"\n',
    };
    for (const [p, text] of Object.entries(foreign)) {
      await mkdir(path.dirname(at(p)), { recursive: true });
      await writeFile(at(p), text);
    }
    const r = await install('--registry-mirror', 'docker.io=https://mirror.example.com');
    expect(r.code, r.stderr).toBe(0);
    expect((await snapshot(root))['etc/containerd/certs.d/docker.io/hosts.toml']).toMatchObject({ type: 'file' });
    for (const p of ['var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/abc', 'run/containerd/containerd.sock.ttrpc', 'var/lib/nerdctl/1935db59/names/default/x']) {
      await mkdir(path.dirname(at(p)), { recursive: true });
      await writeFile(at(p), 'state\n');
    }

    // Without a terminal to ask on, a purge needs --yes: nothing is removed until then.
    const unconfirmed = await uninstall('--purge', '--json');
    expect(unconfirmed.code).toBe(2);
    expect(JSON.parse(unconfirmed.stdout).error.message).toContain('needs --yes');
    expect(await readFile(at('var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/abc'), 'utf8')).toBe('state\n');
    expect((await snapshot(root))['usr/local/bin/containerd']).toMatchObject({ type: 'file' });

    const u = await uninstall('--purge', '--yes', '--json');
    expect(u.code, u.stderr).toBe(0);
    expect(JSON.parse(u.stdout).purged).toEqual(['/var/lib/containerd', '/run/containerd', '/var/lib/nerdctl']);
    const tree = await snapshot(root);
    for (const p of ['var/lib/containerd', 'run/containerd', 'var/lib/nerdctl']) expect(tree[p], p).toBeUndefined();
    // node-prep's own hosts.toml is gone (it recorded it); the others' files are all still there.
    expect(tree['etc/containerd/certs.d/docker.io/hosts.toml']).toBeUndefined();
    for (const [p, text] of Object.entries(foreign)) expect(await readFile(at(p), 'utf8'), p).toBe(text);
  });

  it('removes the folders containerd makes at start: /opt/containerd, and the CNI conf dir only when empty', async () => {
    expect((await install()).code).toBe(0);
    // What a started containerd leaves: the opt plugin's folders and its CRI plugin's CNI conf dir.
    for (const d of ['opt/containerd/bin', 'opt/containerd/lib', 'etc/cni/net.d']) await mkdir(at(d), { recursive: true });
    const u = await uninstall('--purge', '--yes', '--json');
    expect(u.code, u.stderr).toBe(0);
    expect(JSON.parse(u.stdout).purged).toEqual(['/opt/containerd', '/etc/cni/net.d', '/etc/cni']);
    const tree = await snapshot(root);
    for (const p of ['opt/containerd', 'etc/cni']) expect(tree[p], p).toBeUndefined();

    // A conf dir with another tool's network config in it stays, and so does its parent.
    expect((await install()).code).toBe(0);
    await mkdir(at('etc/cni/net.d'), { recursive: true });
    await writeFile(at('etc/cni/net.d/10-flannel.conflist'), '{}\n');
    const again = await uninstall('--purge', '--yes', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).purged).not.toContain('/etc/cni/net.d');
    expect(await readFile(at('etc/cni/net.d/10-flannel.conflist'), 'utf8')).toBe('{}\n');
  });
});
