/**
 * Check the OpenPGP signatures a release publishes (runc, nerdctl) for each downloaded artifact, and
 * tie them to the bytes: a verified signed checksum file must list the digest the artifact has.
 */
import { readFile } from 'node:fs/promises';
import type { Context } from '../cli/context.ts';
import { parseSha256Sums, clearsignedBody } from '../checksums/sums.ts';
import { HttpError, NodePrepError } from '../errors.ts';
import { releaseOf } from '../plan/artifact.ts';
import type { PlannedArtifact } from '../plan/types.ts';
import { assertSignatures, loadKeyring, verifyRelease, type Keyring, type KeyringName, type ReleaseSignatureResult } from '../verify/signatures.ts';

export interface ArtifactSignatures {
  artifact: string;
  results: ReleaseSignatureResult[];
}

export async function verifyArtifactSignatures(ctx: Context, artifacts: Array<{ artifact: PlannedArtifact; path: string }>): Promise<ArtifactSignatures[]> {
  const extra = ctx.options.keyring ? [await readKeyringFile(ctx.options.keyring)] : [];
  const keyrings: Partial<Record<KeyringName, Keyring>> = {};
  const out: ArtifactSignatures[] = [];
  for (const { artifact, path } of artifacts) {
    const release = releaseOf(artifact);
    if (release.signatures.length === 0) continue;
    for (const s of release.signatures) keyrings[s.keyring] ??= await loadKeyring(s.keyring, extra);
    const files = new Map<string, Uint8Array>();
    const urlOf = (name: string) => ctx.github().downloadUrl(release.repo, release.tag, name);
    for (const s of release.signatures) {
      const wanted = s.kind === 'detached' ? [s.file, s.signs] : [s.file];
      for (const name of wanted) {
        if (files.has(name)) continue;
        if (name === artifact.name) files.set(name, await readFile(path));
        else {
          const text = await fetchOptional(ctx, urlOf(name));
          // A checksum file without a signature block is simply not signed: treat it as unpublished.
          const unsigned = s.kind === 'clearsigned-checksums' && name === s.file && text !== undefined && !text.includes('-----BEGIN PGP SIGNED MESSAGE-----');
          if (text !== undefined && !unsigned) files.set(name, new TextEncoder().encode(text));
        }
      }
    }
    const results = await verifyRelease(release.signatures, files, { keyrings, mode: 'default' });
    // A verified signature over a checksum file vouches for the artifact only if it lists its digest.
    for (const r of results) {
      if (r.result.kind !== 'verified' || r.signs !== release.checksum.file) continue;
      const body = new TextDecoder().decode(files.get(r.signs)!);
      const listed = parseSha256Sums(clearsignedBody(body)).get(artifact.name);
      if (listed !== artifact.sha256) {
        r.result = { kind: 'unverified', reason: `the signed ${r.signs} lists ${listed ?? 'no digest'} for ${artifact.name}, not ${artifact.sha256}` };
      }
    }
    out.push({ artifact: artifact.name, results: assertSignatures(results, ctx.options.verify) });
  }
  return out;
}

async function fetchOptional(ctx: Context, url: string): Promise<string | undefined> {
  try {
    return await ctx.fetchText(url);
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
