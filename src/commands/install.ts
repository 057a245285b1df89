/**
 * `node-prep install`: the phases of an install as a task tree, and the report at the end.
 */
import { InstallRun, type InstallItem } from '../apply/install.ts';
import { applyPrerequisites, type PrereqReport } from '../apply/prereqs.ts';
import { enableInImage, runLiveService, stopService, unitFilesChanged, waitForCri, type ServiceReport } from '../apply/services.ts';
import { SOCKET } from '../node/paths.ts';
import { verifyArtifactSignatures, type ArtifactSignatures } from '../apply/signatures.ts';
import { describeDigestSource, sameHostWarning } from '../checksums/pins.ts';
import type { Context } from './context.ts';
import { COMPONENTS } from '../components/index.ts';
import type { Emit, NodePrepEvent } from '../events.ts';
import { NodePrepError } from '../errors.ts';
import type { Plan } from '../plan/types.ts';
import { ProgressBoard } from '../ui/progress.ts';
import { runPhases, type OutputMode, type Phase } from '../ui/tasks.ts';
import type { SmokeReport } from '../smoke/types.ts';
import { diffFiles, observeDisk, restartReason } from '../plan/changes.ts';
import { planCommand, refuseBlockedChanges, refuseBlockedPlan, serviceBlocked } from './plan.ts';
import { interruptSignal, throwIfInterrupted } from '../util/interrupt.ts';
import { readUnit } from '../apply/takeover.ts';

export interface InstallReport {
  kind: 'install';
  ok: boolean;
  changed: boolean;
  arch: string;
  root: string;
  prefix: string;
  components: Array<{
    name: string;
    version: string;
    action: 'unchanged' | 'install';
    reason: string;
    asset: string;
    sha256: string;
    verifiedBy: string;
    /** Set when the digest came from the same (non-GitHub) host as the bytes, with nothing independent behind it. */
    sameHost?: string;
    download: 'network' | 'cache' | 'not needed' | 'not done';
  }>;
  files: InstallItem[];
  signatures: ArtifactSignatures[];
  prerequisites: PrereqReport | { skipped: string };
  service: ServiceReport;
  smoke: SmokeReport | { skipped: string };
  rolledBack: boolean;
  warnings: string[];
  timingsMs: Record<string, number>;
}

export async function installCommand(ctx: Context, mode: OutputMode, forward: Emit): Promise<{ report: InstallReport; text: string }> {
  const o = ctx.options;
  const live = o.root === '/';
  if (live && process.getuid?.() !== 0) {
    throw new NodePrepError('NOT_ROOT', 'node-prep install changes /usr/local, /etc and services, so it needs root.', {
      hint: 'Run it with sudo, or prepare an image root you can write with --root DIR.',
    });
  }
  const warnings: string[] = [];
  const board = new ProgressBoard();
  let progress: ((text: string) => void) | undefined;
  let lineDone: ((artifact: string, how: string) => void) | undefined;
  const emit: Emit = (e: NodePrepEvent) => {
    if (e.type === 'warn') warnings.push(e.message);
    if (e.type.startsWith('download:')) {
      board.update(e as Extract<NodePrepEvent, { type: `download:${string}` }>);
      progress?.(board.lines().join('\n'));
      if (e.type === 'download:done') lineDone?.(e.artifact, e.source === 'cache' ? 'from the cache' : 'downloaded, sha256 verified');
    }
    forward(e);
  };
  const timings: Record<string, number> = {};
  let plan: Plan | undefined;
  let run: InstallRun | undefined;
  let signatures: ArtifactSignatures[] = [];
  let prerequisites: InstallReport['prerequisites'] = { skipped: live ? 'not run' : '--root: written to the image, applied when it boots' };
  let service: ServiceReport = { kind: 'skipped', reason: 'not run' };
  let smoke: InstallReport['smoke'] = { skipped: o.smoke ? 'not run' : '--skip-smoke' };
  let rolledBack = false;
  const timed = (name: string, fn: Phase['run']): Phase['run'] => async (update) => {
    const t = Date.now();
    throwIfInterrupted(); // a signal stops the run between phases
    try {
      return await fn(update);
    } finally {
      timings[name] = Date.now() - t;
    }
  };

  const phases: Phase[] = [
    {
      title: 'Resolve versions and plan',
      run: timed('plan', async () => {
        plan = (await planCommand(ctx)).plan;
        refuseBlockedPlan(plan);
        for (const o of plan.kubernetes?.outside ?? []) emit({ type: 'warn', message: o.message });
        if (ctx.archChoice.warning) emit({ type: 'warn', message: ctx.archChoice.warning });
        run = new InstallRun({ http: ctx.http, cache: ctx.cache }, plan, emit);
        for (const a of plan.artifacts) {
          // A bundle's own checksum file cannot vouch for the bundle: say so where nothing else does.
          if (a.digestSource.kind === 'published' && a.url.startsWith('file:')) {
            emit({ type: 'warn', message: `${a.name} has no pin: its sha256 comes from the bundle itself. Pin it with --checksums to check it against a source you trust.` });
          }
          if (a.digestSource.kind === 'published' && a.digestSource.sameHost) emit({ type: 'warn', message: sameHostWarning(a.name, a.digestSource.sameHost) });
        }
        return `${plan.components.map((c) => `${c.name} ${c.version}`).join(', ')} for linux/${plan.arch}`;
      }),
    },
    {
      title: 'Compare with what is installed',
      run: timed('compare', async () => {
        await run!.begin();
        // The diff plan prints: a blocked change stops here, before anything is downloaded.
        const disk = await observeDisk(plan!, run!.manifest);
        const changes = diffFiles(plan!, run!.manifest, disk);
        refuseBlockedChanges(changes, o.root, await serviceBlocked(plan!));
        const d = run!.decide(changes, disk);
        // The unit as found before node-prep's first install here (a package's, to give back).
        if (live && !run!.manifest && plan!.service.manage === 'systemd') run!.foundUnit = await readUnit(ctx.exec);
        const n = d.filter((x) => x.action === 'install').length;
        return n === 0 ? 'everything is installed' : `${n} to install, ${d.length - n} unchanged`;
      }),
    },
    {
      title: 'Download and verify sha256',
      skip: () => (run!.toInstall.length === 0 ? 'nothing to download' : false),
      run: timed('download', async (update) => {
        // A live board on a terminal; in plain-line mode only one line per finished download.
        progress = mode === 'tree' ? update : undefined;
        if (mode === 'lines') lineDone = (name, how) => update(`${name}: ${how}`);
        await run!.download();
        progress = undefined;
        const fromCache = [...run!.fetched.values()].filter((f) => f.source === 'cache').length;
        return `${run!.fetched.size - fromCache} downloaded, ${fromCache} from the cache`;
      }),
    },
    {
      title: 'Verify signatures',
      skip: () => (run!.toInstall.length === 0 ? 'nothing downloaded' : false),
      run: timed('signatures', async () => {
        signatures = await verifyArtifactSignatures({ keyring: o.keyring, verify: o.verify, github: ctx.github, fetchText: ctx.fetchText }, run!.toInstall.map((d) => ({ artifact: d.artifact, path: run!.fetched.get(d.name)!.path })));
        const all = signatures.flatMap((s) => s.results);
        const count = (kind: string) => all.filter((r) => r.result.kind === kind).length;
        for (const r of all) {
          if (r.result.kind === 'missing') {
            const what = r.file === r.signs ? `${r.file} is not signed` : `no ${r.file} is published for ${r.signs}`;
            emit({ type: 'warn', message: `${what}; the sha256 check stands alone` });
          } else if (r.result.kind === 'unverified') emit({ type: 'warn', message: `${r.file}: signature not verified: ${r.result.reason}` });
        }
        const published = all.length - count('missing');
        if (published === 0) return all.length === 0 ? 'none expected' : 'none published';
        return `${count('verified')} of ${published} verified${count('missing') > 0 ? `, ${count('missing')} not published` : ''}`;
      }),
    },
    {
      title: 'Install files',
      run: timed('install', async () => {
        await run!.stage();
        await run!.commit();
        const written = run!.items.filter((i) => i.outcome.kind !== 'unchanged').length;
        return written === 0 ? 'nothing changed' : `${plural(written, 'file')} written, ${run!.items.length - written} unchanged`;
      }),
    },
    {
      title: 'Kernel prerequisites',
      skip: () => (live ? false : 'image root: applied at boot from /etc/modules-load.d and /etc/sysctl.d'),
      run: timed('prerequisites', async () => {
        prerequisites = await applyPrerequisites(ctx.exec, emit);
        const failed = [...prerequisites.modules, ...prerequisites.sysctls].filter((x) => x.state === 'failed').length;
        return failed === 0 ? 'in place' : `${failed} could not be applied now (see warnings); the files apply them at boot`;
      }),
    },
    {
      title: 'containerd service',
      run: timed('service', async () => {
        try {
          service = await decideService(ctx, run!);
        } catch (err) {
          // The new containerd did not come up: put the previous files back and bring back what ran.
          if (live && run!.changed) {
            service = await restorePrevious(ctx, run!);
            rolledBack = true;
            if (err instanceof NodePrepError) {
              throw new NodePrepError(err.code, err.message, { hint: `${describeRestore(run!)} ${err.hint ?? ''}`.trim(), fields: err.fields, cause: err });
            }
          }
          throw err;
        }
        return describeService(service);
      }),
    },
    {
      title: 'Smoke test',
      skip: () => (o.smoke ? false : '--skip-smoke'),
      run: timed('smoke', async () => {
        const { smokeFor } = await import('./smoke.ts');
        const result = await smokeFor(ctx, plan!, service.kind === 'running' ? 'service' : 'temporary');
        smoke = result;
        if ('checks' in result && !result.ok) {
          const failed = result.checks.filter((c) => !c.ok).map((c) => c.name);
          // A live host is left as it was: with the service, the previous containerd runs again;
          // without one (no systemd here) the previous files and record are put back.
          let restored = '';
          if (live && run!.changed) {
            if (service.kind === 'running') {
              service = await restorePrevious(ctx, run!);
              restored = describeRestore(run!);
            } else {
              await run!.rollback();
              restored = describeRestore(run!, false);
            }
            rolledBack = true;
          }
          throw new NodePrepError('SMOKE', `The smoke test failed: ${failed.join(', ')}.`, {
            hint: rolledBack
              ? restored
              : `Run \`node-prep smoke${o.root === '/' ? '' : ` --root ${o.root}`}\` for the details of each check.`,
            fields: { failed },
          });
        }
        if (!('checks' in result)) return { skipped: result.skipped };
        const passed = `${result.checks.length} checks passed`;
        if (result.notRun.length === 0) return passed;
        return `${passed} under ${result.emulatedBy}; not run there: ${result.notRun.map((c) => c.name).join(', ')}`;
      }),
    },
  ];

  let failure: unknown;
  try {
    await runPhases(phases, mode);
  } catch (err) {
    failure = err;
    // Stopped by a signal after the files were swapped in (the service or the smoke test): put back
    // what this run changed, as a failure would.
    if (interruptSignal.aborted && run?.changed && !rolledBack) {
      try {
        if (live && (service as ServiceReport).kind === 'running') service = await restorePrevious(ctx, run);
        else await run.rollback();
        rolledBack = true;
      } catch (rollbackErr) {
        failure = rollbackErr;
      }
    }
  } finally {
    await run?.finish();
  }
  const report = buildReport(ctx, plan, run, { failed: failure !== undefined, signatures, prerequisites, service, smoke, rolledBack, warnings, timings });
  if (failure !== undefined) {
    if (failure instanceof NodePrepError) Object.assign(failure.fields, { report });
    throw failure;
  }
  return { report, text: renderReport(report) };
}

/**
 * After a failed start or smoke test on a live host: the previous files and record go back; the
 * previous containerd is restarted, or, when this was the first install, the new one is stopped.
 */
/**
 * After a failed start or smoke test on a live host: the previous files back, and the previous
 * containerd running (a second try after reset-failed when the first fails), or, after a first
 * install, the new one stopped. `start` is the service step (exported with it for its test).
 */
export async function restorePrevious(
  ctx: Pick<Context, 'exec'>,
  run: Pick<InstallRun, 'rollback' | 'hadPreviousInstall'>,
  start: () => Promise<ServiceReport> = () => decideService(ctx as Context, run as InstallRun, true),
): Promise<ServiceReport> {
  await run.rollback();
  if (!run.hadPreviousInstall) {
    await stopService(ctx.exec);
    return { kind: 'skipped', reason: 'the first install failed: its containerd was stopped and disabled' };
  }
  try {
    return await start();
  } catch (first) {
    // The failed start may have left the unit failed or in its start limit: once more, after
    // reset-failed. The report says it took two.
    await ctx.exec.run('systemctl', ['reset-failed', 'containerd'], { timeoutMs: 30_000 });
    try {
      const second = await start();
      return second.kind === 'running' ? { ...second, startAttempts: 2 } : second;
    } catch (err) {
      throw new NodePrepError('ROLLBACK_START', `The previous files and record were put back, but the previous containerd did not start either, twice: ${(err as Error).message}`, {
        hint: 'containerd is not running. See `journalctl -u containerd -n 50`, then start it (`systemctl start containerd`) or run node-prep again.',
        fields: { first: (first as Error).message },
        cause: err,
      });
    }
  }
}

/** What a rollback on a live host did, for the error's hint; `service`: systemd ran containerd. */
export function describeRestore(run: Pick<InstallRun, 'hadPreviousInstall'>, service = true): string {
  if (run.hadPreviousInstall) return `The previous binaries and config were put back${service ? ' and containerd restarted' : ''}.`;
  return `Nothing had been installed before: the new files were removed${service ? ' and containerd stopped and disabled' : ''}.`;
}

async function decideService(ctx: Context, run: InstallRun, forceRestart = false): Promise<ServiceReport> {
  const o = ctx.options;
  if (run.enableByLink) {
    const r = await enableInImage(o.root);
    return {
      kind: 'enabled-in-image',
      link: r.link,
      created: r.created || run.items.some((i) => i.path === r.link && i.outcome.kind === 'created'),
      reason: run.plan.service.reason,
    };
  }
  return runLiveService({
    exec: ctx.exec,
    start: run.plan.service.start,
    unitChanged: unitFilesChanged(run.plan.service.unit, run.items.filter((i) => i.outcome.kind !== 'unchanged')) || forceRestart,
    // The rule plan shows its restart decision by, over what this run really changed.
    restartNeeded: forceRestart || restartReason(run.items.filter((i) => i.outcome.kind !== 'unchanged')) !== undefined,
    waitReady: (ms) => waitForCri(SOCKET, ms),
    socketAnswers: () => waitForCri(SOCKET, 0).then(() => true, () => false),
  });
}

function describeService(s: ServiceReport): string {
  switch (s.kind) {
    case 'skipped':
      return `not started: ${s.reason}`;
    case 'enabled-in-image':
      return `${s.created ? 'enabled' : 'already enabled'} through ${s.link}; not started (${s.reason})`;
    case 'running':
      return `${s.restarted ? 'restarted and answering' : 'running, unchanged'}${s.startAttempts && s.startAttempts > 1 ? ` (started on try ${s.startAttempts})` : ''}`;
  }
}

function buildReport(
  ctx: Context,
  plan: Plan | undefined,
  run: InstallRun | undefined,
  rest: Pick<InstallReport, 'signatures' | 'prerequisites' | 'service' | 'smoke' | 'rolledBack' | 'warnings'> & { failed: boolean; timings: Record<string, number> },
): InstallReport {
  const smokeOk = !('checks' in rest.smoke) || rest.smoke.ok;
  return {
    kind: 'install',
    ok: !rest.failed && smokeOk && !rest.rolledBack && run !== undefined,
    changed: run?.changed ?? false,
    arch: plan?.arch ?? ctx.arch,
    root: ctx.options.root,
    prefix: ctx.options.prefix,
    components: (run?.decisions ?? []).map((d) => ({
      name: d.name,
      version: d.version,
      action: d.action,
      reason: d.reason,
      asset: d.artifact.name,
      sha256: d.artifact.sha256,
      verifiedBy: describeDigestSource(d.artifact.digestSource),
      ...(d.artifact.digestSource.kind === 'published' && d.artifact.digestSource.sameHost ? { sameHost: d.artifact.digestSource.sameHost } : {}),
      download: run?.fetched.get(d.name)?.source ?? (d.action === 'install' ? 'not done' : 'not needed'),
    })),
    files: run?.items ?? [],
    signatures: rest.signatures,
    prerequisites: rest.prerequisites,
    service: rest.service,
    smoke: rest.smoke,
    rolledBack: rest.rolledBack,
    warnings: rest.warnings,
    timingsMs: rest.timings,
  };
}

export function renderReport(r: InstallReport): string {
  const lines: string[] = [];
  for (const c of r.components) {
    const title = COMPONENTS[c.name as keyof typeof COMPONENTS].title;
    lines.push(c.action === 'unchanged' ? `${title} ${c.version}: unchanged` : `${title} ${c.version}: installed (${c.reason}; sha256 ${c.verifiedBy})`);
  }
  const written = r.files.filter((f) => f.outcome.kind !== 'unchanged');
  lines.push(written.length === 0 ? 'No file changed.' : `${plural(written.length, 'file')} written, ${r.files.length - written.length} unchanged.`);
  for (const f of written) lines.push(`  ${f.outcome.kind.padEnd(9)} ${f.path}${f.backup ? ` (previous file kept at ${f.backup})` : ''}`);
  lines.push(`containerd service: ${describeService(r.service)}`);
  if ('checks' in r.smoke) {
    const notRun = r.smoke.notRun.length > 0 ? `; ${r.smoke.notRun.length} could not run under ${r.smoke.emulatedBy}: ${r.smoke.notRun.map((c) => c.name).join(', ')}` : '';
    lines.push(`smoke test: ${r.smoke.ok ? 'passed' : 'FAILED'} (${r.smoke.checks.filter((c) => c.ok).length}/${r.smoke.checks.length} checks${notRun})`);
  } else lines.push(`smoke test: skipped (${r.smoke.skipped})`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  if (!r.changed) lines.push('Nothing changed: everything was already as planned.');
  return `${lines.join('\n')}\n`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
