/**
 * Per component, from the plan's diff against the disk (the same one `plan` prints): is what is
 * installed exactly what the plan asks for, file by file? Pure.
 */
import type { FileChange } from '../plan/changes.ts';
import type { ComponentName, Plan, PlannedArtifact } from '../plan/types.ts';
import type { Manifest } from '../state/manifest.ts';

export interface ComponentDecision {
  name: ComponentName;
  version: string;
  artifact: PlannedArtifact;
  action: 'unchanged' | 'install';
  reason: string;
}

export function decideComponents(plan: Plan, manifest: Manifest | undefined, changes: Map<string, FileChange>): ComponentDecision[] {
  return plan.artifacts.map((a): ComponentDecision => {
    const base = { name: a.component, version: a.version, artifact: a };
    const rec = manifest?.components[a.component];
    if (!rec) return { ...base, action: 'install', reason: 'new' };
    if (rec.sha256 !== a.sha256) {
      return { ...base, action: 'install', reason: rec.version === a.version ? `replaces another build of ${rec.version}` : `replaces ${rec.version}` };
    }
    for (const f of plan.files.filter((x) => x.component === a.component && x.source.kind === 'artifact')) {
      const change = changes.get(f.path);
      if (change?.kind === 'same' || (change?.kind === 'unknown' && f.optional)) continue;
      return { ...base, action: 'install', reason: manifest.files[f.path] ? `${f.path} changed since it was installed` : `${f.path} is not recorded` };
    }
    return { ...base, action: 'unchanged', reason: `${a.version} is installed` };
  });
}
