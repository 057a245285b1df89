import { describeDigestSource } from '../checksums/pins.ts';
import { COMPONENTS } from '../components/index.ts';
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
  lines.push('', 'Files install would write:');
  for (const f of plan.files) {
    const from = f.source.kind === 'artifact' ? `${f.source.asset}${f.source.member !== f.source.asset ? `:${f.source.member}` : ''}` : f.source.what;
    lines.push(`  ${f.path}${f.optional ? ' (if present)' : ''}  <- ${from}`);
  }
  lines.push('', 'Nothing was changed.');
  return `${lines.join('\n')}\n`;
}
