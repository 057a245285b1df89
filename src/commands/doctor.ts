/**
 * `node-prep doctor`: preflight for a containerd node that will run the kubelet. Reads facts from this
 * machine (or, with --root DIR, from the image plus this build host), decides, and exits 1 when a
 * blocker is found.
 */
import type { Context } from './context.ts';
import { runChecks } from '../doctor/checks.ts';
import { readFacts } from '../doctor/facts.ts';
import { renderFindings } from '../doctor/render.ts';
import type { Finding } from '../doctor/types.ts';

export interface DoctorReport {
  kind: 'doctor';
  root: string;
  ok: boolean;
  findings: Finding[];
}

export async function doctorCommand(ctx: Pick<Context, 'options' | 'arch' | 'exec'>): Promise<{ report: DoctorReport; text: string; exitCode: number }> {
  const root = ctx.options.root;
  const facts = await readFacts(root, '/proc', '/sys', { targetArch: ctx.arch, exec: ctx.exec });
  const findings = runChecks(facts);
  const ok = !findings.some((f) => f.level === 'blocker');
  return { report: { kind: 'doctor', root, ok, findings }, text: renderFindings(root, findings), exitCode: ok ? 0 : 1 };
}
