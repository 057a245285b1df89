/**
 * Every `--json` document the built CLI prints validates against its schema in schemas/, and stdout
 * holds exactly that one document: the whole of stdout parses as JSON, and logs went to stderr.
 * The release server serves synthetic releases on loopback, as in test/commands/install.test.ts.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { archRun } from '../../src/node/binfmt.ts';
import { runCli, type CliResult } from '../support/cli.ts';
import { testSigner } from '../support/fixtures.ts';
import type { ReleaseServer } from '../support/release-server.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';
import { violations, type SchemaName } from './validate.ts';

let gh: ReleaseServer;
let work: string;
let sums: string;
let root: string;

const source = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64'];
const installArgs = (...extra: string[]) => ['install', '--root', root, '--no-start', '--skip-smoke', ...source(), ...extra];

let mirror: SyntheticMirror;
beforeAll(async () => {
  mirror = await startSyntheticMirror('np-schemas-', { signer: await testSigner() });
  ({ gh, work, sums } = mirror);
});
afterAll(() => mirror.close());
beforeEach(async () => {
  gh.clearFaults();
  root = await mkdtemp(path.join(work, 'root-'));
});

/**
 * The one JSON document on stdout, checked against `schema`, with the exit code the document implies.
 * Returns the parsed document for further checks.
 */
function expectDocument(r: CliResult, schema: SchemaName, exitCode = 0): Record<string, unknown> {
  expect(r.code, `exit code; stderr:\n${r.stderr}`).toBe(exitCode);
  // Exactly one document: all of stdout parses, and it is one object ending in one newline.
  let doc: unknown;
  expect(() => (doc = JSON.parse(r.stdout)), `stdout is not one JSON document:\n${r.stdout.slice(0, 2000)}`).not.toThrow();
  expect(r.stdout.endsWith('}\n')).toBe(true);
  expect(doc).toBeTypeOf('object');
  expect(violations(schema, doc), `schemas/${schema}.schema.json`).toEqual([]);
  return doc as Record<string, unknown>;
}

/** A failure under --json: the error document on stdout, the same message for people on stderr. */
function expectError(r: CliResult, exitCode: 1 | 2, code: string): Record<string, unknown> {
  const doc = expectDocument(r, 'error', exitCode);
  const error = doc.error as { code: string; message: string };
  expect(error.code).toBe(code);
  expect(r.stderr).toContain(`node-prep: ${error.message}`);
  return doc;
}

describe('--json documents validate against schemas/', () => {
  it('plan, and install --dry-run, print a plan', async () => {
    const plan = expectDocument(await runCli(['plan', '--root', root, ...source(), '--json']), 'plan');
    expect(plan.kind).toBe('plan');
    // A range resolved through the API, an optional component skipped, a registry mirror.
    const ranged = await runCli(['plan', '--root', root, ...source(), '--containerd', '~2.3', '--crictl', 'none', '--registry-mirror', 'docker.io=https://mirror.example.com', '--json']);
    expect(expectDocument(ranged, 'plan').skipped).toEqual(['crictl']);
    const dry = await runCli(['install', '--dry-run', '--root', root, ...source(), '--json']);
    expect(expectDocument(dry, 'plan').kind).toBe('plan');
    // Root-only files: redacted content, no digest; and a proxy drop-in.
    const registries = path.join(work, 'registries.yaml');
    await writeFile(registries, 'configs:\n  r.example:\n    auth: { username: u, password: secret-pw }\n');
    const withSecrets = await runCli(['plan', '--root', root, ...source(), '--registries', registries, '--containerd-proxy', 'http://u:proxy-pw@p.example:3128', '--json']);
    const files = expectDocument(withSecrets, 'plan').files as Array<{ path: string; private?: boolean; sha256?: string }>;
    expect(files.filter((f) => f.private).map((f) => [f.path, f.sha256])).toEqual([
      ['/etc/containerd/certs.d/r.example/hosts.toml', undefined],
      ['/etc/systemd/system/containerd.service.d/http-proxy.conf', undefined],
    ]);
    expect(withSecrets.stdout).not.toMatch(/secret-pw|proxy-pw/);
    // --kubernetes, with a containerd and a crictl outside its set.
    const k8s = expectDocument(await runCli(['plan', '--root', root, ...source(), '--kubernetes', 'v1.36.2', '--containerd', '1.7.34', '--crictl', '1.34.0', '--json']), 'plan');
    expect((k8s.kubernetes as { outside: unknown[] }).outside).toHaveLength(2);
  });

  it('install prints an install report, and a second run one that says nothing changed', async () => {
    const first = expectDocument(await runCli(installArgs('--json')), 'install');
    expect(first).toMatchObject({ kind: 'install', changed: true });
    const again = expectDocument(await runCli(installArgs('--json')), 'install');
    expect(again).toMatchObject({ kind: 'install', changed: false });
  });

  it('install --json keeps the task tree off stdout (and, being silent, off stderr too)', async () => {
    const r = await runCli(installArgs('--json'));
    expectDocument(r, 'install');
    expect(r.stderr).toBe('');
    // Without --json the same run logs its phases on stderr, and stdout has the human report only.
    const human = await runCli(installArgs());
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toContain('Resolve versions and plan');
    expect(human.stdout).not.toContain('Resolve versions and plan');
  });

  it('a failed install prints the error document with the report as far as it got', async () => {
    // The synthetic containerd cannot run a real config dump, so the smoke test fails.
    const r = await runCli(['install', '--root', root, '--no-start', ...source(), '--json']);
    const doc = expectError(r, 1, 'SMOKE');
    expect((doc.error as { report: { kind: string; ok: boolean } }).report).toMatchObject({ kind: 'install', ok: false });
  });

  it('download prints the bundle lock it wrote, and logs each download on stderr', async () => {
    const bundle = path.join(work, 'bundle');
    const r = await runCli(['download', '--bundle', bundle, '--cache-dir', path.join(work, 'cache'), ...source(), '--arch', 'amd64,arm64', '--json']);
    const lock = expectDocument(r, 'download');
    expect(lock.kind).toBe('node-prep-bundle');
    expect(JSON.parse(await readFile(path.join(bundle, 'node-prep-bundle.json'), 'utf8'))).toEqual(lock);
    expect(r.stderr).toMatch(/^verified containerd-2\.3\.4-linux-amd64\.tar\.gz$/m);
    expect(r.stdout).not.toContain('verified containerd');
  });

  it('status prints a status report, installed or not, with drift', async () => {
    expect(expectDocument(await runCli(['status', '--root', root, '--json']), 'status')).toMatchObject({ installed: false });
    expect((await runCli(installArgs())).code).toBe(0);
    await writeFile(path.join(root, 'etc/crictl.yaml'), 'runtime-endpoint: edited\n');
    await rm(path.join(root, 'opt/cni/bin/bridge'));
    const status = expectDocument(await runCli(['status', '--root', root, '--json']), 'status');
    expect((status.drift as Array<{ kind: string }>).map((d) => d.kind).sort()).toEqual(['changed', 'missing']);
  });

  it('smoke prints a smoke report; its exit code follows ok', async () => {
    expect((await runCli(installArgs())).code).toBe(0);
    const r = await runCli(['smoke', '--root', root, '--json']);
    // Synthetic binaries answer --version but are no real containerd: some checks fail, and say why.
    const report = JSON.parse(r.stdout) as { ok: boolean };
    expectDocument(r, 'smoke', report.ok ? 0 : 1);
  });

  it('smoke of an image for another arch says it was not run, and exits 3', async ({ skip }) => {
    if ((await archRun('arm64')).kind !== 'cannot') skip('this machine runs arm64 binaries');
    const arm = await runCli(['install', '--root', root, '--no-start', '--skip-smoke', ...source(), '--arch', 'arm64']);
    expect(arm.code, arm.stderr).toBe(0);
    const doc = expectDocument(await runCli(['smoke', '--root', root, '--json']), 'smoke', 3);
    expect(doc.skipped).toMatch(/the binaries are for arm64/);
  });

  it('smoke with nothing installed prints the error document', async () => {
    expectError(await runCli(['smoke', '--root', root, '--json']), 1, 'NOT_INSTALLED');
  });

  it('uninstall prints what it removed, with --dry-run what it would remove', async () => {
    expect((await runCli(installArgs())).code).toBe(0);
    expect(expectDocument(await runCli(['uninstall', '--root', root, '--dry-run', '--json']), 'uninstall')).toMatchObject({ dryRun: true });
    const done = expectDocument(await runCli(['uninstall', '--root', root, '--json']), 'uninstall');
    expect(done).toMatchObject({ dryRun: false });
    expect((done.removed as string[]).length).toBeGreaterThan(0);
    expect(expectDocument(await runCli(['uninstall', '--root', root, '--json']), 'uninstall')).toMatchObject({ removed: [] });
  });

  it('versions prints the versions, also when the API cannot be asked', async () => {
    expectDocument(await runCli(['versions', '--mirror', gh.url, '--github-api', gh.apiUrl, '--json']), 'versions');
    expectDocument(await runCli(['versions', 'runc', '--mirror', gh.url, '--github-api', gh.apiUrl, '--json']), 'versions');
    expect(expectDocument(await runCli(['versions', 'crictl', '--kubernetes', '1.36', '--mirror', gh.url, '--github-api', gh.apiUrl, '--json']), 'versions').kubernetes).toBeDefined();
    gh.setFault({ match: /^\/api\//, status: 503 });
    const down = expectDocument(await runCli(['versions', 'containerd', '--mirror', gh.url, '--github-api', gh.apiUrl, '--json']), 'versions');
    expect((down.components as Array<{ error?: string }>)[0]!.error).toBeTruthy();
  });

  it('doctor prints its findings; exit code 1 when one is a blocker', async () => {
    for (const args of [['doctor', '--json'], ['doctor', '--root', root, '--json'], ['doctor', '--root', root, '--arch', 'arm64', '--json']]) {
      const r = await runCli(args);
      const doc = JSON.parse(r.stdout) as { kind: string; ok: boolean };
      expect(doc.kind, r.stdout.slice(0, 500)).toBe('doctor');
      expectDocument(r, 'doctor', doc.ok ? 0 : 1);
    }
    // And on a root node-prep has installed into.
    expect((await runCli(installArgs())).code).toBe(0);
    const installed = await runCli(['doctor', '--root', root, '--json']);
    expectDocument(installed, 'doctor', (JSON.parse(installed.stdout) as { ok: boolean }).ok ? 0 : 1);
  });

  it('errors: a usage error (exit 2), a version that does not exist, a tampered download', async () => {
    expectError(await runCli(['plan', '--no-such-flag', '--json']), 2, 'USAGE');
    expectError(await runCli(['plan', '--containerd', 'banana', '--json']), 2, 'USAGE');
    expectError(await runCli(['status', '--containerd', '2.3.4', '--json']), 2, 'USAGE');
    expectError(await runCli(['plan', ...source(), '--containerd', '9.9.9', '--json']), 1, 'VERSION_NOT_FOUND');
    gh.setFault({ match: 'runc.amd64', corrupt: true });
    const tampered = expectError(await runCli(installArgs('--cache-dir', path.join(work, 'tamper-cache'), '--json')), 1, 'CHECKSUM_MISMATCH');
    expect(tampered.error).toMatchObject({ expected: expect.stringMatching(/^[0-9a-f]{64}$/), actual: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });
});

// A failure before the smoke test (a checksum mismatch, a network error) still reports ok: false,
// and the downloads that did not happen as `not done`.
it('a failed install says ok: false in error.report', async () => {
  gh.setFault({ match: 'runc.amd64', corrupt: true });
  const r = await runCli(installArgs('--cache-dir', path.join(work, 'tamper-cache-2'), '--json'));
  expect(r.code).toBe(1);
  const report = JSON.parse(r.stdout).error.report;
  expect(report.ok).toBe(false);
  expect(report.components.find((c: { name: string }) => c.name === 'runc')).toMatchObject({ action: 'install', download: 'not done' });
});

describe('the schemas are strict enough to catch a regression', () => {
  // Each of these is a valid document with one thing broken, as a careless change to src/ might do.
  const install = {
    kind: 'install', ok: true, changed: false, arch: 'amd64', root: '/', prefix: '/usr/local', components: [], files: [], signatures: [],
    prerequisites: { skipped: 'not run' }, service: { kind: 'skipped', reason: '--no-start' }, smoke: { skipped: '--skip-smoke' },
    rolledBack: false, warnings: [], timingsMs: { plan: 3 },
  };
  const component = { name: 'runc', version: '1.4.3', action: 'install', reason: 'not installed by node-prep', asset: 'runc.amd64', sha256: 'a'.repeat(64), verifiedBy: 'pinned (built in)', download: 'network' };

  it('accepts the valid ones', () => {
    expect(violations('install', { ...install, components: [component] })).toEqual([]);
    expect(violations('doctor', { kind: 'doctor', root: '/', ok: false, findings: [{ id: 'cgroup', level: 'blocker', scope: 'node', title: 'cgroup v1', detail: 'no cgroup.controllers', hint: 'boot with v2' }] })).toEqual([]);
    expect(violations('error', { kind: 'error', exitCode: 2, error: { code: 'USAGE', message: 'Unknown flag --x.', hint: 'Run node-prep --help.' } })).toEqual([]);
  });

  it.each([
    ['a missing field', 'install', { ...install, changed: undefined }],
    ['another kind', 'install', { ...install, kind: 'plan' }],
    ['an upper-case sha256', 'install', { ...install, components: [{ ...component, sha256: 'A'.repeat(64) }] }],
    ['a short sha256', 'install', { ...install, components: [{ ...component, sha256: 'abc' }] }],
    ['an unknown action', 'install', { ...install, components: [{ ...component, action: 'upgrade' }] }],
    ['an unknown component', 'install', { ...install, components: [{ ...component, name: 'docker' }] }],
    ['an unchanged component that was downloaded', 'install', { ...install, components: [{ ...component, action: 'unchanged' }] }],
    ['an unknown file outcome', 'install', { ...install, files: [{ path: '/etc/crictl.yaml', component: 'crictl', outcome: { kind: 'moved' } }] }],
    ['a replaced file without its previous digest', 'install', { ...install, files: [{ path: '/etc/crictl.yaml', component: 'crictl', outcome: { kind: 'replaced' } }] }],
    ['an unknown service state', 'install', { ...install, service: { kind: 'started' } }],
    ['an unknown smoke check', 'smoke', { kind: 'smoke', ok: true, mode: 'temporary', adaptations: [], checks: [{ name: 'vibes', ok: true, durationMs: 1, detail: '' }], notRun: [] }],
    ['ok with a failed check', 'smoke', { kind: 'smoke', ok: true, mode: 'temporary', adaptations: [], checks: [{ name: 'socket', ok: false, durationMs: 1, detail: 'no' }], notRun: [] }],
    ['a doctor ok with a blocker', 'doctor', { kind: 'doctor', root: '/', ok: true, findings: [{ id: 'arch', level: 'blocker', scope: 'node', title: 't', detail: 'd' }] }],
    ['a doctor finding without its scope', 'doctor', { kind: 'doctor', root: '/', ok: true, findings: [{ id: 'arch', level: 'ok', title: 't', detail: 'd' }] }],
    ['a doctor level that does not exist', 'doctor', { kind: 'doctor', root: '/', ok: true, findings: [{ id: 'arch', level: 'info', scope: 'node', title: 't', detail: 'd' }] }],
    ['exit code 2 for a failure that is no usage error', 'error', { kind: 'error', exitCode: 2, error: { code: 'NETWORK', message: 'GET x failed' } }],
    ['exit code 0 in an error', 'error', { kind: 'error', exitCode: 0, error: { code: 'USAGE', message: 'm' } }],
    ['an error without a message', 'error', { kind: 'error', exitCode: 1, error: { code: 'HTTP' } }],
    ['a bundle path outside the bundle', 'download', {
      kind: 'node-prep-bundle', schemaVersion: 1, createdAt: '2025-01-01T00:00:00.000Z', nodePrepVersion: '0.1.0', arches: ['amd64'],
      components: { containerd: { version: '2.3.4', repo: 'containerd/containerd', tag: 'v2.3.4' }, runc: { version: '1.4.3', repo: 'opencontainers/runc', tag: 'v1.4.3' } },
      artifacts: ['containerd', 'runc'].map((c) => ({
        component: c, version: '1.0.0', arch: 'amd64', name: 'x', path: `../../etc/releases/download/v1/x`, url: 'https://github.com/x', sha256: 'b'.repeat(64),
        digestSource: { kind: 'pinned', from: 'built-in' }, checksumFile: '', signatures: [],
      })),
    }],
  ] as const)('rejects %s', (_what, schema, doc) => {
    expect(violations(schema as SchemaName, JSON.parse(JSON.stringify(doc)))).not.toEqual([]);
  });
});
