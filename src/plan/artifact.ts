/**
 * From a component release to a planned artifact: download URL, expected sha256 and where that digest
 * comes from. A pin needs no network; otherwise the digest the release publishes is fetched and, when
 * the releases API listed one, cross-checked with the asset's `digest`.
 */
import path from 'node:path';
import type { Arch } from '../arch.ts';
import { describeDigestSource, type DigestSource, type PinSet } from '../checksums/pins.ts';
import { clearsignedBody, parseBareHex, parseSha256Sums } from '../checksums/sums.ts';
import { COMPONENTS } from '../components/index.ts';
import type { ComponentName, ComponentRelease, ReleaseOptions } from '../components/types.ts';
import { HttpError, NoAssetError, NodePrepError, VersionNotFoundError } from '../errors.ts';
import type { GitHub } from '../net/github.ts';
import type { Release } from '../versions/release.ts';
import { redactUrl } from '../net/redact.ts';
import { printable } from '../util/printable.ts';
import type { BundleLock } from '../bundle/lock.ts';
import type { ReleaseIndex } from '../versions/index.ts';
import { nearestVersions, type ResolvedVersion } from '../versions/resolve.ts';
import type { FetchTarget } from '../fetch/download.ts';
import { destinationDir } from './paths.ts';
import type { PlannedArtifact, PlannedSignature } from './types.ts';

export interface ArtifactDeps {
  /** Builds download URLs (from the mirror, or the bundle folder). */
  github: () => GitHub;
  /** Where versions come from: GitHub, or the bundle's lock. */
  index: () => ReleaseIndex;
  /** Replaces the built-in default versions (a bundle's). */
  defaults?: Partial<Record<ComponentName, string>> | undefined;
  pins: PinSet;
  fetchText: (url: string) => Promise<string>;
  /** An offline bundle: it must hold the artifact, with the digest the plan expects. */
  bundle?: BundleLock | undefined;
}

export async function planArtifact(resolved: ResolvedVersion, arch: Arch, prefix: string, deps: ArtifactDeps, options: ReleaseOptions = {}): Promise<PlannedArtifact> {
  const release = COMPONENTS[resolved.component].release(resolved.version, arch, options);
  const gh = deps.github();
  const url = gh.downloadUrl(release.repo, release.tag, release.asset.name);
  const checksumUrl = gh.downloadUrl(release.repo, release.tag, release.checksum.file);
  const base = {
    component: resolved.component,
    version: release.version,
    arch,
    name: release.asset.name,
    repo: release.repo,
    tag: release.tag,
    kind: release.asset.kind,
    ...(options.static ? { static: true } : {}),
    url,
    checksumFile: {
      name: release.checksum.file,
      url: checksumUrl,
      format: release.checksum.format,
      ...(release.checksum.format === 'sha256sum' && release.checksum.clearsigned ? { clearsigned: true } : {}),
    },
    signatures: release.signatures.map((s): PlannedSignature => {
      const url = gh.downloadUrl(release.repo, release.tag, s.file);
      return s.kind === 'detached' ? { kind: s.kind, name: s.file, url, signs: s.signs, keyring: s.keyring } : { kind: s.kind, name: s.file, url, keyring: s.keyring };
    }),
    install: release.install.map((e) => ({ member: e.member, path: path.posix.join(destinationDir(e.dest, prefix), e.name), mode: e.mode, required: e.required })),
    limits: release.limits,
  };
  const pin = deps.pins.lookup({
    component: resolved.component,
    pinKey: release.pinKey,
    version: release.version,
    arch,
    asset: release.asset.name,
    urlPath: new URL(url).pathname,
  });
  const digest = pin ? { sha256: pin.sha256, digestSource: pin.source } : await publishedDigest(release, checksumUrl, resolved, deps);
  if (deps.bundle) checkBundle(deps.bundle, release, digest);
  return { ...base, ...digest };
}

async function publishedDigest(
  release: ComponentRelease,
  checksumUrl: string,
  resolved: ResolvedVersion,
  deps: ArtifactDeps,
): Promise<{ sha256: string; digestSource: DigestSource }> {
  let text: string;
  try {
    text = await deps.fetchText(checksumUrl);
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) throw await explainMissing(release, checksumUrl, resolved, deps);
    throw err;
  }
  let sha256: string | undefined;
  try {
    sha256 = digestFromChecksumFile(release, text);
  } catch (err) {
    // Two different digests for one name: the file cannot say which the release published.
    throw new NodePrepError('PUBLISHED_CHECKSUM', `${release.checksum.file} of ${release.component} ${release.version} (${redactUrl(checksumUrl)}) ${printable((err as Error).message)}.`, {
      hint: 'The release or the mirror is inconsistent; nothing was installed. Pin the digest with --checksums FILE.',
      fields: { url: redactUrl(checksumUrl), asset: release.asset.name },
    });
  }
  if (!sha256) {
    throw new NodePrepError('PUBLISHED_CHECKSUM', `${release.checksum.file} of ${release.component} ${release.version} lists no sha256 for ${release.asset.name}.`, {
      hint: 'Pin the digest with --checksums FILE, or choose another version.',
      fields: { url: redactUrl(checksumUrl), asset: release.asset.name },
    });
  }
  const apiDigest = resolved.release?.assets.find((a) => a.name === release.asset.name)?.sha256;
  if (apiDigest && apiDigest !== sha256) {
    throw new NodePrepError(
      'CHECKSUM_DISAGREE',
      `${release.asset.name}: the release's ${release.checksum.file} says ${sha256} but the GitHub API digest is ${apiDigest}.`,
      { hint: 'The release or the mirror is inconsistent; nothing was installed. Pin a digest with --checksums.', fields: { url: redactUrl(checksumUrl) } },
    );
  }
  const sameHost = apiDigest && officialApi(deps.github().apiBase) ? undefined : mirrorHost(checksumUrl);
  return {
    sha256,
    digestSource: { kind: 'published', url: redactUrl(checksumUrl), ...(apiDigest ? { alsoApiDigest: true } : {}), ...(sameHost ? { sameHost } : {}) },
  };
}

/** GitHub's own API: an asset digest it lists comes from somewhere other than a mirror. */
const OFFICIAL_API = 'https://api.github.com';
const OFFICIAL_DOWNLOAD_HOST = 'github.com';

function officialApi(apiBase: string): boolean {
  return new URL(apiBase).origin === OFFICIAL_API;
}

/** The host of an http(s) URL that is not github.com (a --mirror); undefined for github.com and bundles. */
function mirrorHost(url: string): string | undefined {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  return u.hostname === OFFICIAL_DOWNLOAD_HOST && u.protocol === 'https:' ? undefined : u.host;
}

/**
 * `--verify strict` refuses a digest that only the download's own host vouches for, before anything
 * is downloaded.
 */
export function refuseSameHostDigests(artifacts: readonly PlannedArtifact[]): void {
  const weak = artifacts.filter((a) => a.digestSource.kind === 'published' && a.digestSource.sameHost);
  if (weak.length === 0) return;
  const host = (weak[0]!.digestSource as { sameHost: string }).sameHost;
  const names = weak.map((a) => `${a.name} (${a.component} ${a.version})`);
  throw new NodePrepError(
    'UNVOUCHED_DIGEST',
    `--verify strict: the sha256 of ${names.join(', ')} comes from ${host}, the same host that serves the download, and nothing independent vouches for it.`,
    {
      hint: 'Pin the digests with --checksums FILE from a source you trust, choose versions node-prep pins, or download from github.com. Nothing was downloaded.',
      fields: { artifacts: weak.map((a) => a.name), host },
    },
  );
}

/** Read the asset's digest out of the checksum file, in the format this project publishes. */
export function digestFromChecksumFile(release: ComponentRelease, text: string): string | undefined {
  switch (release.checksum.format) {
    case 'bare-hex':
      return parseBareHex(text);
    case 'sha256sum': {
      const body = release.checksum.clearsigned ? clearsignedBody(text) : text;
      return parseSha256Sums(body).get(release.asset.name);
    }
  }
}

/** A 404 for the checksum file: either the version does not exist, or it has no asset for this arch. */
async function explainMissing(release: ComponentRelease, url: string, resolved: ResolvedVersion, deps: ArtifactDeps): Promise<Error> {
  let releases: Release[];
  try {
    releases = resolved.release ? [resolved.release] : await deps.index().listReleases(release.repo);
  } catch {
    return new VersionNotFoundError(release.component, release.version, []);
  }
  if (releases.some((r) => r.version === release.version)) {
    return new NoAssetError(release.component, release.version, release.arch, redactUrl(url));
  }
  return new VersionNotFoundError(release.component, release.version, nearestVersions(releases.map((r) => r.version), release.version));
}

/** The bundle must hold this asset, and its lock must record the digest the plan expects. */
function checkBundle(lock: BundleLock, release: ComponentRelease, digest: { sha256: string; digestSource: DigestSource }): void {
  const entry = lock.artifacts.find((a) => a.name === release.asset.name && a.version === release.version && a.arch === release.arch);
  if (!entry) {
    const holds = lock.artifacts.filter((a) => a.component === release.component).map((a) => `${a.name}`);
    throw new NodePrepError('BUNDLE', `The bundle holds no ${release.asset.name} (${release.component} ${release.version} for linux/${release.arch}).`, {
      hint: holds.length > 0
        ? `It holds ${holds.join(', ')}: choose that version and --arch, or make the bundle with \`node-prep download --arch ${release.arch}\`.`
        : `Make the bundle with ${release.component}, or pass --${release.component} none.`,
      fields: { asset: release.asset.name },
    });
  }
  if (entry.sha256 !== digest.sha256) {
    throw new NodePrepError('BUNDLE', `The bundle's lock records sha256 ${entry.sha256} for ${release.asset.name} (${describeDigestSource(entry.digestSource)}), but ${describeDigestSource(digest.digestSource)} says ${digest.sha256}.`, {
      hint: entry.digestSource.kind === 'pinned' && entry.digestSource.from === 'checksums-file'
        ? `The bundle was made with --checksums ${entry.digestSource.file}: pass the same pins here.`
        : 'The bundle was changed after it was made, or made with other pins. Make it again with `node-prep download`.',
      fields: { asset: release.asset.name },
    });
  }
}

/** What fetch needs to download and verify a planned artifact. */
export function toTarget(a: PlannedArtifact): FetchTarget {
  return {
    component: a.component,
    version: a.version,
    arch: a.arch,
    name: a.name,
    url: a.url,
    sha256: a.sha256,
    expectedFrom: describeDigestSource(a.digestSource),
  };
}
