/**
 * The next install record, from the previous one and what this run wrote. Written last: it says
 * what is installed only once it is.
 */
import { WANTS_LINK, NODE_PATHS } from '../node/paths.ts';
import type { ComponentName, Plan, PlannedFile } from '../plan/types.ts';
import type { Manifest } from '../state/manifest.ts';
import { VERSION } from '../version.ts';

/** A file this run wrote or found as planned, with the stat facts that let the next run skip hashing it. */
export interface Written {
  nodePath: string;
  component: PlannedFile['component'];
  mode: number;
  sha256: string;
  stat: { size: number; mtimeMs: number; ctimeMs: number; ino: number };
}

export interface RecordInputs {
  previous: Manifest | undefined;
  plan: Plan;
  /** The components whose files this run replaced: their old entries go. */
  installed: ComponentName[];
  written: Written[];
  removed: string[];
  backups: Manifest['backups'];
  /** The unit was enabled through its wants link. */
  linked: boolean;
  /** Folders this run created that exist now (uninstall removes them again). */
  createdDirs: string[];
  changed: boolean;
  now: () => Date;
  /** The containerd unit as this run found it, when nothing was installed before (a live host). */
  foundUnit?: Manifest['foundUnit'];
}

export function nextRecord(r: RecordInputs): Manifest {
  const prev = r.previous;
  const files: Manifest['files'] = { ...(prev?.files ?? {}) };
  const installed = new Set<string>(r.installed);
  for (const [p, f] of Object.entries(files)) if (installed.has(f.component)) delete files[p];
  for (const p of r.removed) delete files[p];
  for (const w of r.written) files[w.nodePath] = { sha256: w.sha256, mode: w.mode, component: w.component, ...w.stat };
  const components: Manifest['components'] = { ...(prev?.components ?? {}) };
  for (const a of r.plan.artifacts) components[a.component] = { version: a.version, asset: a.name, sha256: a.sha256 };
  return {
    schemaVersion: 1,
    nodePrepVersion: VERSION,
    installedAt: prev && !r.changed ? prev.installedAt : r.now().toISOString(),
    arch: r.plan.arch,
    prefix: r.plan.prefix,
    components,
    files,
    backups: { ...(prev?.backups ?? {}), ...r.backups },
    ...(r.linked || prev?.links ? { links: { ...(prev?.links ?? {}), ...(r.linked ? { [WANTS_LINK]: NODE_PATHS.containerdUnit } : {}) } } : {}),
    dirs: [...new Set([...(prev?.dirs ?? []), ...r.createdDirs])].sort(),
    intent: { cgroupDriver: r.plan.containerd.cgroupDriver, sandboxImage: r.plan.containerd.sandboxImage, configVersion: r.plan.containerd.configVersion },
    // The first install's finding stays for good: a later run finds node-prep's own unit.
    ...(prev?.foundUnit ?? r.foundUnit ? { foundUnit: prev?.foundUnit ?? r.foundUnit } : {}),
  };
}
