/**
 * Drop-ins in /etc/containerd/conf.d (imported by the config node-prep writes) and the one rule about
 * them that takes a node down: containerd 2.3.0 to 2.3.4 refuse to start when a drop-in declares a
 * higher config `version` than the root file ("drop-in config version 4 higher than root config
 * version 3"), as nvidia-container-toolkit's version 4 drop-in did beside a version 2 or 3 root file.
 * https://github.com/containerd/containerd/pull/12891 (the check), #13939 (its revert, after 2.3.4).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { parse } from 'smol-toml';
import { NODE_PATHS, inRoot } from '../node/paths.ts';
import { resolveInRoot } from '../node/resolve.ts';
import { readRegularFile } from '../util/read-regular.ts';

export interface DropIn {
  /** Node path. */
  path: string;
  /** The declared `version`; undefined when the file has none or cannot be parsed. */
  version: number | undefined;
}

export interface RefusedDropIn extends DropIn {
  version: number;
  rootVersion: number;
  containerdVersion: string;
}

/** The containerd versions that refuse a drop-in newer than the root file. */
export const REFUSING_VERSIONS = '>=2.3.0 <=2.3.4';
/** A drop-in is a small file; anything larger is not read (containerd would read it, we only look). */
const MAX_DROP_IN_BYTES = 1024 * 1024;

/** The *.toml files of conf.d in the root, each with its declared version. */
export async function readDropIns(root: string, dir = NODE_PATHS.containerdDropIns): Promise<DropIn[]> {
  let names: string[];
  try {
    names = (await readdir(inRoot(root, dir))).filter((n) => n.endsWith('.toml')).sort();
  } catch {
    return [];
  }
  const out: DropIn[] = [];
  for (const name of names) {
    const nodePath = path.posix.join(dir, name);
    // A link is followed as the node would follow it: inside the root, never into this host.
    const at = await resolveInRoot(root, nodePath);
    const read = at.kind === 'found' ? await readRegularFile(inRoot(root, at.path), { maxBytes: MAX_DROP_IN_BYTES }) : undefined;
    out.push({ path: nodePath, version: read?.kind === 'text' ? declaredVersion(read.text) : undefined });
  }
  return out;
}

/** The `version` a config file declares; undefined when it has none or cannot be parsed. */
export function declaredVersion(text: string): number | undefined {
  try {
    const v = parse(text).version;
    return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The drop-ins that `containerdVersion` refuses to start with beside a root file of `rootVersion`. */
export function refusedDropIns(containerdVersion: string, rootVersion: number, dropIns: DropIn[]): RefusedDropIn[] {
  const v = semver.coerce(containerdVersion);
  if (v === null || !semver.satisfies(v, REFUSING_VERSIONS)) return [];
  return dropIns.flatMap((d) => (d.version !== undefined && d.version > rootVersion ? [{ ...d, version: d.version, rootVersion, containerdVersion }] : []));
}

/**
 * What to tell people: the files, who refuses them, and the ways out. `rootFile` says which root
 * file they are held to: the one node-prep writes, or the one on the node now (written by someone
 * else, or by an older node-prep), which `install` replaces with `writes` when that is known.
 */
export function explainRefusal(refused: RefusedDropIn[], rootFile: { kind: 'written' } | { kind: 'current'; writes?: number | undefined } = { kind: 'written' }): { message: string; hint: string } {
  const first = refused[0]!;
  const files = refused.map((r) => `${r.path} (version ${r.version})`).join(', ');
  const root = rootFile.kind === 'written' ? `the config.toml node-prep writes for it (version ${first.rootVersion})` : `${NODE_PATHS.containerdConfig} as it is now (version ${first.rootVersion})`;
  const highest = Math.max(...refused.map((r) => r.version));
  const install = rootFile.kind === 'current' && rootFile.writes !== undefined && rootFile.writes >= highest
    ? `Run \`node-prep install\`: it writes config.toml as version ${rootFile.writes}. Or set`
    : 'Set';
  return {
    message: `containerd ${first.containerdVersion} will not start: ${files} ${refused.length === 1 ? 'declares' : 'declare'} a higher config version than ${root}; containerd 2.3.0 to 2.3.4 refuse that ("drop-in config version ${first.version} higher than root config version ${first.rootVersion}").`,
    hint: `${install} \`version = ${first.rootVersion}\` in the drop-in (its keys mean the same there), or choose a containerd that accepts it (--containerd 2.2.x, or 2.3.5 and later).`,
  };
}
