/** Findings as text for people: one line per finding, its detail and hint indented, then a summary. */
import type { Finding, Level } from './types.ts';

const MARK: Record<Level, string> = { ok: '✓', warn: '!', blocker: '✗' };

export function countLevels(findings: Finding[]): Record<Level, number> {
  const n: Record<Level, number> = { ok: 0, warn: 0, blocker: 0 };
  for (const f of findings) n[f.level]++;
  return n;
}

export function renderFindings(root: string, findings: Finding[]): string {
  const lines = [root === '/' ? 'node-prep doctor: this machine' : `node-prep doctor: image root ${root}`];
  for (const f of findings) {
    lines.push(`${MARK[f.level]} ${f.title}${f.scope === 'build-host' ? ' [build host]' : ''}`);
    if (f.detail) lines.push(`    ${f.detail}`);
    if (f.hint) lines.push(`    → ${f.hint}`);
  }
  lines.push('');
  if (root !== '/' && findings.some((f) => f.scope === 'build-host')) {
    lines.push(`[build host]: kernel, cgroup, module, sysctl and swap facts describe the machine running node-prep, not the one that will boot ${root}; they never block here.`);
  }
  const n = countLevels(findings);
  const plural = (k: number, one: string) => `${k} ${one}${k === 1 ? '' : 's'}`;
  const counts = `${plural(n.blocker, 'blocker')}, ${plural(n.warn, 'warning')}, ${n.ok} ok`;
  lines.push(
    n.blocker > 0
      ? `${counts}: fix the blockers (✗) before this ${root === '/' ? 'machine' : 'image'} can run the kubelet.`
      : n.warn > 0
        ? `${counts}: ready, with the warnings (!) above.`
        : `${counts}: ready.`,
  );
  return `${lines.join('\n')}\n`;
}
