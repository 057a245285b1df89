import * as openpgp from 'openpgp';
import type { PrivateKey } from 'openpgp';
import { describe, expect, it } from 'vitest';
import { parseSha256Sums } from '../../src/checksums/sums.ts';
import { nerdctl } from '../../src/components/nerdctl.ts';
import { runc } from '../../src/components/runc.ts';
import { NodePrepError } from '../../src/errors.ts';
import {
  assertSignatures,
  clearsignedText,
  loadKeyring,
  readPublicKeys,
  verifyClearsigned,
  verifyDetached,
  verifyRelease,
} from '../../src/verify/signatures.ts';
import type { Keyring, ReleaseSignatureResult, SignatureResult } from '../../src/verify/signatures.ts';
import { nerdctlRelease, runcRelease, sha256, testSigner } from '../support/fixtures.ts';
import type { FakeRelease } from '../support/release-server.ts';

const DAY = 24 * 60 * 60;
const SUMS = `${sha256('amd64')}  runc.amd64\n${sha256('arm64')}  runc.arm64\n${sha256('src')}  runc.tar.xz\n`;

/** Shaped like `gpg --clear-sign` output (LF line ends, the final newline belongs to the armor). */
async function clearSign(key: PrivateKey, text: string, date?: Date): Promise<string> {
  const message = await openpgp.createCleartextMessage({ text: text.replace(/\n$/, '') });
  return (await openpgp.sign({ message, signingKeys: key, ...(date ? { date } : {}) })).replace(/\r\n/g, '\n');
}

async function detachSign(key: PrivateKey, data: Uint8Array, opts: { date?: Date; armor?: boolean } = {}): Promise<string | Uint8Array> {
  const message = await openpgp.createMessage({ binary: data });
  const date = opts.date ? { date: opts.date } : {};
  if (opts.armor === false) return openpgp.sign({ message, signingKeys: key, detached: true, format: 'binary', ...date });
  return openpgp.sign({ message, signingKeys: key, detached: true, format: 'armored', ...date });
}

/** A key made at `created` (ed25519: fast), optionally expiring `expiresAfter` seconds later. */
async function keyAt(created: Date, expiresAfter = 0, name = 'dated signer') {
  const { privateKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [{ name, email: 'dated@example.invalid' }],
    date: created,
    keyExpirationTime: expiresAfter,
    format: 'object',
  });
  return privateKey;
}

/** The same key material with new self-signatures made at `at` (an expiry change, as `gpg --quick-set-expire` does). */
async function reexpire(key: PrivateKey, at: Date, expiresAfter: number): Promise<PrivateKey> {
  const { privateKey } = await openpgp.reformatKey({
    privateKey: key,
    userIDs: [{ name: 'dated signer', email: 'dated@example.invalid' }],
    date: at,
    keyExpirationTime: expiresAfter,
    format: 'object',
  });
  return privateKey;
}

const trusting = (...armored: string[]) => loadKeyring('runc', armored);
const fingerprints = (keyring: Keyring) => keyring.keys.map((k) => k.getFingerprint().toUpperCase());
const reason = (r: SignatureResult) => (r.kind === 'unverified' ? r.reason : 'verified');

function releaseFiles(rel: FakeRelease): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const [name, asset] of Object.entries(rel.assets)) if (Buffer.isBuffer(asset)) files.set(name, asset);
  return files;
}

describe('verifyClearsigned', () => {
  it('verifies a clear-signed sums file and hands back the signed text', async () => {
    const signer = await testSigner();
    const result = await verifyClearsigned(await clearSign(signer.privateKey, SUMS), await trusting(signer.publicKeyArmored));
    expect(result).toEqual({
      kind: 'verified',
      fingerprint: signer.fingerprint,
      signer: 'node-prep test signer <test-signer@example.invalid>',
      signedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(parseSha256Sums(clearsignedText(result)!)).toEqual(parseSha256Sums(SUMS));
  });

  it('reads the same fixture format the fake release server serves', async () => {
    const signer = await testSigner();
    const rel = await runcRelease('1.3.6', ['amd64'], { signer });
    const text = releaseFiles(rel).get('runc.sha256sum')!;
    const result = await verifyClearsigned(Buffer.from(text).toString(), await trusting(signer.publicKeyArmored));
    expect(result.kind).toBe('verified');
    expect([...parseSha256Sums(clearsignedText(result)!).keys()]).toEqual(['runc.amd64', 'runc.tar.xz']);
  });

  it('does not vouch for lines outside the signed part', async () => {
    const signer = await testSigner();
    const forged = `${'f'.repeat(64)}  runc.amd64\n`;
    const signed = await clearSign(signer.privateKey, SUMS);
    const result = await verifyClearsigned(forged + signed + forged, await trusting(signer.publicKeyArmored));
    expect(result.kind).toBe('verified');
    expect(clearsignedText(result)).not.toContain('f'.repeat(64));
    expect(parseSha256Sums(clearsignedText(result)!).get('runc.amd64')).toBe(sha256('amd64'));
  });

  it('refuses a tampered body', async () => {
    const signer = await testSigner();
    const signed = await clearSign(signer.privateKey, SUMS);
    const tampered = signed.replace(sha256('amd64'), sha256('evil'));
    const result = await verifyClearsigned(tampered, await trusting(signer.publicKeyArmored));
    expect(result).toEqual({ kind: 'unverified', reason: 'bad signature', fingerprint: signer.fingerprint });
    expect(clearsignedText(result)).toBeUndefined();
  });

  it('names the unknown key that signed it', async () => {
    const signer = await testSigner();
    const other = await testSigner('someone else');
    const result = await verifyClearsigned(await clearSign(other.privateKey, SUMS), await trusting(signer.publicKeyArmored));
    expect(result).toEqual({ kind: 'unverified', reason: `signed by an unknown key ${other.fingerprint}`, fingerprint: other.fingerprint });
  });

  it('calls a file that is not clear-signed malformed', async () => {
    const keyring = await loadKeyring('runc');
    expect(await verifyClearsigned(SUMS, keyring)).toEqual({ kind: 'unverified', reason: 'malformed signature' });
    const noSig = '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n' + SUMS + '-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCgAdFiEE\n-----END PGP SIGNATURE-----\n';
    expect(reason(await verifyClearsigned(noSig, keyring))).toBe('malformed signature');
  });
});

describe('verifyDetached', () => {
  const data = new TextEncoder().encode('#!/bin/sh\necho runc\n');

  it('verifies armored and binary detached signatures, over bytes or text', async () => {
    const signer = await testSigner();
    const keyring = await trusting(signer.publicKeyArmored);
    const armored = await detachSign(signer.privateKey, data);
    expect((await verifyDetached(data, armored, keyring)).kind).toBe('verified');
    expect((await verifyDetached('#!/bin/sh\necho runc\n', armored, keyring)).kind).toBe('verified');
    expect((await verifyDetached(data, new TextEncoder().encode(armored as string), keyring)).kind).toBe('verified');
    expect((await verifyDetached(data, await detachSign(signer.privateKey, data, { armor: false }), keyring)).kind).toBe('verified');
  });

  it('refuses changed data, another key, and garbage', async () => {
    const signer = await testSigner();
    const other = await testSigner('someone else');
    const keyring = await trusting(signer.publicKeyArmored);
    const sig = await detachSign(signer.privateKey, data);
    expect(reason(await verifyDetached(new TextEncoder().encode('#!/bin/sh\necho evil\n'), sig, keyring))).toBe('bad signature');
    expect(reason(await verifyDetached(data, await detachSign(other.privateKey, data), keyring))).toBe(`signed by an unknown key ${other.fingerprint}`);
    expect(reason(await verifyDetached(data, 'not a signature', keyring))).toBe('malformed signature');
    expect(reason(await verifyDetached(data, new Uint8Array([1, 2, 3]), keyring))).toBe('malformed signature');
  });

  it('verifies when any of several signatures does, and reports the worst failure otherwise', async () => {
    const signer = await testSigner();
    const other = await testSigner('someone else');
    const keyring = await trusting(signer.publicKeyArmored);
    const message = await openpgp.createMessage({ binary: data });
    const both = await openpgp.sign({ message, signingKeys: [other.privateKey, signer.privateKey], detached: true });
    expect(await verifyDetached(data, both, keyring)).toMatchObject({ kind: 'verified', fingerprint: signer.fingerprint });
    expect(reason(await verifyDetached(new Uint8Array([9]), both, keyring))).toBe('bad signature');
  });
});

describe('key validity is judged at the signature time', () => {
  const created = new Date('2020-01-01T00:00:00Z');
  const data = new TextEncoder().encode('release\n');

  it('verifies a signature made before the key expired, long after it expired', async () => {
    const key = await keyAt(created, 30 * DAY);
    const signedAt = new Date('2020-01-10T00:00:00Z');
    const result = await verifyDetached(data, await detachSign(key, data, { date: signedAt }), await trusting(key.toPublic().armor()));
    expect(result).toMatchObject({ kind: 'verified', signedAt: signedAt.toISOString() });
  });

  it('refuses a signature made after the key expired', async () => {
    const forever = await keyAt(created);
    const sig = await detachSign(forever, data, { date: new Date('2020-03-01T00:00:00Z') });
    const expiring = await reexpire(forever, created, 30 * DAY);
    expect(expiring.getFingerprint()).toBe(forever.getFingerprint());
    const result = await verifyDetached(data, sig, await trusting(expiring.toPublic().armor()));
    expect(result).toEqual({ kind: 'unverified', reason: 'key expired at signing time', fingerprint: forever.getFingerprint().toUpperCase() });
  });

  it('takes an expiry extension made after the signature (gpg rule), merged or on its own', async () => {
    const forever = await keyAt(created);
    const sig = await detachSign(forever, data, { date: new Date('2020-03-01T00:00:00Z') });
    const expired = (await reexpire(forever, created, 30 * DAY)).toPublic().armor();
    const extended = (await reexpire(forever, new Date('2020-06-01T00:00:00Z'), 365 * DAY)).toPublic().armor();
    const merged = await trusting(expired, extended);
    expect(merged.keys.filter((k) => k.getFingerprint() === forever.getFingerprint())).toHaveLength(1);
    expect((await verifyDetached(data, sig, merged)).kind).toBe('verified');
    expect((await verifyDetached(data, sig, await trusting(extended))).kind).toBe('verified');
    // An extension that still ends before the signature does not help.
    const short = (await reexpire(forever, new Date('2020-06-01T00:00:00Z'), 40 * DAY)).toPublic().armor();
    expect(reason(await verifyDetached(data, sig, await trusting(expired, short)))).toBe('key expired at signing time');
  });

  it('refuses a signature made after the key was revoked, not one made before', async () => {
    const key = await keyAt(created);
    const before = await detachSign(key, data, { date: new Date('2020-01-10T00:00:00Z') });
    const after = await detachSign(key, data, { date: new Date('2020-03-01T00:00:00Z') });
    const { publicKey: revoked } = await openpgp.revokeKey({
      key,
      date: new Date('2020-02-01T00:00:00Z'),
      reasonForRevocation: { flag: openpgp.enums.reasonForRevocation.keySuperseded },
      format: 'armored',
    });
    const keyring = await trusting(revoked);
    expect((await verifyDetached(data, before, keyring)).kind).toBe('verified');
    expect(reason(await verifyDetached(data, after, keyring))).toBe('key revoked at signing time');
  });

  it('refuses a signature dated more than a day ahead of the clock', async () => {
    const signer = await testSigner();
    const keyring = await trusting(signer.publicKeyArmored);
    const now = new Date();
    const future = await detachSign(signer.privateKey, data, { date: new Date(now.getTime() + 3 * DAY * 1000) });
    expect(await verifyDetached(data, future, keyring, { now })).toEqual({
      kind: 'unverified',
      reason: 'signature created in the future',
      fingerprint: signer.fingerprint,
    });
    // A slow clock on the signer's side is tolerated: one hour ahead still verifies.
    const skewed = await detachSign(signer.privateKey, data, { date: new Date(now.getTime() + 3600 * 1000) });
    expect((await verifyDetached(data, skewed, keyring, { now })).kind).toBe('verified');
  });
});

describe('keyrings', () => {
  it('carries the runc.keyring keys, and only Akihiro Suda for nerdctl', async () => {
    expect(fingerprints(await loadKeyring('runc'))).toEqual([
      '5F36C6C61B5460124A75F5A69E18AA267DDB8DB4',
      'C9C370B246B09F6DBCFC744C34401015D1D2D386',
      'C2428CD75720FACDCF76B6EA17DE5ECB75A1100E',
      'C020EA876CE4E06C7AB95AEF49524C6F9F638F1A',
    ]);
    expect(fingerprints(await loadKeyring('nerdctl'))).toEqual(['C020EA876CE4E06C7AB95AEF49524C6F9F638F1A']);
  });

  it('merges the expiry extensions into the built-in keys', async () => {
    const runcKeys = await loadKeyring('runc');
    const byFpr = new Map(runcKeys.keys.map((k) => [k.getFingerprint().toUpperCase(), k]));
    const expiry = async (f: string) => ((await byFpr.get(f)!.getExpirationTime()) as Date).toISOString().slice(0, 10);
    expect(await expiry('C2428CD75720FACDCF76B6EA17DE5ECB75A1100E')).toBe('2028-04-18');
    expect(await expiry('C020EA876CE4E06C7AB95AEF49524C6F9F638F1A')).toBe('2028-07-31');
    expect(await expiry('5F36C6C61B5460124A75F5A69E18AA267DDB8DB4')).toBe('2031-06-18');
    // Aleksa Sarai's ed25519 key signs with a subkey whose binding was extended to 2030-03-25.
    const cyphar = byFpr.get('C9C370B246B09F6DBCFC744C34401015D1D2D386')!;
    const signing = await cyphar.getSigningKey(undefined, new Date('2025-06-01T00:00:00Z'));
    expect(signing.getFingerprint().toUpperCase()).toBe('B64E4955B29FA3D463F2A9062897FAD2B7E9446F');
    // The older self-signatures are kept beside the new ones.
    expect(byFpr.get('C2428CD75720FACDCF76B6EA17DE5ECB75A1100E')!.users[0]!.selfCertifications.length).toBeGreaterThan(1);
  });

  it('adds --keyring keys, armored with text around them or binary', async () => {
    const signer = await testSigner();
    const listing = `pub   ed25519 2026-01-01 [SC]\n      ${signer.fingerprint}\n\n${signer.publicKeyArmored}\n`;
    expect(fingerprints(await loadKeyring('nerdctl', [listing]))).toContain(signer.fingerprint);
    expect(fingerprints(await loadKeyring('nerdctl', [new TextEncoder().encode(`# ${'-'.repeat(300)}\n${listing}${listing}`)]))).toContain(signer.fingerprint);
    expect(fingerprints(await loadKeyring('nerdctl', [signer.publicKey.write()]))).toContain(signer.fingerprint);
    // A secret key given by mistake is trusted for its public part only.
    const keys = await readPublicKeys(signer.privateKeyArmored, 'key.asc');
    expect(keys.map((k) => k.isPrivate())).toEqual([false]);
  });

  it('refuses a --keyring file without keys, naming it', async () => {
    await expect(readPublicKeys('hello', 'keys.txt')).rejects.toMatchObject({ code: 'KEYRING', message: 'keys.txt holds no OpenPGP public key.' });
    await expect(loadKeyring('runc', [new Uint8Array([0x99, 1, 2])])).rejects.toMatchObject({ code: 'KEYRING', message: expect.stringContaining('--keyring #1') });
  });
});

describe('verifyRelease / assertSignatures', () => {
  it('verifies what runc publishes: the clear-signed sums and the binary signature', async () => {
    const signer = await testSigner();
    const rel = await runcRelease('1.3.6', ['amd64'], { signer });
    const keyrings = { runc: await trusting(signer.publicKeyArmored) };
    const results = await verifyRelease(runc.release('1.3.6', 'amd64').signatures, releaseFiles(rel), { keyrings, mode: 'strict' });
    expect(results.map((r) => [r.file, r.signs, r.result.kind])).toEqual([
      ['runc.sha256sum', 'runc.sha256sum', 'verified'],
      ['runc.amd64.asc', 'runc.amd64', 'verified'],
    ]);
    expect(clearsignedText(results[0]!.result as SignatureResult)).toContain('runc.amd64');
    expect(results[1]!.result).toMatchObject({ signer: 'node-prep test signer <test-signer@example.invalid>', fingerprint: signer.fingerprint });
  });

  it('default mode reports what did not verify; strict mode throws SIGNATURE naming the file and the reason', async () => {
    const signer = await testSigner();
    const rel = await nerdctlRelease('2.2.0', ['amd64'], { signer, full: false });
    const signatures = nerdctl.release('2.2.0', 'amd64').signatures;
    const files = releaseFiles(rel);
    // Signed by the test key, checked against the built-in keyring only.
    const reported = await verifyRelease(signatures, files, { mode: 'default' });
    expect(reported).toEqual([
      {
        file: 'SHA256SUMS.asc',
        signs: 'SHA256SUMS',
        keyring: 'nerdctl',
        result: { kind: 'unverified', reason: `signed by an unknown key ${signer.fingerprint}`, fingerprint: signer.fingerprint },
      },
    ]);
    const err = await verifyRelease(signatures, files, { mode: 'strict' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodePrepError);
    expect(err).toMatchObject({
      code: 'SIGNATURE',
      message: `The signature SHA256SUMS.asc could not be verified: signed by an unknown key ${signer.fingerprint}.`,
      hint: expect.stringMatching(/--keyring FILE.*--verify default/),
      fields: { file: 'SHA256SUMS.asc', signs: 'SHA256SUMS', fingerprint: signer.fingerprint },
    });
    // --keyring with the signer's key: strict passes.
    const ok = await verifyRelease(signatures, files, { mode: 'strict', keyrings: { nerdctl: await loadKeyring('nerdctl', [signer.publicKeyArmored]) } });
    expect(ok[0]!.result.kind).toBe('verified');
  });

  it('treats a missing signature as a failure in strict mode only', async () => {
    const rel = await runcRelease('1.3.6', ['amd64']); // unsigned: no .asc, plain runc.sha256sum
    const signatures = runc.release('1.3.6', 'amd64').signatures;
    const keyrings = { runc: await loadKeyring('runc') };
    const results = await verifyRelease(signatures, releaseFiles(rel), { keyrings, mode: 'default' });
    // A published runc.sha256sum without a signature block is not signed: not "missing", not "malformed".
    expect(results.map((r) => r.result)).toEqual([
      { kind: 'missing', reason: 'runc.sha256sum is not signed (a plain checksum file, not clear-signed)' },
      { kind: 'missing', reason: 'runc.amd64.asc is missing' },
    ]);
    expect(() => assertSignatures(results, 'default')).not.toThrow();
    expect(() => assertSignatures(results, 'strict')).toThrow(/runc\.sha256sum could not be verified: runc\.sha256sum is not signed \(a plain checksum file, not clear-signed\) \(and runc\.amd64\.asc\)/);
  });

  it('reports a signed file that was not downloaded', async () => {
    const signer = await testSigner();
    const rel = await runcRelease('1.3.6', ['amd64'], { signer });
    const files = releaseFiles(rel);
    files.delete('runc.amd64');
    const keyrings = { runc: await trusting(signer.publicKeyArmored) };
    const [, asc] = await verifyRelease(runc.release('1.3.6', 'amd64').signatures, files, { keyrings, mode: 'default' });
    expect(asc!.result).toEqual({ kind: 'missing', reason: 'runc.amd64, the file it signs, is missing' });
  });

  it('passes strict mode when nothing is published to check', () => {
    const none: ReleaseSignatureResult[] = [];
    expect(assertSignatures(none, 'strict')).toBe(none);
  });
});
