/**
 * An offline bundle: the artifacts laid out under GitHub's download paths
 * (`<repo>/releases/download/<tag>/<asset>`, so a plain file server over the folder is also a valid
 * --mirror), their checksum and signature files, and a lock manifest naming versions, URLs and digests.
 */
import path from 'node:path';
import semver from 'semver';
import type { Arch } from '../arch.ts';
import type { DigestSource } from '../checksums/pins.ts';
import type { ComponentName } from '../components/types.ts';
import { NodePrepError } from '../errors.ts';
import { readRegularFile } from '../util/read-regular.ts';
import type { Release } from '../versions/release.ts';
import type { ReleaseSignatureResult } from '../verify/signatures.ts';
import type { ReleaseIndex } from '../versions/index.ts';

export const LOCK_FILE = 'node-prep-bundle.json';

export interface BundleLock {
  kind: 'node-prep-bundle';
  schemaVersion: 1;
  createdAt: string;
  nodePrepVersion: string;
  arches: Arch[];
  components: Partial<Record<ComponentName, { version: string; repo: string; tag: string }>>;
  artifacts: Array<{
    component: ComponentName;
    version: string;
    arch: Arch;
    name: string;
    /** Path inside the bundle. */
    path: string;
    /** Where it was downloaded from. */
    url: string;
    sha256: string;
    digestSource: DigestSource;
    checksumFile: string;
    /** Paths in the bundle of the signature files the release publishes for this artifact. */
    signatures: string[];
    /**
     * Whether `sha256` was pinned (built in, or --checksums) when the bundle was made. When false the
     * digest came from the release's own checksum file, which the bundle carries: an install from the
     * bundle then checks the artifact against a digest the bundle itself supplies. Absent in bundles
     * made before node-prep recorded it.
     */
    pinned?: boolean;
    /** Each published signature checked at download time, as install reports them. Absent in older bundles. */
    signatureResults?: ReleaseSignatureResult[];
  }>;
  /** Asset names whose digest was not pinned (see `artifacts[].pinned`); absent in older bundles. */
  unpinned?: string[];
}

const MAX_LOCK_BYTES = 16 * 1024 * 1024;

export async function readBundleLock(dir: string): Promise<BundleLock> {
  const file = path.join(dir, LOCK_FILE);
  // A lock lists a few dozen artifacts; a larger file, a FIFO or a device is not one.
  const read = await readRegularFile(file, { maxBytes: MAX_LOCK_BYTES, followLinks: true });
  if (read.kind === 'refused') {
    throw new NodePrepError('BUNDLE', `${dir} is not a node-prep bundle: cannot read ${LOCK_FILE} (${read.why}).`, {
      hint: 'Make one with `node-prep download --bundle DIR` on a machine with network.',
      fields: { bundle: dir },
    });
  }
  const text = read.text;
  let lock: BundleLock;
  try {
    lock = JSON.parse(text) as BundleLock;
  } catch {
    throw new NodePrepError('BUNDLE', `${file} is not valid JSON.`, { fields: { bundle: dir } });
  }
  if (lock.kind !== 'node-prep-bundle' || lock.schemaVersion !== 1 || !Array.isArray(lock.artifacts)) {
    throw new NodePrepError('BUNDLE', `${file} is not a node-prep bundle lock (schema 1).`, { fields: { bundle: dir } });
  }
  for (const a of lock.artifacts) assertInside(dir, a.path);
  return lock;
}

/** A lock path must stay inside the bundle: a crafted lock must not point node-prep at /etc/shadow. */
function assertInside(dir: string, rel: string): void {
  const full = path.resolve(dir, rel);
  if (path.isAbsolute(rel) || !full.startsWith(path.resolve(dir) + path.sep)) {
    throw new NodePrepError('BUNDLE', `Bundle lock names a path outside the bundle: ${rel}.`, { fields: { bundle: dir } });
  }
}

/** Versions resolve against what the bundle holds: no network. */
export class BundleIndex implements ReleaseIndex {
  constructor(private readonly lock: BundleLock) {}

  async latestTag(repo: string): Promise<string> {
    const newest = (await this.listReleases(repo))[0];
    if (!newest) throw new NodePrepError('BUNDLE', `The bundle holds no release of ${repo}.`, { hint: 'Make the bundle with that component, or pass --COMPONENT none.' });
    return newest.tag;
  }

  async listReleases(repo: string): Promise<Release[]> {
    return Object.values(this.lock.components)
      .filter((c): c is NonNullable<typeof c> => c !== undefined && c.repo === repo)
      .map((c) => ({ tag: c.tag, version: c.version, assets: [] }))
      .sort((a, b) => semver.rcompare(a.version, b.version));
  }
}
