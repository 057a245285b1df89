/** The smoke report for people: one line per check. */
import type { SmokeReport } from './types.ts';

export function summarizeSmoke(report: SmokeReport): string {
  const where = report.emulatedBy !== undefined ? `the binaries under ${report.emulatedBy}` : report.mode === 'temporary' ? 'temporary containerd' : 'containerd service';
  const verdict = !report.ok ? 'FAILED' : report.notRun.length > 0 ? `INCOMPLETE: ${report.notRun.length} checks could not run here` : 'passed';
  const lines = [`smoke test (${where}): ${verdict}`];
  for (const a of report.adaptations) lines.push(`  ! ${a}`);
  const width = Math.max(0, ...report.checks.map((c) => c.name.length));
  for (const c of report.checks) {
    lines.push(`  ${c.ok ? '✓' : '✗'} ${c.name.padEnd(width)}  ${formatDuration(c.durationMs).padStart(7)}  ${c.detail}`);
  }
  // One line per reason: the checks that share it are named together.
  const reasons = new Map<string, string[]>();
  for (const n of report.notRun) reasons.set(n.why, [...(reasons.get(n.why) ?? []), n.name]);
  for (const [why, names] of reasons) lines.push(`  - not run: ${names.join(', ')}: ${why}`);
  return `${lines.join('\n')}\n`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
