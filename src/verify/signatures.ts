/**
 * OpenPGP signatures on release files: runc's clear-signed `runc.sha256sum` and `runc.<arch>.asc`,
 * nerdctl's `SHA256SUMS.asc` (RELEASES.md §2, §3). Pure apart from openpgp: bytes and text in,
 * tagged results out. No network, no file system: the built-in keys are bundled string constants.
 */
import * as openpgp from 'openpgp';
import type { AnyPacket, PublicKey, SignaturePacket, Subkey } from 'openpgp';
import type { PublishedSignature } from '../components/types.ts';
import { KEY_REFRESH, NERDCTL_KEYS, RUNC_KEYS } from '../data/keys/index.ts';
import { NodePrepError } from '../errors.ts';

export type KeyringName = PublishedSignature['keyring'];
export type { PublishedSignature } from '../components/types.ts';
export type VerifyMode = 'default' | 'strict';

/** The keys trusted for one project's signatures. */
export interface Keyring {
  readonly name: KeyringName;
  readonly keys: readonly PublicKey[];
}

export type SignatureResult =
  | {
      kind: 'verified';
      /** Primary key fingerprint, 40 upper-case hex digits (as gpg and RELEASES.md print it). */
      fingerprint: string;
      /** The key's primary user ID, e.g. `Kir Kolyshkin <kolyshkin@gmail.com>`. */
      signer: string;
      /** Signature creation time, ISO 8601. */
      signedAt: string;
    }
  | {
      kind: 'unverified';
      /** Short and fixed: 'bad signature', 'signed by an unknown key <fp>', 'key expired at signing time', ... */
      reason: string;
      /** Of the primary key when known, else the issuer fingerprint (or key ID) the signature names. */
      fingerprint?: string;
    };

/**
 * One published signature of a release, checked. `missing`: the signature or the file it signs was not
 * there, or a file meant to be clear-signed is published without a signature.
 */
export interface ReleaseSignatureResult {
  /** The signature file (`runc.sha256sum`, `runc.amd64.asc`, `SHA256SUMS.asc`). */
  file: string;
  /** The file whose content it vouches for (the clear-signed file itself for `clearsigned-checksums`). */
  signs: string;
  keyring: KeyringName;
  result: SignatureResult | { kind: 'missing'; reason: string };
}

export interface VerifyOptions {
  /** The current time: signatures dated after now + 1 day are refused. Default: the clock. */
  now?: Date;
}

/** Clock skew tolerated between the signer's machine and ours. */
const FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

const CLEARSIGN_BEGIN = '-----BEGIN PGP SIGNED MESSAGE-----';
const BUILTIN: Record<KeyringName, string> = { runc: RUNC_KEYS, nerdctl: NERDCTL_KEYS };
const ARMORED_KEY = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;
const KEYRING_HINT = 'A --keyring file holds OpenPGP public keys, armored (`gpg --export --armor FPR`) or binary (`gpg --export FPR`).';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const fpr = (k: PublicKey | Subkey) => k.getFingerprint().toUpperCase();
/** Binary OpenPGP starts with a packet tag, whose top bit is set; armor (and any text before it) is ASCII. */
const isBinary = (b: Uint8Array) => b.length > 0 && (b[0]! & 0x80) !== 0 && !(b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf);
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * The OpenPGP public keys in `data`: any number of armored blocks (text around them, like the gpg
 * listing in runc.keyring, is ignored) or a binary keyring. Secret keys are reduced to their public part.
 * `source` names the input in errors (a file name).
 */
export async function readPublicKeys(data: string | Uint8Array, source: string): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  try {
    if (typeof data !== 'string' && isBinary(data)) {
      keys.push(...(await openpgp.readKeys({ binaryKeys: data })));
    } else {
      const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
      for (const [block] of text.matchAll(ARMORED_KEY)) keys.push(...(await openpgp.readKeys({ armoredKeys: block })));
    }
  } catch (e) {
    throw new NodePrepError('KEYRING', `${source} is not a readable OpenPGP key: ${errorText(e)}.`, { hint: KEYRING_HINT, fields: { source }, cause: e });
  }
  if (keys.length === 0) throw new NodePrepError('KEYRING', `${source} holds no OpenPGP public key.`, { hint: KEYRING_HINT, fields: { source } });
  return keys.map((k) => (k.isPrivate() ? k.toPublic() : k));
}

/**
 * Adds `key` to `keys`, or merges it into the key with the same fingerprint. Merging is how an expiry
 * extension is taken in: openpgp verifies every self-signature against the primary key when it uses
 * it, so a merged block can extend or revoke a trusted key but never add a key or a user of its own.
 */
async function addKey(keys: PublicKey[], key: PublicKey): Promise<void> {
  const i = keys.findIndex((k) => fpr(k) === fpr(key));
  if (i < 0) keys.push(key);
  else keys[i] = await keys[i]!.update(key);
}

const builtins = new Map<KeyringName, Promise<PublicKey[]>>();

function builtinKeys(name: KeyringName): Promise<PublicKey[]> {
  let p = builtins.get(name);
  if (!p) {
    p = (async () => {
      const keys = await readPublicKeys(BUILTIN[name], `the built-in ${name} keyring`);
      // The refresh blocks only update keys already trusted here (see src/data/keys/README.md).
      for (const r of await readPublicKeys(KEY_REFRESH, 'the built-in key refresh')) {
        const i = keys.findIndex((k) => fpr(k) === fpr(r));
        if (i >= 0) keys[i] = await keys[i]!.update(r);
      }
      return keys;
    })();
    builtins.set(name, p);
  }
  return p;
}

/**
 * The keyring for `name`: the built-in maintainers' keys plus `extra` (the contents of --keyring
 * files, armored or binary). An extra key with a built-in fingerprint is merged into it.
 */
export async function loadKeyring(name: KeyringName, extraArmored: ReadonlyArray<string | Uint8Array> = []): Promise<Keyring> {
  const keys = [...(await builtinKeys(name))];
  for (const [i, extra] of extraArmored.entries()) {
    for (const k of await readPublicKeys(extra, `--keyring #${i + 1}`)) await addKey(keys, k);
  }
  return { name, keys };
}

// ---------------------------------------------------------------------------------------------
// Verification

type Unverified = Extract<SignatureResult, { kind: 'unverified' }>;

/** When several signatures fail, report the most telling reason, not the first. */
const SEVERITY: ReadonlyArray<RegExp> = [/^bad signature/, /revoked/, /^key /, /^insecure|^unsupported/, /expired|future/, /unknown key/];
const severity = (r: Unverified) => {
  const i = SEVERITY.findIndex((re) => re.test(r.reason));
  return i < 0 ? SEVERITY.length : i;
};

const unverified = (reason: string, fingerprint?: string): Unverified =>
  fingerprint === undefined ? { kind: 'unverified', reason } : { kind: 'unverified', reason, fingerprint };

/** The text of verified clear-signed messages, kept beside the (plain, JSON-able) result. */
const signedTexts = new WeakMap<SignatureResult, string>();

/**
 * The signed text of a clear-signed message whose signature verified, as openpgp read it (dash-escaping
 * undone, no armor): parse digests from this, not from the raw file, whose lines outside the signed
 * part nobody vouches for. `undefined` for anything else. Tied to the result object, not to copies of it.
 */
export function clearsignedText(result: SignatureResult): string | undefined {
  return result.kind === 'verified' ? signedTexts.get(result) : undefined;
}

/** Verifies a clear-signed file (`gpg --clear-sign`), e.g. runc's `runc.sha256sum`. */
export async function verifyClearsigned(text: string, keyring: Keyring, opts: VerifyOptions = {}): Promise<SignatureResult> {
  let message: openpgp.CleartextMessage;
  try {
    message = await openpgp.readCleartextMessage({ cleartextMessage: text });
  } catch {
    return unverified('malformed signature');
  }
  const signedText = message.getText();
  const literal = await literalPacket(await openpgp.createMessage({ text: signedText }));
  // `signature` is set by readCleartextMessage but missing from openpgp's type declarations.
  const { signature } = message as unknown as { signature?: openpgp.Signature };
  if (!signature) return unverified('malformed signature');
  const result = await verifyPackets(literal, [...signature.packets], keyring, opts.now ?? new Date());
  if (result.kind === 'verified') signedTexts.set(result, signedText);
  return result;
}

/** Verifies a detached signature (`gpg --detach-sign`, armored or binary) over `data`. */
export async function verifyDetached(
  data: Uint8Array | string,
  signature: string | Uint8Array,
  keyring: Keyring,
  opts: VerifyOptions = {},
): Promise<SignatureResult> {
  let packets: SignaturePacket[];
  try {
    const sig =
      typeof signature !== 'string' && isBinary(signature)
        ? await openpgp.readSignature({ binarySignature: signature })
        : await openpgp.readSignature({ armoredSignature: typeof signature === 'string' ? signature : new TextDecoder().decode(signature) });
    packets = [...sig.packets];
  } catch {
    return unverified('malformed signature');
  }
  // Bytes, always: release signatures are binary-mode (0x00), and a text-mode one reads them back as text.
  const binary = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const literal = await literalPacket(await openpgp.createMessage({ binary }));
  return verifyPackets(literal, packets, keyring, opts.now ?? new Date());
}

async function literalPacket(message: openpgp.Message<unknown>): Promise<AnyPacket> {
  const p = message.packets.findPacket(openpgp.enums.packet.literalData);
  if (!p) throw new Error('openpgp.createMessage made no literal data packet');
  return p;
}

/** A file signed by several keys verifies when one of them does. */
async function verifyPackets(literal: AnyPacket, packets: SignaturePacket[], keyring: Keyring, now: Date): Promise<SignatureResult> {
  const documentSigs = packets.filter((p) => p.signatureType === openpgp.enums.signature.binary || p.signatureType === openpgp.enums.signature.text);
  let worst: Unverified | undefined;
  for (const packet of documentSigs) {
    const r = await verifyPacket(literal, packet, keyring, now);
    if (r.kind === 'verified') return r;
    if (!worst || severity(r) < severity(worst)) worst = r;
  }
  return worst ?? unverified('malformed signature');
}

async function verifyPacket(literal: AnyPacket, packet: SignaturePacket, keyring: Keyring, now: Date): Promise<SignatureResult> {
  const signedAt = packet.created;
  if (!signedAt || packet.signatureType === null) return unverified('malformed signature');
  const issuer = packet.issuerFingerprint ? hex(packet.issuerFingerprint) : packet.issuerKeyID.toHex().toUpperCase();

  const found = findKey(keyring, packet);
  if (!found) return unverified(`signed by an unknown key ${issuer}`, issuer);
  const primaryFpr = fpr(found.primary);

  if (signedAt.getTime() > now.getTime() + FUTURE_SKEW_MS) return unverified('signature created in the future', primaryFpr);

  try {
    // The cryptographic check alone, at the signature's own time (so only its digest and maths can fail
    // here); whether the key was valid then is decided below.
    await packet.verify(found.key.keyPacket, packet.signatureType, literal, signedAt, true);
  } catch (e) {
    const m = /insecure (?:message )?hash algorithm: (\w+)/i.exec(errorText(e));
    return unverified(m ? `insecure hash algorithm ${m[1]}` : 'bad signature', primaryFpr);
  }
  const expires = packet.getExpirationTime();
  if (expires !== Infinity && expires <= now) return unverified('signature expired', primaryFpr);

  const validity = await keyValidAt(found.primary, found.key, signedAt);
  if (!validity.ok) return unverified(validity.reason, primaryFpr);
  return { kind: 'verified', fingerprint: primaryFpr, signer: await signerOf(found.primary, validity.at), signedAt: signedAt.toISOString() };
}

function findKey(keyring: Keyring, packet: SignaturePacket): { primary: PublicKey; key: PublicKey | Subkey } | undefined {
  const want = packet.issuerFingerprint ? hex(packet.issuerFingerprint) : undefined;
  for (const primary of keyring.keys) {
    for (const key of primary.getKeys(packet.issuerKeyID)) {
      if (want === undefined || fpr(key) === want) return { primary, key };
    }
  }
  return undefined;
}

/**
 * Was `key` (the primary or a subkey of `primary`) a valid signing key when the signature was made?
 *
 * Checked at the signature's creation time, not now: release signatures outlive the keys' expiry dates
 * (three of the four keys in the runc.keyring snapshot we carry have expired by now), and a signature
 * made while the key was valid stays good. (openpgp.verify's `date` would only move the signature's
 * own checks; it already judges the key at the signature time, which is why the checks are split here.)
 *
 * First with openpgp's own rule: the self-signatures that existed at that time. If that fails, and the
 * key has newer self-signatures, with gpg's rule: the newest self-signatures decide the key's expiry
 * date, and the signature must predate it. Maintainers extend expiry with new self-signatures, and
 * the copies of their keys we carry are snapshots that keep only some of them: e.g. Akihiro Suda's key
 * in the runc.keyring snapshot says it expired on 2023-11-02, his refreshed copy (2026-08-01) says
 * 2028-07-31, and the self-signature that covered nerdctl releases in between is in neither copy.
 */
async function keyValidAt(primary: PublicKey, key: PublicKey | Subkey, signedAt: Date): Promise<{ ok: true; at: Date } | { ok: false; reason: string }> {
  if (key.getCreationTime() > signedAt) return { ok: false, reason: 'key created after the signature' };
  let first: unknown;
  try {
    await primary.getSigningKey(key.getKeyID(), signedAt);
    return { ok: true, at: signedAt };
  } catch (e) {
    first = e;
  }
  const newest = newestSelfSignature(primary, key);
  if (newest && newest > signedAt) {
    try {
      await primary.getSigningKey(key.getKeyID(), newest);
      if (signedAt.getTime() < (await expiryAt(primary, key, newest))) return { ok: true, at: newest };
    } catch {
      // not valid under the newest self-signatures either: report the first failure
    }
  }
  const why = errorText(first);
  if (/revoked/i.test(why)) return { ok: false, reason: 'key revoked at signing time' };
  if (/expired/i.test(why)) return { ok: false, reason: 'key expired at signing time' };
  return { ok: false, reason: 'key not valid for signing at signing time' };
}

function newestSelfSignature(primary: PublicKey, key: PublicKey | Subkey): Date | undefined {
  const sigs = primary.users.flatMap((u) => u.selfCertifications);
  if (key !== primary) sigs.push(...(key as Subkey).bindingSignatures);
  const times = sigs.map((s) => s.created?.getTime() ?? 0);
  return times.length > 0 ? new Date(Math.max(...times)) : undefined;
}

/** Epoch ms at which the primary key (and the signing subkey) expire, by their self-signatures as of `at`. */
async function expiryAt(primary: PublicKey, key: PublicKey | Subkey, at: Date): Promise<number> {
  const times = [await primary.getExpirationTime()];
  if (key !== primary) times.push(await (key as Subkey).getExpirationTime(at));
  return Math.min(...times.map((t) => (t === null ? -Infinity : t instanceof Date ? t.getTime() : t)));
}

async function signerOf(primary: PublicKey, at: Date): Promise<string> {
  try {
    const { user } = await primary.getPrimaryUser(at);
    if (user.userID?.userID) return user.userID.userID;
  } catch {
    // fall through to the first user ID
  }
  return primary.getUserIDs()[0] ?? fpr(primary);
}

// ---------------------------------------------------------------------------------------------
// A release's published signatures

/**
 * Checks every signature a component publishes (`ComponentRelease.signatures`) against the downloaded
 * `files` (name → content: the signature files and the files they sign). A keyring not given in
 * `keyrings` is the built-in one. In `strict` mode a signature that did not verify throws (see
 * assertSignatures); in `default` mode the results are only returned, for reporting.
 */
export async function verifyRelease(
  signatures: readonly PublishedSignature[],
  files: ReadonlyMap<string, Uint8Array>,
  opts: { keyrings?: Partial<Record<KeyringName, Keyring>>; mode: VerifyMode; now?: Date },
): Promise<ReleaseSignatureResult[]> {
  const results: ReleaseSignatureResult[] = [];
  for (const sig of signatures) {
    const keyring = opts.keyrings?.[sig.keyring] ?? (await loadKeyring(sig.keyring));
    const verifyOpts = opts.now ? { now: opts.now } : {};
    const signs = sig.kind === 'detached' ? sig.signs : sig.file;
    const base = { file: sig.file, signs, keyring: sig.keyring };
    const sigBytes = files.get(sig.file);
    if (!sigBytes) {
      results.push({ ...base, result: { kind: 'missing', reason: `${sig.file} is missing` } });
      continue;
    }
    if (sig.kind === 'clearsigned-checksums') {
      const text = new TextDecoder().decode(sigBytes);
      // Published, but as a plain checksum file: there is no signature to check, not a bad one.
      if (!text.includes(CLEARSIGN_BEGIN)) {
        results.push({ ...base, result: { kind: 'missing', reason: `${sig.file} is not signed (a plain checksum file, not clear-signed)` } });
        continue;
      }
      results.push({ ...base, result: await verifyClearsigned(text, keyring, verifyOpts) });
      continue;
    }
    const data = files.get(sig.signs);
    if (!data) {
      results.push({ ...base, result: { kind: 'missing', reason: `${sig.signs}, the file it signs, is missing` } });
      continue;
    }
    results.push({ ...base, result: await verifyDetached(data, sigBytes, keyring, verifyOpts) });
  }
  return assertSignatures(results, opts.mode);
}

/**
 * `strict`: throws NodePrepError SIGNATURE when any published signature is missing or unverified.
 * `default`: returns the results untouched (an unverified signature is reported, never fatal).
 */
export function assertSignatures(results: ReleaseSignatureResult[], mode: VerifyMode): ReleaseSignatureResult[] {
  if (mode !== 'strict') return results;
  const failed = results.filter((r) => r.result.kind !== 'verified');
  const first = failed[0];
  if (!first || first.result.kind === 'verified') return results;
  const more = failed.length > 1 ? ` (and ${failed.slice(1).map((r) => r.file).join(', ')})` : '';
  throw new NodePrepError('SIGNATURE', `The signature ${first.file} could not be verified: ${first.result.reason}${more}.`, {
    hint:
      'With --verify strict every published signature must verify against the built-in maintainers\' keys. ' +
      'Trust another key with --keyring FILE (e.g. for internal rebuilds), or use --verify default to rely on the sha256 check and report the signature.',
    fields: {
      file: first.file,
      signs: first.signs,
      reason: first.result.reason,
      fingerprint: 'fingerprint' in first.result ? first.result.fingerprint : undefined,
      failed: failed.map((r) => ({ file: r.file, ...r.result })),
    },
  });
}
