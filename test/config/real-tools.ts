// Locating the real tools the config tests run: Debian's containerd builds and systemd-analyze.
import { access, constants, readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import semver from 'semver';

/** NODE_PREP_E2E=1 turns "skip: no real tool here" into a failure (DESIGN.md, Testing). */
export const E2E = process.env.NODE_PREP_E2E === '1';

export interface Containerd {
  path: string;
  /** e.g. 1.6.20 (from `containerd --version`, Debian suffixes dropped). */
  version: string;
}

const CACHE = path.resolve(import.meta.dirname, '../../.cache/debian');

/**
 * A containerd of the given major version: $NODE_PREP_TEST_CONTAINERD_<major>, else the first
 * `.../usr/bin/containerd` under .cache/debian (scripts/fixtures/debian-release.mjs extracts
 * bookworm's 1.6 and sid's 2.x there). A path given in the environment that does not work fails.
 */
export async function findContainerd(major: 1 | 2): Promise<Containerd | undefined> {
  const variable = `NODE_PREP_TEST_CONTAINERD_${major}`;
  const fromEnv = process.env[variable];
  if (fromEnv) {
    const found = await probe(fromEnv);
    if (found === undefined || semver.major(found.version) !== major) {
      throw new Error(`${variable}=${fromEnv} is not a working containerd ${major}.x (${found?.version ?? 'does not run'})`);
    }
    return found;
  }
  for (const candidate of await cachedContainerds()) {
    const found = await probe(candidate);
    if (found !== undefined && semver.major(found.version) === major) return found;
  }
  return undefined;
}

export function missing(what: string, how: string): Error {
  return new Error(`NODE_PREP_E2E=1 but ${what} was not found: ${how}`);
}

async function cachedContainerds(): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(CACHE, { recursive: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.endsWith(`${path.sep}usr${path.sep}bin${path.sep}containerd`)).sort().map((e) => path.join(CACHE, e));
}

async function probe(binary: string): Promise<Containerd | undefined> {
  const result = await execa(binary, ['--version'], { reject: false, timeout: 10_000 });
  // "containerd github.com/containerd/containerd/v2 2.1.9+unknown" / "... 1.6.20~ds1 1.6.20~ds1-1+deb12u3"
  const version = result.exitCode === 0 ? semver.coerce(result.stdout.split(/\s+/)[2])?.version : undefined;
  return version === undefined ? undefined : { path: binary, version };
}

/** systemd-analyze, and whether it knows --recursive-errors (systemd 250+). */
export async function findSystemdAnalyze(): Promise<{ path: string; recursiveErrors: boolean } | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, 'systemd-analyze');
    try {
      await access(candidate, constants.X_OK);
    } catch {
      continue;
    }
    const help = await execa(candidate, ['--help'], { reject: false });
    return { path: candidate, recursiveErrors: help.stdout.includes('--recursive-errors') };
  }
  return undefined;
}
