/**
 * Real binaries for end-to-end tests: Debian's containerd, runc, CNI plugins and busybox packed as
 * upstream release assets by scripts/fixtures/debian-release.mjs. Missing fixtures skip the tests,
 * unless NODE_PREP_E2E=1, where they fail.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './cli.ts';
import type { ReposMap } from './release-server.ts';

export const E2E_REQUIRED = process.env.NODE_PREP_E2E === '1';
export const IS_ROOT = process.getuid?.() === 0;

export interface DebianRelease {
  dir: string;
  repos: ReposMap;
  /** sha256sum lines for every asset: what `--checksums` takes. */
  checksums: string;
  busybox: string;
  versions: { containerd: string[]; runc: string; cni: string; nerdctl: string; crictl: string };
}

interface Manifest {
  releases: Array<{ repo: string; tag: string; version: string; assets: Array<{ name: string; path: string }> }>;
}

/** The fixtures in dir: this machine's arch by default, another's from `debian-release.mjs --arch`. */
export function debianRelease(dir = process.env.NODE_PREP_DEBIAN_RELEASE ?? path.join(REPO, '.cache/debian-release')): DebianRelease | undefined {
  const manifestFile = path.join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) {
    if (E2E_REQUIRED) throw new Error(`NODE_PREP_E2E=1 but ${manifestFile} is missing: run node scripts/fixtures/debian-release.mjs`);
    return undefined;
  }
  const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  const repos: ReposMap = {};
  for (const r of m.releases) {
    (repos[r.repo] ??= []).push({ tag: r.tag, assets: Object.fromEntries(r.assets.map((a) => [a.name, { path: path.join(dir, a.path) }])) });
  }
  const v = (repo: string) => m.releases.filter((r) => r.repo === repo).map((r) => r.version);
  return {
    dir,
    repos,
    checksums: path.join(dir, 'checksums.txt'),
    busybox: path.join(dir, 'rootfs/busybox'),
    versions: {
      containerd: v('containerd/containerd'),
      runc: v('opencontainers/runc')[0]!,
      cni: v('containernetworking/plugins')[0]!,
      nerdctl: v('containerd/nerdctl')[0]!,
      crictl: v('kubernetes-sigs/cri-tools')[0]!,
    },
  };
}

/** The e2e suite runs when fixtures and root are there; NODE_PREP_E2E=1 turns a skip into a failure. */
export function e2eSkipReason(): string | undefined {
  if (!IS_ROOT) {
    if (E2E_REQUIRED) throw new Error('NODE_PREP_E2E=1 but the tests do not run as root');
    return 'needs root';
  }
  return debianRelease() ? undefined : 'no Debian fixtures (node scripts/fixtures/debian-release.mjs)';
}
