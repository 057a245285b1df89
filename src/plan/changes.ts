/**
 * What install would change, file by file, without changing anything: rendered config files are
 * compared with what is on disk now (a file node-prep did not write, or one changed since, is shown
 * as a diff and would be backed up); binaries are compared through the install record.
 */
import { readFile } from 'node:fs/promises';
import { createTwoFilesPatch } from 'diff';
import type { Manifest } from '../state/manifest.ts';
import { inRoot } from './paths.ts';
import type { Plan } from './types.ts';

export type FileChange =
  | { kind: 'create' }
  | { kind: 'same' }
  | { kind: 'update'; foreign: boolean; diff?: string | undefined }
  | { kind: 'unknown' };

export async function planChanges(plan: Plan, manifest: Manifest | undefined): Promise<Map<string, FileChange>> {
  const out = new Map<string, FileChange>();
  const nodePath = (p: string) => (plan.root === '/' ? p : p.slice(plan.root.length));
  for (const f of plan.files) {
    const np = nodePath(f.path);
    const current = await readFile(f.path).catch(() => undefined);
    if (current === undefined) {
      out.set(f.path, f.optional ? { kind: 'unknown' } : { kind: 'create' });
      continue;
    }
    const recorded = manifest?.files[np];
    if (f.source.kind === 'config') {
      const text = current.toString('utf8');
      if (text === f.content) out.set(f.path, { kind: 'same' });
      else {
        const foreign = recorded === undefined;
        out.set(f.path, { kind: 'update', foreign, diff: createTwoFilesPatch(`${inRoot(plan.root, np)} (now)`, `${inRoot(plan.root, np)} (planned)`, text, f.content!, '', '', { context: 2 }) });
      }
      continue;
    }
    const src = f.source;
    const artifact = plan.artifacts.find((a) => a.name === src.asset);
    const installed = manifest?.components[f.component as keyof Manifest['components']];
    if (artifact && installed?.sha256 === artifact.sha256 && recorded) out.set(f.path, { kind: 'same' });
    else out.set(f.path, { kind: 'update', foreign: recorded === undefined });
  }
  return out;
}
