/**
 * What install would change, file by file, without changing anything. Each file is compared the way
 * install compares it (src/apply/install.ts, through observe()): what is on disk now, its sha256 and
 * its mode, against what the plan renders (config files) or what the install record says node-prep
 * wrote (binaries, whose new content is known only after extraction). A file node-prep did not write,
 * or one changed since, would be backed up first; config files show the difference as a diff.
 */
import { readFile } from 'node:fs/promises';
import { createTwoFilesPatch } from 'diff';
import { observe } from '../state/observe.ts';
import type { Manifest } from '../state/manifest.ts';
import { inRoot, nodePathOf } from '../node/paths.ts';
import type { Plan, PlannedFile } from './types.ts';

export type FileChange =
  | { kind: 'create' }
  | { kind: 'same' }
  /** `foreign`: node-prep did not write the file now there. `reason`: why it would be written, for people. */
  | { kind: 'update'; foreign: boolean; diff?: string | undefined; reason?: string }
  | { kind: 'unknown' };

const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;

/** The path on the node of a file the plan writes at `hostPath` (under the plan's root). */

export async function planChanges(plan: Plan, manifest: Manifest | undefined): Promise<Map<string, FileChange>> {
  const out = new Map<string, FileChange>();
  for (const f of plan.files) out.set(f.path, await changeOf(plan, f, manifest));
  return out;
}

async function changeOf(plan: Plan, f: PlannedFile, manifest: Manifest | undefined): Promise<FileChange> {
  const np = nodePathOf(plan.root, f.path);
  const recorded = manifest?.files[np];
  const seen = await observe(plan.root, np, recorded);
  if (seen.kind === 'absent') return f.optional ? { kind: 'unknown' } : { kind: 'create' };
  if (seen.kind === 'other') return { kind: 'update', foreign: true, reason: `it is ${seen.what}: install refuses to replace it` };
  const foreign = recorded === undefined;
  const modeChange = (want: number) => (seen.mode === want ? undefined : `mode ${octal(seen.mode)}, would be ${octal(want)}`);

  if (f.source.kind === 'config') {
    if (seen.sha256 === f.sha256) {
      const mode = modeChange(f.mode);
      return mode ? { kind: 'update', foreign, reason: mode } : { kind: 'same' };
    }
    const text = await readFile(inRoot(plan.root, np), 'utf8');
    const where = inRoot(plan.root, np);
    const diff = createTwoFilesPatch(`${where} (now)`, `${where} (planned)`, text, f.content!, '', '', { context: 2 });
    const reason = foreign ? 'not written by node-prep' : recorded.sha256 === seen.sha256 ? 'the planned content differs' : 'changed since node-prep wrote it';
    return { kind: 'update', foreign, diff, reason };
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
