/**
 * Check the OpenPGP signatures a release publishes (runc, nerdctl) for each downloaded artifact, and
 * tie them to the bytes: a verified signature over a checksum file vouches for the artifact only when
 * the text it signs lists the digest the artifact has.
 */
import { readFile } from 'node:fs/promises';
import { parseBareHex, parseSha256Sums } from '../checksums/sums.ts';
import { HttpError, NodePrepError } from '../errors.ts';
import type { GitHub } from '../net/github.ts';
import type { PlannedArtifact } from '../plan/types.ts';
import {
  assertSignatures,
  clearsignedText,
  loadKeyring,
  verifyRelease,
  type Keyring,
  type KeyringName,
  type PublishedSignature,
  type ReleaseSignatureResult,
} from '../verify/signatures.ts';

export interface ArtifactSignatures {
  artifact: string;
  results: ReleaseSignatureResult[];
}

/** What the check needs: --keyring and --verify, download URLs, and small-file fetches. */
export interface SignatureDeps {
  keyring: string | undefined;
  verify: 'default' | 'strict';
  github: () => Pick<GitHub, 'downloadUrl'>;
  /** Rejects with HttpError 404 for a file the release (or mirror, or bundle) does not have. */
  fetchText: (url: string) => Promise<string>;
}

/**
 * Verifies every published signature of each artifact's release; `path` is the downloaded (sha256
 * verified) artifact. Under --verify strict a signature that is missing, unsigned or unverified throws
 * NodePrepError SIGNATURE; otherwise the results are returned for the report.
 */
export async function verifyArtifactSignatures(deps: SignatureDeps, artifacts: Array<{ artifact: PlannedArtifact; path: string }>): Promise<ArtifactSignatures[]> {
  const extra = deps.keyring ? [await readKeyringFile(deps.keyring)] : [];
  const keyrings: Partial<Record<KeyringName, Keyring>> = {};
  const out: ArtifactSignatures[] = [];
  for (const { artifact, path } of artifacts) {
    const signatures = artifact.signatures.map(published);
    if (signatures.length === 0) continue;
    for (const s of signatures) keyrings[s.keyring] ??= await loadKeyring(s.keyring, extra);
    const files = new Map<string, Uint8Array>();
    const urlOf = (name: string) => deps.github().downloadUrl(artifact.repo, artifact.tag, name);
    for (const s of signatures) {
      for (const name of s.kind === 'detached' ? [s.file, s.signs] : [s.file]) {
        if (files.has(name)) continue;
        // An unsigned clear-sign file is passed on as it is: verifyRelease reports it as not signed.
        const bytes = name === artifact.name ? await readFile(path) : await fetchOptional(deps, urlOf(name));
        if (bytes !== undefined) files.set(name, bytes);
      }
    }
    const results = await verifyRelease(signatures, files, { keyrings, mode: 'default' });
    for (const r of results) checkListedDigest(r, signatures, artifact, files);
    out.push({ artifact: artifact.name, results: assertSignatures(results, deps.verify) });
  }
  return out;
}

/**
 * A verified signature over the release's checksum file vouches for the artifact only if the signed
 * text lists the artifact's digest; otherwise the result becomes unverified (in place). The signed
 * text of a clear-signed file is the one openpgp verified, never the raw file: lines before or after
 * the signed part (an appended `<hex>  runc.s390x`) are nobody's word.
 */
function checkListedDigest(
  r: ReleaseSignatureResult,
  signatures: readonly PublishedSignature[],
  artifact: Pick<PlannedArtifact, 'name' | 'sha256' | 'checksumFile'>,
  files: ReadonlyMap<string, Uint8Array>,
): void {
  if (r.result.kind !== 'verified' || r.signs !== artifact.checksumFile.name) return;
  const sig: PublishedSignature | undefined = signatures.find((s) => s.file === r.file);
  const signed = sig?.kind === 'clearsigned-checksums' ? clearsignedText(r.result) : decode(files.get(r.signs));
  if (signed === undefined) {
    r.result = { kind: 'unverified', reason: `the text signed in ${r.file} could not be read` };
    return;
  }
  let listed: string | undefined;
  try {
    listed = artifact.checksumFile.format === 'bare-hex' ? parseBareHex(signed) : parseSha256Sums(signed).get(artifact.name);
  } catch (err) {
    r.result = { kind: 'unverified', reason: `the signed ${r.signs} cannot be read: ${(err as Error).message}` };
    return;
  }
  if (listed !== artifact.sha256) {
    r.result = { kind: 'unverified', reason: `the signed ${r.signs} lists ${listed ?? 'no digest'} for ${artifact.name}, not ${artifact.sha256}` };
  }
}

/** The plan's signature as the verifier takes it. */
function published(s: PlannedArtifact['signatures'][number]): PublishedSignature {
  return s.kind === 'detached' ? { kind: s.kind, file: s.name, signs: s.signs, keyring: s.keyring } : { kind: s.kind, file: s.name, keyring: s.keyring };
}

const decode = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

async function fetchOptional(deps: SignatureDeps, url: string): Promise<Uint8Array | undefined> {
  try {
    return new TextEncoder().encode(await deps.fetchText(url));
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) return undefined;
    throw err;
  }
}

async function readKeyringFile(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new NodePrepError('KEYRING', `Cannot read --keyring ${file}: ${(err as NodeJS.ErrnoException).code ?? err}.`, {
      hint: 'Give a file of OpenPGP public keys (gpg --export --armor FINGERPRINT > FILE).',
    });
  }
}
