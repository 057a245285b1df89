/**
 * Signatures at the CLI (the built CLI, the test release server): --verify strict against a mirror
 * that strips or unsigns signature files, and `download`, which checks signatures the way install
 * does, records the results and whether each digest was pinned in the bundle's lock.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { runcRelease, sha256, testSigner, type TestSigner } from '../support/fixtures.ts';
import { snapshot } from '../support/layout.ts';
import type { ReleaseServer } from '../support/release-server.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';

let gh: ReleaseServer;
let work: string;
let sums: string;
let keyring: string;
let signer: TestSigner;
let root: string;

const base = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64'];
const install = (...extra: string[]) => runCli(['install', '--root', root, '--no-start', '--skip-smoke', '--cache-dir', path.join(work, 'install-cache'), ...base(), ...extra]);
const download = (bundle: string, ...extra: string[]) => runCli(['download', '--bundle', bundle, '--cache-dir', path.join(work, 'cache'), ...base(), ...extra]);

interface LockArtifact {
  name: string;
  component: string;
  pinned: boolean;
  digestSource: { kind: string };
  signatures: string[];
  signatureResults: Array<{ file: string; signs: string; result: { kind: string; reason?: string; fingerprint?: string } }>;
}

let mirror: SyntheticMirror;
beforeAll(async () => {
  signer = await testSigner();
  mirror = await startSyntheticMirror('np-signatures-', { signer });
  ({ gh, work, sums } = mirror);
  keyring = path.join(work, 'test.asc');
  await writeFile(keyring, signer.publicKeyArmored);
});
afterAll(() => mirror.close());
beforeEach(async () => {
  gh.clearFaults();
  root = await mkdtemp(path.join(work, 'root-'));
});

/** runc 1.4.3's runc.sha256sum as an unsigned mirror would serve it: the same digests, no signature. */
async function unsignedRuncSums(): Promise<string> {
  const rel = await runcRelease('1.4.3', ['amd64', 'arm64']);
  return (rel.assets['runc.sha256sum'] as Buffer).toString('utf8');
}

describe('install --verify strict with a mirror that strips signatures', () => {
  it('fails when runc.amd64.asc is not served, and installs nothing', async () => {
    gh.setFault({ match: '/v1.4.3/runc.amd64.asc', status: 404 });
    const r = await install('--verify', 'strict', '--keyring', keyring);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('The signature runc.amd64.asc could not be verified: runc.amd64.asc is missing.');
    expect(await snapshot(root)).toEqual({});
  });

  it('fails when runc.sha256sum is served unsigned, saying it is not signed', async () => {
    gh.setFault({ match: '/v1.4.3/runc.sha256sum', status: 200, body: await unsignedRuncSums() });
    const r = await install('--verify', 'strict', '--keyring', keyring);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('The signature runc.sha256sum could not be verified: runc.sha256sum is not signed (a plain checksum file, not clear-signed).');
    expect(r.stderr).not.toContain('runc.sha256sum is missing');
    expect(await snapshot(root)).toEqual({});
  });

  it('without strict, an unsigned runc.sha256sum is a warning that says so', async () => {
    gh.setFault({ match: '/v1.4.3/runc.sha256sum', status: 200, body: await unsignedRuncSums() });
    const r = await install('--keyring', keyring, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.warnings).toContain('runc.sha256sum is not signed; the sha256 check stands alone');
    const runc = report.signatures.find((s: { artifact: string }) => s.artifact === 'runc.amd64');
    expect(runc.results.map((x: { file: string; result: { kind: string } }) => [x.file, x.result.kind])).toEqual([
      ['runc.sha256sum', 'missing'],
      ['runc.amd64.asc', 'verified'],
    ]);
    expect(runc.results[0].result.reason).toBe('runc.sha256sum is not signed (a plain checksum file, not clear-signed)');
  });
});

describe('download checks signatures like install', () => {
  it('records each signature result and that every digest was pinned', async () => {
    const bundle = path.join(work, 'bundle-ok');
    const r = await download(bundle, '--keyring', keyring, '--json');
    expect(r.code, r.stderr).toBe(0);
    const lock = JSON.parse(await readFile(path.join(bundle, 'node-prep-bundle.json'), 'utf8'));
    expect(JSON.parse(r.stdout)).toEqual(lock);
    expect(lock.unpinned).toEqual([]);
    const byName = new Map<string, LockArtifact>(lock.artifacts.map((a: LockArtifact) => [a.name, a]));
    expect([...byName.values()].every((a) => a.pinned)).toBe(true);
    expect(byName.get('runc.amd64')!.signatureResults.map((s) => [s.file, s.signs, s.result.kind, s.result.fingerprint])).toEqual([
      ['runc.sha256sum', 'runc.sha256sum', 'verified', signer.fingerprint],
      ['runc.amd64.asc', 'runc.amd64', 'verified', signer.fingerprint],
    ]);
    expect(byName.get('nerdctl-2.3.0-linux-amd64.tar.gz')!.signatureResults.map((s) => [s.file, s.result.kind])).toEqual([['SHA256SUMS.asc', 'verified']]);
    expect(byName.get('containerd-2.3.4-linux-amd64.tar.gz')!.signatureResults).toEqual([]);
  });

  it('without the signer key, reports the signatures as unverified and warns', async () => {
    const bundle = path.join(work, 'bundle-unknown');
    const r = await download(bundle);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`runc.amd64.asc: signature not verified: signed by an unknown key ${signer.fingerprint}`);
    expect(r.stdout).toContain(`runc.amd64.asc: NOT verified: signed by an unknown key ${signer.fingerprint}`);
    const lock = JSON.parse(await readFile(path.join(bundle, 'node-prep-bundle.json'), 'utf8'));
    const runc = lock.artifacts.find((a: LockArtifact) => a.name === 'runc.amd64') as LockArtifact;
    expect(runc.signatureResults.map((s) => s.result.kind)).toEqual(['unverified', 'unverified']);
  });

  it('--verify strict fails on a signature that does not verify, and writes no bundle lock', async () => {
    const bundle = path.join(work, 'bundle-strict');
    const r = await download(bundle, '--verify', 'strict');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/The signature (runc\.sha256sum|SHA256SUMS\.asc) could not be verified: signed by an unknown key/);
    await expect(readFile(path.join(bundle, 'node-prep-bundle.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('--verify strict fails when the mirror strips runc.amd64.asc, even with the right --keyring', async () => {
    gh.setFault({ match: '/v1.4.3/runc.amd64.asc', status: 404 });
    const bundle = path.join(work, 'bundle-stripped');
    const r = await download(bundle, '--verify', 'strict', '--keyring', keyring);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('runc.amd64.asc is missing');
    await expect(readFile(path.join(bundle, 'node-prep-bundle.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('names the artifacts whose digest was not pinned', async () => {
    // A runc release no pin knows: its digest comes from the release's own (signed) runc.sha256sum.
    const rel = await runcRelease('1.4.9', ['amd64', 'arm64'], { signer });
    gh.addRelease('opencontainers/runc', rel);
    const bundle = path.join(work, 'bundle-unpinned');
    const r = await download(bundle, '--runc', '1.4.9', '--keyring', keyring, '--json');
    expect(r.code, r.stderr).toBe(0);
    const lock = JSON.parse(r.stdout);
    expect(lock.unpinned).toEqual(['runc.amd64']);
    const runc = lock.artifacts.find((a: LockArtifact) => a.name === 'runc.amd64') as LockArtifact;
    expect(runc).toMatchObject({ pinned: false, digestSource: { kind: 'published' }, sha256: sha256(rel.assets['runc.amd64'] as Buffer) });
    expect(runc.signatureResults.map((s) => s.result.kind)).toEqual(['verified', 'verified']);
    expect(lock.artifacts.filter((a: LockArtifact) => a.name !== 'runc.amd64').every((a: LockArtifact) => a.pinned)).toBe(true);
    const human = await download(path.join(work, 'bundle-unpinned-text'), '--runc', '1.4.9', '--keyring', keyring);
    expect(human.stdout).toContain('Not pinned: runc.amd64.');
  });
});
