import semver from 'semver';
import { UsageError } from '../errors.ts';

/** What the user asked for, per component. */
export type VersionSpec =
  | { kind: 'default' }
  | { kind: 'exact'; version: string }
  | { kind: 'range'; range: string }
  | { kind: 'latest' }
  | { kind: 'none' };

const EXACT = /^v?(\d+\.\d+\.\d+)$/;

/** Parse `2.2.0`, `v2.2.0`, `^2.2`, `~2.1`, `2.2.x`, `latest`, `none`; anything else is a usage error. */
export function parseVersionSpec(component: string, raw: string | undefined): VersionSpec {
  if (raw === undefined) return { kind: 'default' };
  const text = raw.trim();
  if (text === 'latest') return { kind: 'latest' };
  if (text === 'none') return { kind: 'none' };
  const exact = EXACT.exec(text);
  // semver refuses numbers past Number.MAX_SAFE_INTEGER: such a version is not one at all.
  if (exact && semver.valid(exact[1]!) !== null) return { kind: 'exact', version: exact[1]! };
  // A pre-release or build suffix on an exact version is refused on purpose: node-prep installs
  // releases only, and silently matching `2.4.0-beta.0` through a range would surprise an operator.
  const range = text.length > 0 && /^[v\d^~<>=*x.|\s-]+$/i.test(text) ? semver.validRange(text) : null;
  if (range !== null) return { kind: 'range', range: text };
  throw new UsageError(
    `--${component} ${JSON.stringify(raw)} is not a version spec.`,
    'Use an exact version (2.2.0 or v2.2.0), a semver range (^2.2, ~2.1, 2.2.x), latest, or none.',
  );
}

export function describeSpec(spec: VersionSpec): string {
  switch (spec.kind) {
    case 'default':
      return 'default';
    case 'exact':
      return spec.version;
    case 'range':
      return spec.range;
    case 'latest':
      return 'latest';
    case 'none':
      return 'none';
  }
}
