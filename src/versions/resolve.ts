import semver from 'semver';
import { COMPONENTS, DEFAULT_VERSIONS, type ComponentName } from '../components/index.ts';
import { VersionNotFoundError } from '../errors.ts';
import type { Release } from './release.ts';
import { versionOfTag } from './release.ts';
import type { ReleaseIndex } from './index.ts';
import { describeSpec, type VersionSpec } from './spec.ts';
import { printable } from '../util/printable.ts';

/** `kubernetes`: the --kubernetes table's version (an exact one) for a component left at its default. */
export type ResolvedFrom = 'default' | 'bundle' | 'exact' | 'range' | 'latest' | 'kubernetes';

export interface ResolvedVersion {
  component: ComponentName;
  version: string;
  spec: string;
  from: ResolvedFrom;
  /** The API's view of the release, when resolution listed releases (carries asset digests). */
  release?: Release | undefined;
}

/**
 * Turn a spec into a version. Defaults and exact versions need no network; `latest` reads the
 * `/releases/latest` redirect; ranges list releases through the API. `defaults` replaces the built-in
 * defaults (an offline bundle's versions); a component it leaves out is skipped by default.
 */
export async function resolveVersion(
  component: ComponentName,
  spec: VersionSpec,
  index: () => ReleaseIndex,
  defaults: Partial<Record<ComponentName, string>> = DEFAULT_VERSIONS,
): Promise<ResolvedVersion | undefined> {
  const label = describeSpec(spec);
  switch (spec.kind) {
    case 'none':
      return undefined;
    case 'default': {
      const version = defaults[component];
      // `none` as a default: an opt-in component, installed only when its flag asks for it.
      return version === undefined || version === 'none' ? undefined : { component, version, spec: label, from: defaults === DEFAULT_VERSIONS ? 'default' : 'bundle' };
    }
    case 'exact':
      return { component, version: spec.version, spec: label, from: 'exact' };
    case 'latest': {
      const tag = await index().latestTag(COMPONENTS[component].repo);
      const version = versionOfTag(tag);
      if (!version) throw new VersionNotFoundError(component, `latest (it points to ${JSON.stringify(printable(tag))}, not a vX.Y.Z release)`, []);
      return { component, version, spec: label, from: 'latest' };
    }
    case 'range': {
      const releases = await index().listReleases(COMPONENTS[component].repo);
      const best = releases.find((r) => semver.satisfies(r.version, spec.range));
      if (!best) throw new VersionNotFoundError(component, spec.range, nearestVersions(releases.map((r) => r.version), spec.range));
      return { component, version: best.version, spec: label, from: 'range', release: best };
    }
  }
}

/**
 * The versions to name when a spec matches nothing: for an exact version, its neighbours on each side;
 * for a range, the newest few. Input order does not matter.
 */
export function nearestVersions(versions: string[], wanted: string, count = 4): string[] {
  const sorted = [...new Set(versions)].filter((v) => semver.valid(v)).sort(semver.compare);
  const exact = semver.valid(wanted.replace(/^v/, ''));
  // For a range that matched nothing, the newest releases are the useful suggestion.
  if (!exact) return sorted.slice(-count).reverse();
  const idx = sorted.findIndex((v) => semver.gt(v, exact));
  const at = idx < 0 ? sorted.length : idx;
  const start = Math.max(0, Math.min(at - Math.floor(count / 2), sorted.length - count));
  return sorted.slice(start, start + count).reverse();
}
