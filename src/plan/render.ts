import path from 'node:path';
import { describeDigestSource } from '../checksums/pins.ts';
import { COMPONENTS } from '../components/index.ts';
import { explainRefusal } from '../config/dropins.ts';
import type { Plan } from './types.ts';

/** The plan for people: versions, artifacts with digests and their source, files to write. */
export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  const target = plan.root === '/' ? 'this machine' : `image root ${plan.root}`;
  lines.push(`Plan for ${target} (linux/${plan.arch}, prefix ${plan.prefix})`, '');
  lines.push('Components:');
  for (const c of plan.components) {
    const how = { default: 'built-in default', bundle: 'from the bundle', exact: 'as asked', range: `newest of ${c.spec}`, latest: 'latest release' }[c.resolvedFrom];
    lines.push(`  ${COMPONENTS[c.name].title.padEnd(12)} ${c.version.padEnd(8)} (${how})`);
  }
  for (const s of plan.skipped) lines.push(`  ${COMPONENTS[s].title.padEnd(12)} -        (none: skipped)`);
  lines.push('', 'Artifacts:');
  for (const a of plan.artifacts) {
    lines.push(`  ${a.name}`, `    url     ${a.url}`, `    sha256  ${a.sha256}`, `    from    ${describeDigestSource(a.digestSource)}`);
  }
  const c = plan.containerd;
  lines.push(
    '',
    'containerd:',
    `  ${c.build} build (${c.buildReason})`,
    `  config version ${c.configVersion}, sandbox image ${c.sandboxImage}`,
    `  cgroup driver ${c.cgroupDriver} (${c.cgroupDriverReason})`,
  );
  if (c.refusedDropIns.length > 0) {
    const { message, hint } = explainRefusal(c.refusedDropIns);
    lines.push(`  BLOCKED: ${message}`, `  ${hint}`);
  }
  lines.push('', 'Files install would write (? = when the archive has it):');
  // Binaries grouped by folder and archive; config files one per line with what they are for.
  const groups = new Map<string, string[]>();
  for (const f of plan.files) {
    if (f.source.kind !== 'artifact') continue;
    const key = `${path.posix.dirname(f.path)}/\u0000${f.source.asset}`;
    groups.set(key, [...(groups.get(key) ?? []), `${path.posix.basename(f.path)}${f.optional ? '?' : ''}`]);
  }
  for (const [key, names] of groups) {
    const [dir, asset] = key.split('\u0000');
    lines.push(`  ${dir}  ${names.join(' ')}`, `      <- ${asset}`);
  }
  for (const f of plan.files) {
    if (f.source.kind !== 'config') continue;
    const change = f.change === undefined ? '' : f.change.kind === 'update' ? (f.change.foreign ? ' [replaces a file node-prep did not write: backed up first]' : ' [changes]') : f.change.kind === 'same' ? ' [unchanged]' : f.change.kind === 'create' ? ' [new]' : '';
    lines.push(`  ${f.path}  (${f.source.what})${change}`);
  }
  const diffs = plan.files.filter((f) => f.change?.kind === 'update' && f.change.diff);
  for (const f of diffs) if (f.change?.kind === 'update') lines.push('', f.change.diff!.trimEnd());
  lines.push('', c.refusedDropIns.length > 0 ? 'Nothing was changed; install would stop before downloading (BLOCKED above).' : 'Nothing was changed.');
  return `${lines.join('\n')}\n`;
}
