import type { Arch } from '../arch.ts';
import { COMPONENTS, type ComponentName } from '../components/index.ts';
import builtIn from '../data/checksums.json' with { type: 'json' };
import { parsePinFile } from './sums.ts';

/** Where an expected digest came from: shown in the plan and in every mismatch error. */
export type DigestSource =
  | { kind: 'pinned'; from: 'built-in' }
  | { kind: 'pinned'; from: 'checksums-file'; file: string }
  | {
      kind: 'published';
      url: string;
      alsoApiDigest?: boolean;
      /**
       * The host (a --mirror, not github.com) that served this digest serves the bytes too, and
       * neither a pin nor GitHub's own API vouches for it: a lying mirror passes this check.
       */
      sameHost?: string;
    };

export function describeDigestSource(source: DigestSource): string {
  switch (source.kind) {
    case 'pinned':
      return source.from === 'built-in' ? 'pinned (built in)' : `pinned (--checksums ${source.file})`;
    case 'published':
      return `published with the release (${source.url})${source.sameHost ? ', by the same host that serves the download' : ''}`;
  }
}

/** The warning for a digest only the download's own host vouches for. */
export function sameHostWarning(artifact: string, host: string): string {
  return `${artifact}: its sha256 and its bytes both come from ${host}, and nothing independent vouches for the digest (no pin, not github.com, not GitHub's API): a mirror that lies passes this check. Pin it with --checksums FILE, or use --verify strict to refuse such downloads.`;
}


type Table = Record<string, Record<string, Partial<Record<Arch, string>>>>;
const BUILT_IN = builtIn as unknown as Table;

/** Versions that carry a built-in pin for this component (for every arch in `arches`). */
export function pinnedVersions(component: ComponentName, arches: readonly Arch[]): string[] {
  const rows = BUILT_IN[COMPONENTS[component].pinKey] ?? {};
  return Object.keys(rows).filter((v) => arches.every((a) => typeof rows[v]?.[a] === 'string'));
}

export interface PinLookup {
  component: ComponentName;
  /** The pin table's key when it is not the component's (containerd-static). */
  pinKey?: string | undefined;
  version: string;
  arch: Arch;
  asset: string;
  /** The download URL path, for `--checksums` lines that name `TAG/ASSET` (runc's asset names carry no version). */
  urlPath: string;
}

export interface Pin {
  sha256: string;
  source: DigestSource;
}

/**
 * Pinned digests: the built-in table plus an optional `--checksums` file (sha256sum format, read
 * strictly, which wins). A `--checksums` line names an asset file; since `runc.amd64` is the same
 * name for every runc version, a line may also name `TAG/ASSET` (or any longer suffix of the
 * download path) to be exact.
 */
export class PinSet {
  private readonly extra: Map<string, string>;

  constructor(
    extraText?: string,
    private readonly extraFile?: string,
  ) {
    this.extra = extraText === undefined ? new Map() : parsePinFile(extraText);
  }

  lookup(q: PinLookup): Pin | undefined {
    if (this.extraFile !== undefined) {
      let best: { key: string; hex: string } | undefined;
      for (const [key, hex] of this.extra) {
        const matches = key === q.asset || q.urlPath.endsWith(`/${key}`);
        if (matches && (!best || key.length > best.key.length)) best = { key, hex };
      }
      if (best) return { sha256: best.hex, source: { kind: 'pinned', from: 'checksums-file', file: this.extraFile } };
    }
    const hex = BUILT_IN[q.pinKey ?? COMPONENTS[q.component].pinKey]?.[q.version]?.[q.arch];
    return typeof hex === 'string' ? { sha256: hex, source: { kind: 'pinned', from: 'built-in' } } : undefined;
  }

  get extraCount(): number {
    return this.extra.size;
  }
}
