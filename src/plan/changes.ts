/**
 * What install would change, file by file: one pure function, `diffFiles`, from the plan, the install
 * record and what is on disk (observed once, by `observeDisk`) to a change per planned file. `plan`
 * prints it; install computes the same before downloading anything and stops on a blocked change with
 * the reason plan shows. Binaries are compared with the record (their new content is known only after
 * extraction); config files with what the plan renders, with a diff for people.
 */
import path from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { readBounded } from '../install/atomic.ts';
import { RootFs } from '../install/root-fs.ts';
import { inRoot, NODE_PATHS } from '../node/paths.ts';
import { openNodeFile, type Manifest } from '../state/manifest.ts';
import { observe, type Observed } from '../state/observe.ts';
import type { Plan, PlannedFile } from './types.ts';

export type FileChange =
  | { kind: 'create' }
  | { kind: 'same' }
  /** `foreign`: node-prep did not write the file now there. `reason`: why it would be written, for people. */
  | { kind: 'update'; foreign: boolean; diff?: string | undefined; contentHidden?: string; reason?: string }
  /** Install refuses to go on: nothing is downloaded or written. */
  | { kind: 'blocked'; reason: string }
  /** An optional archive member: known only once the archive is opened. */
  | { kind: 'unknown' };

/** What is on disk at each planned path, and the text of config files that differ (for their diff). */
export interface DiskView {
  observed: Map<string, Observed>;
  text: Map<string, string>;
  /** Config files whose content is not shown, and why (readable by their owner only, or too large). */
  hidden?: Map<string, string>;
  /** Files holding a secret whose folder others may write to, and why install refuses them. */
  unsafeFolder?: Map<string, string>;
}

/** A config file larger than this gets no diff (it is still compared by digest). */
const MAX_DIFF_BYTES = 1024 * 1024;

const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;

/**
 * The only I/O of the comparison: each planned path observed once. The text of a config file that
 * differs is read for its diff through the root's descriptors, unless only its owner may read it
 * (registry credentials, a private key): a plan goes to CI logs, so such a file's change is shown
 * without its content unless `showPrivate`.
 */
export async function observeDisk(plan: Plan, manifest: Manifest | undefined, opts: { showPrivate?: boolean } = {}): Promise<DiskView> {
  const observed = new Map<string, Observed>();
  const text = new Map<string, string>();
  const hidden = new Map<string, string>();
  const unsafeFolder = new Map<string, string>();
  await Promise.all(
    plan.files.map(async (f) => {
      if (f.private) {
        const why = await folderOthersMayWrite(plan.root, f.path);
        if (why) unsafeFolder.set(f.path, why);
      }
      const seen = await observe(plan.root, f.path, manifest?.files[f.path]);
      observed.set(f.path, seen);
      if (f.source.kind !== 'config' || seen.kind !== 'file' || seen.sha256 === f.sha256) return;
      // The planned text holds a secret: its diff would show it, whatever the file now there is.
      if (f.private && opts.showPrivate !== true) return void hidden.set(f.path, 'the planned file holds credentials (--show-private shows the diff)');
      const read = await readForDiff(plan.root, f.path, opts.showPrivate === true);
      if ('text' in read) text.set(f.path, read.text);
      else hidden.set(f.path, read.hidden);
    }),
  );
  return { observed, text, hidden, unsafeFolder };
}

/**
 * A secret is written only into a folder others cannot write to: whoever may write there could put
 * a link or their own file in its place. A folder install creates is 0755.
 */
async function folderOthersMayWrite(root: string, nodePath: string): Promise<string | undefined> {
  const fs = await RootFs.openExisting(root);
  const folder = path.posix.dirname(nodePath);
  const dir = fs ? await fs.dirIfPresent(folder).catch(() => undefined) : undefined;
  try {
    const st = await dir?.handle.stat();
    if (st === undefined || (st.mode & 0o022) === 0) return undefined;
    return `it holds credentials and its folder ${inRoot(root, folder)} is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode 0${(st.mode & 0o7777).toString(8)}): \`chmod go-w\` it and run again`;
  } finally {
    await dir?.close();
    await fs?.close();
  }
}

async function readForDiff(root: string, nodePath: string, showPrivate: boolean): Promise<{ text: string } | { hidden: string }> {
  const fs = await RootFs.openExisting(root);
  const opened = fs ? await openNodeFile(fs, nodePath) : undefined;
  try {
    if (!opened) return { hidden: 'it changed while it was read' };
    if (!showPrivate && (opened.st.mode & 0o044) === 0) return { hidden: 'only its owner may read it (--show-private shows the diff)' };
    const text = await readBounded(opened.fh, MAX_DIFF_BYTES);
    return text === undefined ? { hidden: `it is larger than ${MAX_DIFF_BYTES} bytes` } : { text };
  } finally {
    await opened?.fh.close();
    await fs?.close();
  }
}

/** Pure: a change for each planned file, by node path. */
export function diffFiles(plan: Plan, manifest: Manifest | undefined, disk: DiskView): Map<string, FileChange> {
  return new Map(plan.files.map((f) => {
    const unsafe = disk.unsafeFolder?.get(f.path);
    if (unsafe !== undefined) return [f.path, { kind: 'blocked', reason: unsafe }];
    return [f.path, changeOf(plan, f, manifest, disk.observed.get(f.path) ?? { kind: 'absent' }, disk.text.get(f.path), disk.hidden?.get(f.path))];
  }));
}

/** A file node-prep wrote earlier that install removes, and why. */
export interface Removal {
  path: string;
  component: string;
  reason: string;
}

/** Rendered config lives under /etc; binaries under the prefix and /opt/cni/bin. */
export const isConfigPath = (nodePath: string) => nodePath.startsWith('/etc/');

/**
 * Pure: what install removes. A config file an earlier run wrote and this plan no longer renders (a
 * registry mirror dropped) would stay in effect; a binary the installed version had and the planned
 * one does not would stay behind. A component left out of this plan (`none`) keeps its files.
 * (A planned optional member the new archive lacks is removed too; the plan shows it as `?`.)
 */
export function diffRemovals(plan: Plan, manifest: Manifest | undefined): Removal[] {
  if (!manifest) return [];
  const planned = new Set(plan.files.map((f) => f.path));
  const inPlan = new Set<string>(['node', ...plan.artifacts.map((a) => a.component)]);
  const replaced = new Map(plan.artifacts.filter((a) => manifest.components[a.component]?.sha256 !== a.sha256).map((a) => [a.component as string, a]));
  const out: Removal[] = [];
  for (const [p, f] of Object.entries(manifest.files).sort(([a], [b]) => a.localeCompare(b))) {
    if (planned.has(p)) continue;
    if (isConfigPath(p)) {
      if (inPlan.has(f.component)) out.push({ path: p, component: f.component, reason: 'no longer rendered for this plan' });
    } else if (replaced.has(f.component)) {
      const a = replaced.get(f.component)!;
      out.push({ path: p, component: f.component, reason: `not part of ${a.component} ${a.version}` });
    }
  }
  return out;
}

/** observeDisk, then diffFiles. */
export async function planChanges(plan: Plan, manifest: Manifest | undefined, opts: { showPrivate?: boolean } = {}): Promise<Map<string, FileChange>> {
  return diffFiles(plan, manifest, await observeDisk(plan, manifest, opts));
}

/**
 * Why a running containerd must restart after these files change: its binaries, runc, its config,
 * its unit or the unit's proxy drop-in (all of component containerd or runc), not its registry hosts.
 * undefined: nothing it runs changed.
 */
export function restartReason(changed: Array<{ path: string; component: string }>): string | undefined {
  // containerd reads certs.d/*/hosts.toml on every pull: a registry change needs no restart.
  const paths = changed.filter((c) => (c.component === 'containerd' || c.component === 'runc') && !c.path.startsWith(`${NODE_PATHS.certsDir}/`)).map((c) => c.path);
  if (paths.length === 0) return undefined;
  return paths.length <= 3 ? `${paths.join(', ')} change${paths.length === 1 ? 's' : ''}` : `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more change`;
}

/** The blocked changes, as `path: reason` lines. */
export function blockedChanges(changes: Map<string, FileChange>): string[] {
  return [...changes].flatMap(([p, c]) => (c.kind === 'blocked' ? [`${p}: ${c.reason}`] : []));
}

function changeOf(plan: Plan, f: PlannedFile, manifest: Manifest | undefined, seen: Observed, nowText: string | undefined, hiddenWhy: string | undefined): FileChange {
  const recorded = manifest?.files[f.path];
  switch (seen.kind) {
    case 'absent':
      return f.optional ? { kind: 'unknown' } : { kind: 'create' };
    case 'other':
      return { kind: 'blocked', reason: `it is ${seen.what}: node-prep only replaces regular files; move it aside and run again` };
    case 'file':
      break;
  }
  const foreign = recorded === undefined;
  const modeChange = (want: number) => (seen.mode === want ? undefined : `mode ${octal(seen.mode)}, would be ${octal(want)}`);

  if (f.source.kind === 'config') {
    if (seen.sha256 === f.sha256) {
      const mode = modeChange(f.mode);
      return mode ? { kind: 'update', foreign, reason: mode } : { kind: 'same' };
    }
    const where = inRoot(plan.root, f.path);
    const diff = nowText === undefined ? undefined : createTwoFilesPatch(`${where} (now)`, `${where} (planned)`, nowText, f.content!, '', '', { context: 2 });
    const reason = foreign ? 'not written by node-prep' : recorded.sha256 === seen.sha256 ? 'the planned content differs' : 'changed since node-prep wrote it';
    return { kind: 'update', foreign, diff, ...(hiddenWhy ? { contentHidden: hiddenWhy } : {}), reason };
  }

  if (!recorded) return f.optional ? { kind: 'unknown' } : { kind: 'update', foreign: true, reason: 'not written by node-prep' };
  const src = f.source;
  const artifact = plan.artifacts.find((a) => a.name === src.asset);
  const installed = manifest?.components[f.component as keyof Manifest['components']];
  if (!artifact || installed?.sha256 !== artifact.sha256) {
    return { kind: 'update', foreign: false, reason: installed ? `replaces ${installed.version} (${installed.asset})` : 'not recorded as installed' };
  }
  if (seen.sha256 !== recorded.sha256) return { kind: 'update', foreign: false, reason: 'changed since node-prep installed it' };
  const mode = modeChange(recorded.mode);
  return mode ? { kind: 'update', foreign: false, reason: mode } : { kind: 'same' };
}
