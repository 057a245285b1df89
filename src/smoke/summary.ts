/** The smoke report for people: one line per check. */
import type { SmokeReport } from './types.ts';

export function summarizeSmoke(report: SmokeReport): string {
  const lines = [`smoke test (${report.mode === 'temporary' ? 'temporary containerd' : 'containerd service'}): ${report.ok ? 'passed' : 'FAILED'}`];
  for (const a of report.adaptations) lines.push(`  ! ${a}`);
  const width = Math.max(0, ...report.checks.map((c) => c.name.length));
  for (const c of report.checks) {
    lines.push(`  ${c.ok ? '✓' : '✗'} ${c.name.padEnd(width)}  ${formatDuration(c.durationMs).padStart(7)}  ${c.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
