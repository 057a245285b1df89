/**
 * verifyArtifactSignatures (src/apply/signatures.ts): the published signatures of a downloaded
 * artifact, fetched through the deps it is given, and the rule that ties a verified signature over a
 * checksum file to the artifact: the signed text must list the artifact's digest.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyArtifactSignatures, type SignatureDeps } from '../../src/apply/signatures.ts';
import { HttpError } from '../../src/errors.ts';
import { COMPONENTS } from '../../src/components/index.ts';
import type { PlannedArtifact } from '../../src/plan/types.ts';
import { nerdctlRelease, runcRelease, sha256, syntheticBinary, testSigner, type TestSigner } from '../support/fixtures.ts';

let work: string;
let signer: TestSigner;
let keyringFile: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'np-artifact-sigs-'));
  signer = await testSigner();
  keyringFile = path.join(work, 'test.asc');
  await writeFile(keyringFile, signer.publicKeyArmored);
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** Deps serving `assets` (name -> content) of one release; any other name answers 404. */
function depsFor(assets: Record<string, Buffer | string>, opts: { verify?: 'default' | 'strict'; keyring?: string | undefined } = {}): SignatureDeps & { fetched: string[] } {
  const fetched: string[] = [];
  return {
    fetched,
    verify: opts.verify ?? 'default',
    keyring: 'keyring' in opts ? opts.keyring : keyringFile,
    github: () => ({ downloadUrl: (repo: string, tag: string, name: string) => `https://mirror.invalid/${repo}/releases/download/${tag}/${name}` }),
    fetchText: async (url: string) => {
      fetched.push(url);
      const body = assets[path.posix.basename(url)];
      if (body === undefined) throw new HttpError(url, 404);
      return Buffer.from(body).toString('utf8');
    },
  };
}

/** The artifact as planned, its bytes written where a download would have put them. */
async function downloaded(component: 'runc' | 'nerdctl', version: string, name: string, bytes: Buffer, digest = sha256(bytes)) {
  const file = path.join(work, `${component}-${version}-${name}`);
  await writeFile(file, bytes);
  // What the plan says of this release (the catalog's signatures and checksum format), with these bytes.
  const release = COMPONENTS[component].release(version, 'amd64');
  const artifact: PlannedArtifact = {
    component,
    version,
    arch: 'amd64',
    name,
    repo: release.repo,
    tag: release.tag,
    kind: component === 'runc' ? 'binary' : 'tar.gz',
    url: `https://mirror.invalid/${name}`,
    sha256: digest,
    digestSource: { kind: 'pinned', from: 'built-in' },
    checksumFile: { name: release.checksum.file, url: 'https://mirror.invalid/sums', format: release.checksum.format, ...(release.checksum.format === 'sha256sum' && release.checksum.clearsigned ? { clearsigned: true } : {}) },
    signatures: release.signatures.map((sig) => ({ ...sig, name: sig.file, url: `https://mirror.invalid/${sig.file}` })),
    install: [],
    limits: { memberBytes: 1, unpackedBytes: 1 },
  };
  return { artifact, path: file };
}

/** `gpg --clear-sign` of `text`, with CRLF line ends when asked (cleartext signatures canonicalise them). */
async function clearSign(text: string, crlf = false): Promise<string> {
  const message = await openpgp.createCleartextMessage({ text: text.replace(/\n$/, '') });
  const armored = (await openpgp.sign({ message, signingKeys: signer.privateKey })).replace(/\r\n/g, '\n');
  return crlf ? armored.replace(/\n/g, '\r\n') : armored;
}

const kinds = (r: Awaited<ReturnType<typeof verifyArtifactSignatures>>) => r.flatMap((a) => a.results.map((x) => [x.file, x.result.kind]));

describe('runc: clear-signed runc.sha256sum and runc.amd64.asc', () => {
  it('verifies both when the signed sums list the artifact digest', async () => {
    const rel = await runcRelease('1.4.3', ['amd64'], { signer });
    const deps = depsFor(rel.assets as Record<string, Buffer>);
    const results = await verifyArtifactSignatures(deps, [await downloaded('runc', '1.4.3', 'runc.amd64', rel.assets['runc.amd64'] as Buffer)]);
    expect(results).toEqual([
      {
        artifact: 'runc.amd64',
        results: [
          { file: 'runc.sha256sum', signs: 'runc.sha256sum', keyring: 'runc', result: expect.objectContaining({ kind: 'verified', fingerprint: signer.fingerprint }) },
          { file: 'runc.amd64.asc', signs: 'runc.amd64', keyring: 'runc', result: expect.objectContaining({ kind: 'verified', fingerprint: signer.fingerprint }) },
        ],
      },
    ]);
    expect(deps.fetched.map((u) => path.posix.basename(u))).toEqual(['runc.sha256sum', 'runc.amd64.asc']);
  });

  it('a verified runc.sha256sum that lists another digest does not vouch for the artifact', async () => {
    // The mirror serves another runc.amd64 (and its digest was pinned or published to match), with the
    // genuine signed files beside it.
    const rel = await runcRelease('1.4.3', ['amd64'], { signer });
    const evil = Buffer.from(syntheticBinary('evil', '1.4.3', 'amd64'));
    const deps = depsFor({ ...(rel.assets as Record<string, Buffer>), 'runc.amd64': evil });
    const [runc] = await verifyArtifactSignatures(deps, [await downloaded('runc', '1.4.3', 'runc.amd64', evil)]);
    expect(runc!.results.map((r) => r.result)).toEqual([
      { kind: 'unverified', reason: `the signed runc.sha256sum lists ${sha256(rel.assets['runc.amd64'] as Buffer)} for runc.amd64, not ${sha256(evil)}` },
      { kind: 'unverified', reason: 'bad signature', fingerprint: signer.fingerprint },
    ]);
    await expect(verifyArtifactSignatures(depsFor({ ...(rel.assets as Record<string, Buffer>), 'runc.amd64': evil }, { verify: 'strict' }), [await downloaded('runc', '1.4.3', 'runc.amd64', evil)]))
      .rejects.toMatchObject({ code: 'SIGNATURE', message: expect.stringContaining(`The signature runc.sha256sum could not be verified: the signed runc.sha256sum lists`) });
  });

  it('reads the digests from the text openpgp verified, not from lines appended after the signature (CRLF file)', async () => {
    const binary = Buffer.from(syntheticBinary('runc', '1.4.3', 'amd64'));
    // The signed part lists runc.arm64 only; runc.amd64 is appended after the signature block.
    const signed = await clearSign(`${sha256('arm64 build')}  runc.arm64\n`, true);
    const forged = `${signed}\r\n${sha256(binary)}  runc.amd64\r\n${'e'.repeat(64)}  runc.s390x\r\n`;
    const deps = depsFor({ 'runc.sha256sum': forged, 'runc.amd64.asc': '' });
    const [runc] = await verifyArtifactSignatures(deps, [await downloaded('runc', '1.4.3', 'runc.amd64', binary)]);
    expect(runc!.results[0]).toEqual({
      file: 'runc.sha256sum',
      signs: 'runc.sha256sum',
      keyring: 'runc',
      result: { kind: 'unverified', reason: `the signed runc.sha256sum lists no digest for runc.amd64, not ${sha256(binary)}` },
    });
  });

  it('an unsigned runc.sha256sum is reported as not signed, and fails --verify strict', async () => {
    const rel = await runcRelease('1.4.3', ['amd64']); // no signer: plain sums, no .asc
    const artifact = await downloaded('runc', '1.4.3', 'runc.amd64', rel.assets['runc.amd64'] as Buffer);
    const [runc] = await verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>), [artifact]);
    expect(runc!.results.map((r) => r.result)).toEqual([
      { kind: 'missing', reason: 'runc.sha256sum is not signed (a plain checksum file, not clear-signed)' },
      { kind: 'missing', reason: 'runc.amd64.asc is missing' },
    ]);
    const strict = verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>, { verify: 'strict' }), [artifact]);
    await expect(strict).rejects.toMatchObject({
      code: 'SIGNATURE',
      message: 'The signature runc.sha256sum could not be verified: runc.sha256sum is not signed (a plain checksum file, not clear-signed) (and runc.amd64.asc).',
    });
  });

  it('--verify strict fails when the mirror strips runc.amd64.asc', async () => {
    const rel = await runcRelease('1.4.3', ['amd64'], { signer });
    const { 'runc.amd64.asc': _dropped, ...stripped } = rel.assets as Record<string, Buffer>;
    const artifact = await downloaded('runc', '1.4.3', 'runc.amd64', rel.assets['runc.amd64'] as Buffer);
    expect(kinds(await verifyArtifactSignatures(depsFor(stripped), [artifact]))).toEqual([
      ['runc.sha256sum', 'verified'],
      ['runc.amd64.asc', 'missing'],
    ]);
    await expect(verifyArtifactSignatures(depsFor(stripped, { verify: 'strict' }), [artifact])).rejects.toMatchObject({
      code: 'SIGNATURE',
      message: 'The signature runc.amd64.asc could not be verified: runc.amd64.asc is missing.',
    });
  });

  it('an unknown signer is unverified, and --keyring is what makes it verify', async () => {
    const rel = await runcRelease('1.4.3', ['amd64'], { signer });
    const artifact = await downloaded('runc', '1.4.3', 'runc.amd64', rel.assets['runc.amd64'] as Buffer);
    const results = await verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>, { keyring: undefined }), [artifact]);
    expect(results[0]!.results.map((r) => r.result)).toEqual([
      { kind: 'unverified', reason: `signed by an unknown key ${signer.fingerprint}`, fingerprint: signer.fingerprint },
      { kind: 'unverified', reason: `signed by an unknown key ${signer.fingerprint}`, fingerprint: signer.fingerprint },
    ]);
  });
});

describe('nerdctl: detached SHA256SUMS.asc over SHA256SUMS', () => {
  it('verifies when SHA256SUMS lists the artifact digest', async () => {
    const rel = await nerdctlRelease('2.2.0', ['amd64'], { signer, full: false });
    const name = 'nerdctl-2.2.0-linux-amd64.tar.gz';
    const [n] = await verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>), [await downloaded('nerdctl', '2.2.0', name, rel.assets[name] as Buffer)]);
    expect(n!.results).toEqual([{ file: 'SHA256SUMS.asc', signs: 'SHA256SUMS', keyring: 'nerdctl', result: expect.objectContaining({ kind: 'verified' }) }]);
  });

  it('a verified SHA256SUMS that lists another digest, or none, does not vouch for the artifact', async () => {
    const rel = await nerdctlRelease('2.2.0', ['amd64'], { signer, full: false });
    const name = 'nerdctl-2.2.0-linux-amd64.tar.gz';
    const other = Buffer.from('another build of nerdctl');
    const [n] = await verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>), [await downloaded('nerdctl', '2.2.0', name, other)]);
    expect(n!.results[0]!.result).toEqual({
      kind: 'unverified',
      reason: `the signed SHA256SUMS lists ${sha256(rel.assets[name] as Buffer)} for ${name}, not ${sha256(other)}`,
    });
    // An asset SHA256SUMS does not name at all (a renamed artifact).
    const renamed = 'nerdctl-2.2.0-linux-amd64-custom.tar.gz';
    const artifact = await downloaded('nerdctl', '2.2.0', renamed, other);
    const results = await verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>), [artifact]);
    expect(results[0]!.results[0]!.result).toEqual({ kind: 'unverified', reason: `the signed SHA256SUMS lists no digest for ${renamed}, not ${sha256(other)}` });
    await expect(verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>, { verify: 'strict' }), [artifact])).rejects.toMatchObject({ code: 'SIGNATURE' });
  });

  it('a missing SHA256SUMS.asc is missing; in strict mode that fails', async () => {
    const rel = await nerdctlRelease('2.2.0', ['amd64'], { full: false }); // unsigned: no .asc
    const name = 'nerdctl-2.2.0-linux-amd64.tar.gz';
    const artifact = await downloaded('nerdctl', '2.2.0', name, rel.assets[name] as Buffer);
    expect(kinds(await verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>), [artifact]))).toEqual([['SHA256SUMS.asc', 'missing']]);
    await expect(verifyArtifactSignatures(depsFor(rel.assets as Record<string, Buffer>, { verify: 'strict' }), [artifact])).rejects.toMatchObject({ code: 'SIGNATURE' });
  });
});
