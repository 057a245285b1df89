/**
 * The smoke test, after an install (with what the plan intended) or on its own as `node-prep smoke`
 * (with what the install record says was intended).
 */
import { systemdIsPid1 } from '../node/init.ts';
import { NODE_PATHS, SOCKET } from '../node/paths.ts';
import type { Arch } from '../arch.ts';
import type { Context } from './context.ts';
import { defaultSandboxImage } from '../config/render.ts';
import { EXIT, NodePrepError } from '../errors.ts';
import { archRun } from '../node/binfmt.ts';
import type { Plan } from '../plan/types.ts';
import { readManifest } from '../state/manifest.ts';
import type { SmokeExpect, SmokeReport } from '../smoke/types.ts';

export type SmokeOutcome = SmokeReport | { kind: 'smoke'; skipped: string };

const PATHS = { configPath: NODE_PATHS.certsDir, cniBinDir: NODE_PATHS.cniBinDir, cniConfDir: NODE_PATHS.cniConfDir };

export async function smokeFor(ctx: Context, plan: Plan, mode: 'service' | 'temporary'): Promise<SmokeOutcome> {
  return runFor(ctx, plan.arch, plan.prefix, mode, {
    versions: installedVersions(Object.fromEntries(plan.components.map((c) => [c.name, c.version]))),
    systemdCgroup: plan.containerd.cgroupDriver === 'systemd',
    sandboxImage: plan.containerd.sandboxImage,
    ...PATHS,
  });
}

/** containerd and runc are in every plan and every record (resolveAll and install make sure). */
function installedVersions(v: Partial<Record<string, string>>): SmokeExpect['versions'] {
  return { ...v, containerd: v.containerd!, runc: v.runc! };
}

async function runFor(ctx: Context, arch: Arch, prefix: string, mode: 'service' | 'temporary', expect: SmokeExpect): Promise<SmokeOutcome> {
  const how = await archRun(arch);
  if (how.kind === 'cannot') return { kind: 'smoke', skipped: how.why };
  const { runSmoke } = await import('../smoke/checks.ts');
  const emulation = how.kind === 'emulated' ? how.handler : undefined;
  return runSmoke({ root: ctx.options.root, prefix, mode, expect, socket: SOCKET, busybox: ctx.options.busybox, emulation }, { exec: ctx.exec });
}

/** 0 when every check ran and passed; 1 when one failed; 3 (EXIT.smokeNotRun) when some or all could not run here. */
export function smokeExitCode(outcome: SmokeOutcome): number {
  if (!('checks' in outcome)) return EXIT.smokeNotRun;
  if (!outcome.ok) return EXIT.failure;
  return outcome.notRun.length > 0 ? EXIT.smokeNotRun : EXIT.success;
}

/** `node-prep smoke`: against the running service when there is one, else a temporary containerd. */
export async function smokeCommand(ctx: Context): Promise<{ report: SmokeOutcome; text: string; exitCode: number }> {
  const m = await readManifest(ctx.options.root);
  if (!m) {
    throw new NodePrepError('NOT_INSTALLED', `node-prep has installed nothing in ${ctx.options.root === '/' ? 'this machine' : ctx.options.root}: nothing to test.`, {
      hint: 'Run `node-prep install` first.',
    });
  }
  const versions = installedVersions(Object.fromEntries(Object.entries(m.components).map(([name, c]) => [name, c!.version])));
  const containerdVersion = versions.containerd;
  const live = ctx.options.root === '/' && (await systemdIsPid1());
  const report = await runFor(ctx, m.arch, m.prefix, live ? 'service' : 'temporary', {
    versions,
    systemdCgroup: (m.intent?.cgroupDriver ?? 'systemd') === 'systemd',
    sandboxImage: m.intent?.sandboxImage ?? defaultSandboxImage(containerdVersion),
    ...PATHS,
  });
  const { summarizeSmoke } = await import('../smoke/checks.ts');
  return { report, exitCode: smokeExitCode(report), text: 'checks' in report ? summarizeSmoke(report) : `smoke test NOT RUN: ${report.skipped}\n` };
}
