import path from 'node:path';
import { describeDigestSource, sameHostWarning } from '../checksums/pins.ts';
import { COMPONENTS } from '../components/index.ts';
import { explainRefusal } from '../config/dropins.ts';
import type { FileChange } from './changes.ts';
import type { Plan } from './types.ts';

/**
 * The plan as it leaves node-prep (--json): a file holding a secret carries its redacted text and
 * no digest (a digest of a short password beside known text can be searched for). `showPrivate`
 * keeps the real content, as the diff does.
 */
export function publicPlan(plan: Plan, showPrivate = false): Plan {
  return {
    ...plan,
    files: plan.files.map((f) => {
      if (!f.private) return f;
      const { shown, sha256, ...rest } = f;
      return showPrivate ? { ...rest, sha256 } : { ...rest, content: shown };
    }),
  };
}

/** The plan for people: versions, artifacts with digests and their source, files to write. */
export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  const target = plan.root === '/' ? 'this machine' : `image root ${plan.root}`;
  lines.push(`Plan for ${target} (linux/${plan.arch}, prefix ${plan.prefix})`, `  arch: ${plan.archReason}`, '');
  lines.push('Components:');
  for (const c of plan.components) {
    const how = { default: 'built-in default', bundle: 'from the bundle', exact: 'as asked', range: `newest of ${c.spec}`, latest: 'latest release', kubernetes: `for Kubernetes ${plan.kubernetes?.minor}` }[c.resolvedFrom];
    lines.push(`  ${COMPONENTS[c.name].title.padEnd(12)} ${c.version.padEnd(8)} (${how})`);
  }
  for (const s of plan.skipped) lines.push(`  ${COMPONENTS[s].title.padEnd(12)} -        (none: skipped)`);
  lines.push('', 'Artifacts:');
  for (const a of plan.artifacts) {
    lines.push(`  ${a.name}`, `    url     ${a.url}`, `    sha256  ${a.sha256}`, `    from    ${describeDigestSource(a.digestSource)}`);
    if (a.digestSource.kind === 'published' && a.digestSource.sameHost) lines.push(`    warning: ${sameHostWarning(a.name, a.digestSource.sameHost)}`);
  }
  const k = plan.kubernetes;
  if (k) {
    lines.push('', `Kubernetes ${k.minor}:`, `  containerd recommended: ${k.containerdSupport.map((v) => `${v}+`).join(', ')}; pause image ${k.sandboxImage}`);
    for (const o of k.outside) lines.push(`  warning: ${o.message}`);
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
  const s = plan.service;
  const restart = s.restart === undefined ? '' : s.restart.needed ? `; a running containerd would be restarted (${s.restart.why})` : `; no restart (${s.restart.why})`;
  lines.push('', 'Service:', `  ${s.unit}: ${s.manage === 'systemd' ? `systemctl enable${s.start ? ', start' : ''}` : 'enabled through its wants link, not started'} (${s.reason})${restart}`);
  if (s.blocked) lines.push(`  BLOCKED: ${s.blocked}`);
  if (s.link) lines.push(`  ${s.link.path} -> ${s.link.target}${s.link.change === 'create' ? ' [new]' : ' [unchanged]'}`);
  lines.push('', 'Smoke test:', plan.smoke.mode === 'skipped' ? `  skipped: ${plan.smoke.reason}` : `  ${plan.smoke.mode}: ${plan.smoke.reason}`);
  if (plan.smoke.checks.length > 0) lines.push(`  checks: ${plan.smoke.checks.join(', ')}`);
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
    lines.push(`  ${f.path}  (${f.source.what})${changeMark(f.change)}`);
  }
  const blocked = plan.files.filter((f) => f.change?.kind === 'blocked');
  for (const f of blocked) if (f.change?.kind === 'blocked') lines.push(`  BLOCKED: ${f.path}: ${f.change.reason}`);
  for (const r of plan.removals ?? []) lines.push(`  ${r.path}  [removed: ${r.reason}]`);
  const diffs = plan.files.filter((f) => f.change?.kind === 'update' && f.change.diff);
  for (const f of diffs) if (f.change?.kind === 'update') lines.push('', f.change.diff!.trimEnd());
  for (const f of plan.files) if (f.change?.kind === 'update' && f.change.contentHidden) lines.push('', `  ${f.path}: no diff shown: ${f.change.contentHidden}`);
  const compared = plan.files.every((f) => f.change !== undefined);
  const changing = plan.files.filter((f) => f.change?.kind === 'create' || f.change?.kind === 'update').length + (plan.removals?.length ?? 0) + (s.link?.change === 'create' ? 1 : 0);
  if (compared && !(c.refusedDropIns.length > 0 || blocked.length > 0 || s.blocked)) {
    lines.push('', changing === 0 ? 'Install would change nothing: everything is as planned.' : `Install would change ${changing} file${changing === 1 ? '' : 's'}.`);
  }
  lines.push('', c.refusedDropIns.length > 0 || blocked.length > 0 || s.blocked ? 'Nothing was changed; install would stop before downloading (BLOCKED above).' : 'Nothing was changed.');
  return `${lines.join('\n')}\n`;
}

/** What install would do to a file, as a short mark after it. */
function changeMark(change: FileChange | undefined): string {
  if (change === undefined) return '';
  switch (change.kind) {
    case 'update':
      return change.foreign ? ' [replaces a file node-prep did not write: backed up first]' : ` [changes${change.reason ? `: ${change.reason}` : ''}]`;
    case 'same':
      return ' [unchanged]';
    case 'create':
      return ' [new]';
    case 'blocked':
      return ' [BLOCKED]';
    case 'unknown':
      return '';
  }
}
