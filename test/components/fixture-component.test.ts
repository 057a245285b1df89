/**
 * "Adding a component is one file and one row": a copy of node-prep gets test/fixtures/components/
 * examplectl.ts and one row in its catalog, nothing else, is built, and then plans and installs
 * examplectl into an image root from the test release server, with its flag, help and version check.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, testEnv, type CliResult } from '../support/cli.ts';
import { defaultCatalogReleases, makeTarGz, sha256, syntheticBinary } from '../support/fixtures.ts';
import { checksumsFor } from '../support/layout.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';

let copy: string;
let gh: ReleaseServer;
let sums: string;

beforeAll(async () => {
  copy = await mkdtemp(path.join(os.tmpdir(), 'np-catalog-'));
  for (const p of ['src', 'templates', 'bin', 'scripts', 'package.json', 'tsconfig.json']) await cp(path.join(REPO, p), path.join(copy, p), { recursive: true });
  await symlink(path.join(REPO, 'node_modules'), path.join(copy, 'node_modules'));
  // The one file and the one row.
  await cp(path.join(REPO, 'test/fixtures/components/examplectl.ts'), path.join(copy, 'src/components/examplectl.ts'));
  const index = path.join(copy, 'src/components/index.ts');
  const catalog = await readFile(index, 'utf8');
  const withRow = catalog
    .replace("import { runc } from './runc.ts';", "import { runc } from './runc.ts';\nimport { examplectl } from './examplectl.ts';")
    .replace('{ containerd, runc, cni, nerdctl, crictl }', '{ containerd, runc, cni, nerdctl, crictl, examplectl }');
  expect(withRow).not.toBe(catalog);
  await writeFile(index, withRow);
  // Type-checked as src/ alone (the copy has no tests).
  const tsconfig = JSON.parse(await readFile(path.join(copy, 'tsconfig.json'), 'utf8'));
  await writeFile(path.join(copy, 'tsconfig.json'), JSON.stringify({ ...tsconfig, include: ['src'], exclude: [] }));
  await execa(process.execPath, ['scripts/build.mjs'], { cwd: copy });

  const repos = await defaultCatalogReleases({ signer: null });
  const tarball = await makeTarGz({ examplectl: { data: syntheticBinary('examplectl', '1.0.0', 'amd64'), mode: 0o755 } });
  const asset = 'examplectl-1.0.0-linux-amd64.tar.gz';
  repos['example/examplectl'] = [{ tag: 'v1.0.0', name: 'v1.0.0', prerelease: false, assets: { [asset]: tarball, SHA256SUMS: Buffer.from(`${sha256(tarball)}  ${asset}\n`) } }];
  gh = await startReleaseServer({ repos });
  sums = path.join(copy, 'SHA256SUMS');
  await writeFile(sums, checksumsFor(gh.repos));
}, 120_000);
afterAll(async () => {
  await gh?.close();
  if (copy) await rm(copy, { recursive: true, force: true });
});

/** The copy's CLI, as a user runs it. */
function runCopy(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(copy, 'bin/node-prep.js'), ...args], { env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a component added as one file and one row', () => {
  it('type-checks with no other source change', async () => {
    const r = await execa(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', copy], { cwd: copy, reject: false });
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
  }, 60_000);

  const source = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64'];

  it('has its flag and help line, and is opt-in (default none)', async () => {
    const help = await runCopy(['install', '--help']);
    expect(help.stdout).toMatch(/--examplectl SPEC +examplectl \(a test fixture\), optional \(not installed unless asked\)/);
    const plan = JSON.parse((await runCopy(['plan', ...source(), '--json'])).stdout);
    expect(plan.skipped).toContain('examplectl');
  });

  it('is planned with its pinned digest, its files and its version check', async () => {
    const r = await runCopy(['plan', ...source(), '--examplectl', '1.0.0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.components.map((c: { name: string }) => c.name)).toContain('examplectl');
    const artifact = plan.artifacts.find((a: { component: string }) => a.component === 'examplectl');
    expect(artifact).toMatchObject({ name: 'examplectl-1.0.0-linux-amd64.tar.gz', digestSource: { kind: 'pinned', from: 'checksums-file' }, install: [{ member: 'examplectl', path: '/usr/local/bin/examplectl', mode: 0o755, required: true }] });
    expect(plan.smoke.checks).toContain('examplectl version');
  });

  it('is installed into an image root and recorded', async () => {
    const root = await mkdtemp(path.join(copy, 'root-'));
    const r = await runCopy(['install', '--root', root, ...source(), '--examplectl', '1.0.0', '--cache-dir', path.join(copy, 'cache'), '--skip-smoke', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.components.find((c: { name: string }) => c.name === 'examplectl')).toMatchObject({ version: '1.0.0', action: 'install' });
    expect((await stat(path.join(root, 'usr/local/bin/examplectl'))).mode & 0o777).toBe(0o755);
    const record = JSON.parse(await readFile(path.join(root, 'var/lib/node-prep/manifest.json'), 'utf8'));
    expect(record.components.examplectl).toMatchObject({ version: '1.0.0' });
    expect(record.files['/usr/local/bin/examplectl']).toMatchObject({ component: 'examplectl' });
  });
});
