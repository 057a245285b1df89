/**
 * `node-prep plan --root DIR` says, file by file, what `install` then does: both compare what is on
 * disk (sha256 and mode) with the install record (binaries) or the rendered content (config files).
 */
import { appendFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nodePathOf } from '../../src/node/paths.ts';
import { runCli } from '../support/cli.ts';
import type { ReleaseServer } from '../support/release-server.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';

let gh: ReleaseServer;
let work: string;
let sums: string;
let root: string;

const base = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64'];
const install = (...extra: string[]) => runCli(['install', '--root', root, '--no-start', '--skip-smoke', '--cache-dir', path.join(work, 'cache'), ...base(), ...extra]);

interface PlanFile {
  path: string;
  change?: { kind: string; foreign?: boolean; reason?: string; diff?: string };
}

async function planFiles(): Promise<PlanFile[]> {
  const r = await runCli(['plan', '--root', root, ...base(), '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).files as PlanFile[];
}

/** Node paths the plan says install would write. */
const toWrite = (files: PlanFile[]) =>
  files.filter((f) => f.change?.kind === 'update' || f.change?.kind === 'create').map((f) => f.path).sort();

let mirror: SyntheticMirror;
beforeAll(async () => {
  mirror = await startSyntheticMirror('np-plan-changes-', { signer: null });
  ({ gh, work, sums } = mirror);
});
afterAll(() => mirror.close());
beforeEach(async () => {
  root = await mkdtemp(path.join(work, 'root-'));
});

describe('plan agrees with install', () => {
  it('a binary changed since install and a config whose mode changed are updates in the plan, and exactly what install writes', async () => {
    expect((await install()).code).toBe(0);
    expect(toWrite(await planFiles())).toEqual([]);

    await appendFile(path.join(root, 'usr/local/bin/ctr'), 'x\n');
    await chmod(path.join(root, 'etc/crictl.yaml'), 0o600);
    const files = await planFiles();
    const byNode = new Map(files.map((f) => [f.path, f.change]));
    expect(byNode.get('/usr/local/bin/ctr')).toEqual({ kind: 'update', foreign: false, reason: 'changed since node-prep installed it' });
    expect(byNode.get('/etc/crictl.yaml')).toEqual({ kind: 'update', foreign: false, reason: 'mode 0600, would be 0644' });
    expect(byNode.get('/usr/local/bin/containerd')).toEqual({ kind: 'same' });
    expect(byNode.get('/etc/containerd/config.toml')).toEqual({ kind: 'same' });
    const planned = toWrite(files);
    expect(planned).toEqual(['/etc/crictl.yaml', '/usr/local/bin/ctr']);

    const r = await install('--json');
    expect(r.code, r.stderr).toBe(0);
    const written = JSON.parse(r.stdout).files.filter((f: { outcome: { kind: string } }) => f.outcome.kind !== 'unchanged').map((f: { path: string }) => f.path).sort();
    expect(written).toEqual(planned);
    expect(toWrite(await planFiles())).toEqual([]);
  });

  it('a binary whose mode changed is an update', async () => {
    expect((await install()).code).toBe(0);
    await chmod(path.join(root, 'usr/local/sbin/runc'), 0o700);
    const change = (await planFiles()).find((f) => f.path === '/usr/local/sbin/runc')!.change;
    expect(change).toEqual({ kind: 'update', foreign: false, reason: 'mode 0700, would be 0755' });
  });

  it('a binary node-prep did not write is a foreign update; an edited config shows its diff', async () => {
    expect((await install()).code).toBe(0);
    await rm(path.join(root, 'var/lib/node-prep/manifest.json'));
    await appendFile(path.join(root, 'etc/crictl.yaml'), '# local\n');
    const files = await planFiles();
    const ctr = files.find((f) => f.path === '/usr/local/bin/ctr')!.change;
    expect(ctr).toEqual({ kind: 'update', foreign: true, reason: 'not written by node-prep' });
    const crictl = files.find((f) => f.path === '/etc/crictl.yaml')!.change;
    expect(crictl).toMatchObject({ kind: 'update', foreign: true, diff: expect.stringContaining('-# local') });
  });
});

describe('nodePathOf', () => {
  it('turns a path under the root into the node path', () => {
    expect(nodePathOf('/', '/usr/local/bin/ctr')).toBe('/usr/local/bin/ctr');
    expect(nodePathOf('/img', '/img/usr/local/bin/ctr')).toBe('/usr/local/bin/ctr');
    expect(nodePathOf('/img/', '/img/etc/crictl.yaml')).toBe('/etc/crictl.yaml');
    expect(nodePathOf('img', 'img/etc/crictl.yaml')).toBe('/etc/crictl.yaml');
    expect(() => nodePathOf('/img', '/image/etc/crictl.yaml')).toThrow(/not inside the root/);
  });
});

describe('plan keeps what only root may read out of its output', () => {
  it('shows a root-only foreign config as changing but without its content, unless --show-private', async () => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(path.join(root, 'etc/containerd'), { recursive: true });
    const config = path.join(root, 'etc/containerd/config.toml');
    await writeFile(config, 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]\n  password = "s3cr3t-registry-password"\n', { mode: 0o600 });
    await chmod(config, 0o600);
    const text = await runCli(['plan', '--root', root, ...base()]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toContain('s3cr3t');
    expect(text.stdout).toContain('/etc/containerd/config.toml: no diff shown: only its owner may read it');
    const json = JSON.parse((await runCli(['plan', '--root', root, ...base(), '--json'])).stdout);
    const change = json.files.find((f: PlanFile) => f.path === '/etc/containerd/config.toml').change;
    expect(change).toMatchObject({ kind: 'update', foreign: true, contentHidden: expect.stringContaining('--show-private') });
    expect(change.diff).toBeUndefined();
    expect(JSON.stringify(json)).not.toContain('s3cr3t');

    const shown = await runCli(['plan', '--root', root, ...base(), '--show-private']);
    expect(shown.stdout).toContain('s3cr3t-registry-password');
    // A file others may read gets its diff as before.
    await chmod(config, 0o644);
    expect((await runCli(['plan', '--root', root, ...base()])).stdout).toContain('-  password = "s3cr3t-registry-password"');
  });
});
