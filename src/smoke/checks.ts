/**
 * The smoke test: the installed binaries run and are the intended versions, the installed config
 * means what node-prep intended, and the installed containerd really serves CRI and runs a
 * container, offline. Against the containerd service (service mode), or against a containerd this
 * function starts from the installed files with a temporary root, state and socket and stops again
 * (temporary mode: image builds, hosts without systemd). Every check is reported with its duration;
 * a check whose prerequisite failed is reported as skipped, never left hanging.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'smol-toml';
import { COMPONENT_NAMES, COMPONENTS } from '../components/index.ts';
import { NODE_PATHS } from '../node/paths.ts';
import { checkVersion, installedBinaries, type InstalledBinaries, type VersionCheck } from './binaries.ts';
import { privateBinaries } from './private-bin.ts';
import { cleanupHost, CONTAINERD_RUN_DIR } from './cleanup.ts';
import { configMismatches, criSettings, dumpConfig, dumpInstalledConfig, explainMigration, migrationWarning, type DumpResult } from './config.ts';
import { busyboxCandidates, findPayload, prepareRootfs, removeContainer, runContainer, SMOKE_NAMESPACE } from './container.ts';
import { startTemporary, stopTemporary, type TemporaryDaemon } from './daemon.ts';
import { checkCriStatus, checkCriVersion, checkCtrImages, checkNerdctlPs, checkSocket } from './daemon-checks.ts';
import type { Exec } from '../exec/exec.ts';
import type { BinfmtHandler } from '../node/binfmt.ts';
import { elfKind } from '../node/elf.ts';
import { runTool } from './exec.ts';
import { hostHas, isDirectory, sleep, systemdRunning as hostSystemdRunning } from './host.ts';
import { ephemeralPorts, judgeListeners, listenersOf, type Listener } from './listeners.ts';
import { formatDuration } from './summary.ts';
import { listenersOutside, temporaryConfig, tempPaths, type TempPaths } from './temp-config.ts';
import {
  CHECK,
  DEFAULT_TIMEOUTS,
  fail,
  pass,
  skipped,
  type CheckName,
  type CheckOutcome,
  type NotRunCheck,
  type SmokeCheck,
  type SmokeDeps,
  type SmokeInput,
  type SmokeReport,
} from './types.ts';

export { summarizeSmoke } from './summary.ts';
export type { SmokeCheck, SmokeDeps, SmokeExpect, SmokeInput, SmokeReport } from './types.ts';

export const DEFAULT_SOCKET = '/run/containerd/containerd.sock';
/** The namespace the kubelet uses; the smoke test only lists it. */
const K8S_NAMESPACE = 'k8s.io';

export async function runSmoke(input: SmokeInput, deps: SmokeDeps): Promise<SmokeReport> {
  const { exec } = deps;
  const t = { ...DEFAULT_TIMEOUTS, ...deps.timeouts };
  const now = deps.now ?? (() => performance.now());
  const emit = deps.emit ?? (() => undefined);
  const checks: SmokeCheck[] = [];
  const adaptations: string[] = [];

  const timed = async (name: CheckName, fn: () => Promise<CheckOutcome>): Promise<SmokeCheck> => {
    const start = now();
    let outcome: CheckOutcome;
    try {
      outcome = await fn();
    } catch (err) {
      outcome = fail(`unexpected error: ${(err as Error).message}`);
    }
    return { name, ok: outcome.ok, durationMs: Math.round(now() - start), detail: outcome.detail };
  };
  const add = (check: SmokeCheck): SmokeCheck => {
    checks.push(check);
    emit({ type: 'verify', artifact: 'smoke', check: check.name, ok: check.ok, detail: check.detail });
    return check;
  };
  const notRun: NotRunCheck[] = [];
  let versions: Awaited<ReturnType<typeof versionChecks>> = [];
  const emulated = input.emulation !== undefined ? notUnderEmulation(input.emulation) : undefined;
  const run = async (name: CheckName, fn: () => Promise<CheckOutcome>) => {
    if (emulated !== undefined && name !== CHECK.config) return void notRun.push({ name, why: emulated });
    const containerd = versions.find((v) => v.check.name === CHECK.containerdVersion);
    if (name === CHECK.config && containerd?.unloadable !== undefined) return void notRun.push({ name, why: `containerd does not load here: ${containerd.unloadable}` });
    add(await timed(name, fn));
  };

  const scratch = await mkdtemp(path.join(deps.tmpDir ?? os.tmpdir(), 'np-smoke-'));
  // Under --root: verified private copies, never the image's files themselves (private-bin.ts).
  const priv = input.root === '/' ? undefined : await privateBinaries(input.root, input.prefix, scratch);
  const bins = priv?.bins ?? installedBinaries(input.root, input.prefix);
  const env = { PATH: [bins.binDir, bins.sbinDir, process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin'].join(':') };
  const containerId = `smoke-${process.pid}-${randomBytes(3).toString('hex')}`;
  const systemdRunning = await (deps.systemdRunning ?? hostSystemdRunning)();
  const configFile = input.configFile ?? NODE_PATHS.containerdConfig;

  let daemon: TemporaryDaemon | undefined;
  let temporary: { socket: string; runDirExisted: boolean; shimSocketDir: string } | undefined;
  let socket: string | undefined = input.mode === 'service' ? (input.socket ?? DEFAULT_SOCKET).replace(/^unix:\/\//, '') : undefined;
  let containerTried = false;
  try {
    // 1. The binaries, concurrently (each is a --version call).
    versions = await versionChecks(exec, input, bins, priv?.problems ?? [], t.commandMs, timed);
    for (const v of versions) {
      if (v.unloadable === undefined) add(v.check);
      else notRun.push({ name: v.check.name, why: v.unloadable });
    }
    const runnable = (name: CheckName) => versions.find((v) => v.check.name === name)?.result.runnable ?? false;
    const why = (name: CheckName) => versions.find((v) => v.check.name === name)?.check.detail ?? name;

    // 2. The installed config, as containerd reads it.
    let dump = { kind: 'failed', why: 'not read' } as DumpResult;
    await run(CHECK.config, async () => {
      dump = await dumpInstalledConfig(exec, { containerd: bins.containerd, root: input.root, configFile, scratchDir: scratch, timeoutMs: t.commandMs });
      if (dump.kind === 'failed') return fail(`\`containerd config dump\` of ${configFile}: ${dump.why}`);
      const mismatches = configMismatches(criSettings(dump.config), input.expect);
      if (mismatches.length > 0) return fail(`${configFile} does not have the intended values: ${mismatches.join('; ')}`);
      const migrated = migrationWarning(dump.warnings);
      if (migrated) return fail(explainMigration(migrated, configFile, Number(dump.config.version)));
      const warned = dump.warnings.length > 0 ? `; containerd warned: ${dump.warnings.slice(0, 2).join(' | ')}` : '';
      const e = input.expect;
      return pass(`${configFile}: SystemdCgroup = ${e.systemdCgroup}, sandbox ${e.sandboxImage}, config_path ${e.configPath}, CNI ${e.cniBinDir} + ${e.cniConfDir}, cri enabled${warned}`);
    });
    const effective = dump.kind === 'ok' ? criSettings(dump.config) : undefined;
    let runcSystemdCgroup = input.mode === 'service' && systemdRunning && effective?.systemdCgroup === true;

    // 3. Temporary mode: start the installed containerd from a copy of the installed config.
    if (input.mode === 'temporary') {
      const paths = tempPaths(scratch);
      await run(CHECK.start, async () => {
        if (!runnable(CHECK.containerdVersion)) return skipped(`containerd cannot run (${why(CHECK.containerdVersion)})`);
        const d = dump;
        if (d.kind === 'failed') return skipped(`the installed config cannot be read (${d.why})`);
        const tc = temporaryConfig({ effective: d.config, paths, root: input.root, systemdRunning, ...(priv ? { binaryCopy: (p: string) => priv.copyOf.get(p) } : {}) });
        if (tc.refusal !== undefined) return fail(tc.refusal);
        for (const a of tc.adaptations) {
          adaptations.push(a);
          emit({ type: 'warn', message: a });
        }
        runcSystemdCgroup = systemdRunning && criSettings(tc.config).systemdCgroup === true;
        await copyNetworkConfigs(tc.cniConfSource, paths);
        const tempConfig = path.join(scratch, 'config.toml');
        await writeFile(tempConfig, stringify(tc.config));
        // Read back by the binary that will run it: a key this version ignores keeps its default.
        const readBack = await dumpConfig(exec, bins.containerd, tempConfig, t.commandMs);
        if (readBack.kind === 'failed') return fail(`\`containerd config dump\` of the temporary config: ${readBack.why}`);
        const leaks = listenersOutside(readBack.config, paths);
        if (leaks.length > 0) return fail(`not started: ${bins.containerd} reads the temporary config with listeners outside ${paths.dir} (${leaks.join(', ')}); it would take this host's sockets`);
        temporary = { socket: paths.socket, runDirExisted: await isDirectory(CONTAINERD_RUN_DIR), shimSocketDir: tc.shimSocketDir };
        const started = await startTemporary(exec, { containerd: bins.containerd, configFile: tempConfig, paths, logFile: path.join(scratch, 'containerd.log'), env, timeoutMs: t.startMs });
        daemon = started.daemon;
        if (started.kind === 'failed') return fail(started.why);
        // What it really listens on, not what its config says: a key this version ignores moves nothing.
        const expected = [paths.socket, paths.ttrpcSocket];
        const seen = await observeListeners(started.daemon.pid, expected, t.listenersMs);
        const verdict = seen.kind === 'seen' ? judgeListeners(seen.listeners, paths.dir, await ephemeralPorts()) : undefined;
        const missing = seen.kind === 'seen' ? expected.filter((p) => !seen.listeners.some((l) => l.kind === 'unix' && l.path === p)) : expected;
        if (verdict === undefined || verdict.outside.length > 0 || missing.length > 0) {
          const stop = await stopTemporary(started.daemon, t.stopMs);
          const what = seen.kind === 'unreadable'
            ? `its listeners cannot be read (${seen.why})`
            : verdict!.outside.length > 0
              ? `it listens outside ${paths.dir}: ${verdict!.outside.join(', ')} (whatever listened there before has lost that address: restart the service that owns it)`
              : `it does not listen on ${missing.join(' and ')} after ${t.listenersMs / 1000} s`;
          return fail(`${bins.containerd} (pid ${started.daemon.pid}): ${what}; stopped it at once (${stop.how}). Inside: ${verdict?.allowed.join(', ') || 'nothing'}`);
        }
        socket = paths.socket;
        const adapted = tc.adaptations.length > 0 ? `; adapted: ${tc.adaptations.map((a) => a.split(':')[0]).join('; ')}` : '';
        return pass(`${bins.containerd} (pid ${started.daemon.pid}) answered after ${formatDuration(started.waitedMs)}; listens only on ${verdict.allowed.join(', ')}; installed config with ${tc.overrides.join(', ')}${adapted}`);
      });
    }

    // 4. The running daemon.
    const noDaemon = skipped(input.mode === 'temporary' ? 'the temporary containerd did not start' : 'containerd does not answer on its socket');
    let answered = false;
    await run(CHECK.socket, async () => {
      if (socket === undefined) return noDaemon;
      const s = await checkSocket(exec, bins.ctr, socket, input.expect.versions.containerd, t.commandMs);
      answered = s.answered;
      return s.outcome;
    });
    const up = (fn: (socket: string) => Promise<CheckOutcome>) => async () => (answered && socket !== undefined ? fn(socket) : noDaemon);
    await run(CHECK.criVersion, up((s) => checkCriVersion(s, input.expect.versions.containerd, t.criMs)));
    await run(CHECK.criStatus, up((s) => checkCriStatus(s, t.criMs, t.criReadyMs)));
    await run(CHECK.containerRun, up(async (s) => {
      if (!runnable(CHECK.runcVersion)) return skipped(`runc cannot run (${why(CHECK.runcVersion)})`);
      if (!runnable(CHECK.shimVersion)) return skipped(`the shim cannot run (${why(CHECK.shimVersion)})`);
      if (!runnable(CHECK.ctrVersion)) return skipped(`ctr cannot run (${why(CHECK.ctrVersion)})`);
      const payload = await findPayload(busyboxCandidates(input.root, input.busybox), bins.runc);
      if (payload.kind === 'missing') return fail(payload.detail);
      const rootfs = path.join(scratch, 'rootfs');
      const proof = await prepareRootfs(rootfs, payload);
      await mkdir(path.join(scratch, 'fifo'), { recursive: true });
      containerTried = true;
      return runContainer(exec, {
        ctr: bins.ctr, socket: s, id: containerId, rootfs, proof, runc: bins.runc,
        runcRoot: path.join(scratch, 'runc-ctr'), fifoDir: path.join(scratch, 'fifo'),
        systemdCgroup: runcSystemdCgroup, timeoutMs: t.containerMs,
      });
    }));
    if (input.expect.versions.nerdctl !== undefined) {
      await run(CHECK.nerdctlPs, up(async (s) => {
        if (!runnable(CHECK.nerdctlVersion)) return skipped(`nerdctl cannot run (${why(CHECK.nerdctlVersion)})`);
        return checkNerdctlPs(exec, bins.nerdctl, s, K8S_NAMESPACE, { ...env, ...(await nerdctlEnv(input, scratch, s)) }, t.commandMs);
      }));
    }
    await run(CHECK.ctrImages, up(async (s) => {
      if (!runnable(CHECK.ctrVersion)) return skipped(`ctr cannot run (${why(CHECK.ctrVersion)})`);
      return checkCtrImages(exec, bins.ctr, s, K8S_NAMESPACE, t.commandMs);
    }));
  } finally {
    // 5. Leave nothing behind: the test container, the temporary daemon and its shims, our dirs.
    add(await timed(CHECK.cleanup, async () => {
      const done: string[] = [];
      const problems: string[] = [];
      if (containerTried && socket !== undefined) {
        const left = await removeContainer(exec, bins.ctr, socket, containerId, t.commandMs);
        if (left !== undefined) problems.push(left);
      }
      if (input.mode === 'service' && containerTried && socket !== undefined) {
        // Fails while the namespace holds anything else, which is then kept.
        await runTool(exec, bins.ctr, ['--address', socket, 'namespaces', 'remove', SMOKE_NAMESPACE], { timeoutMs: t.commandMs });
      }
      if (daemon !== undefined && daemon.exit() === undefined) {
        // Listeners bound after the start check (CRI's streaming server starts with its first use).
        const late = judgeListeners(await listenersOf(daemon.pid).catch(() => []), daemon.paths.dir, await ephemeralPorts());
        if (late.outside.length > 0) problems.push(`the temporary containerd listened outside ${daemon.paths.dir}: ${late.outside.join(', ')}`);
      }
      if (daemon !== undefined) {
        const stop = await stopTemporary(daemon, t.stopMs);
        (stop.stopped ? done : problems).push(stop.how);
      }
      const host = await cleanupHost(exec, { scratchDir: scratch, containerIds: containerTried ? [containerId] : [], temporary });
      done.push(...host.done);
      problems.push(...host.problems);
      return problems.length > 0 ? fail(`left behind: ${problems.join('; ')}`) : pass(done.join('; '));
    }));
  }
  const emulatedBy = input.emulation ? { emulatedBy: `${input.emulation.name} (${input.emulation.interpreter})` } : {};
  return { kind: 'smoke', ok: checks.every((c) => c.ok), mode: input.mode, adaptations, checks, notRun, ...emulatedBy };
}

/**
 * Why the daemon checks do not run under a binfmt handler: qemu-user refuses the clone flags runc
 * makes a container with, and a containerd emulated on this kernel says nothing about the one that
 * runs when the image boots on its own arch.
 */
function notUnderEmulation(handler: BinfmtHandler): string {
  return `not run under user-mode emulation (binfmt handler ${handler.name}): qemu-user cannot make runc's container namespaces, so containerd and its containers are checked only on a machine of the binaries' arch`;
}

type Timed = (name: CheckName, fn: () => Promise<CheckOutcome>) => Promise<SmokeCheck>;

/**
 * Under emulation, why a binary cannot load here: qemu-user loads a dynamically linked binary's
 * interpreter (the other arch's ld.so) from this machine, which has none unless that arch's libc is
 * installed (multiarch). The image's own libraries are not used: the smoke test runs no code of the
 * image's but the binaries it verified.
 */
async function loaderMissing(file: string): Promise<string | undefined> {
  const kind = await elfKind(file).catch(() => undefined);
  if (kind?.kind !== 'dynamic' || (await hostHas(kind.interpreter))) return undefined;
  return `${path.basename(file)} is dynamically linked and its loader ${kind.interpreter} is not on this machine, so it cannot load under user-mode emulation (the smoke test does not run the image's own libraries)`;
}


/** Every installed component's binaries, as its catalog entry says, concurrently (each is a --version call). */
async function versionChecks(exec: Exec, input: SmokeInput, bins: InstalledBinaries, problems: string[], timeoutMs: number, timed: Timed) {
  const jobs = COMPONENT_NAMES.flatMap((name) => {
    const expected = input.expect.versions[name];
    if (expected === undefined) return [];
    return COMPONENTS[name].versionChecks.map((v) => {
      const [dir, file] = v.binary.split('/') as [string, string];
      return { ...v, expected, nodePath: path.posix.join(input.prefix, v.binary), file: path.join(dir === 'sbin' ? bins.sbinDir : bins.binDir, file) };
    });
  });
  return Promise.all(jobs.map(async (job) => {
    const tool = path.posix.basename(job.binary);
    let result: VersionCheck = { outcome: fail(`${tool}: not checked`), runnable: false };
    // A binary that is not as node-prep installed it is not run (as root) to find out.
    const problem = problems.find((p) => p.startsWith(`${job.nodePath} `));
    const unloadable = input.emulation === undefined || problem ? undefined : await loaderMissing(job.file);
    const check = await timed(job.check as CheckName, async () => {
      if (problem) return (result = { outcome: fail(`${tool}: ${problem}; not run`), runnable: false }).outcome;
      if (unloadable !== undefined) return fail(unloadable);
      result = await checkVersion(exec, tool, job.file, job.args, job.expected, timeoutMs);
      return result.outcome;
    });
    return { check, result, unloadable };
  }));
}

/**
 * The daemon's listeners once the sockets it must have are bound (ttrpc may come a moment after the
 * gRPC socket answers), or as they are when `waitMs` runs out.
 */
async function observeListeners(pid: number, expected: string[], waitMs: number): Promise<{ kind: 'seen'; listeners: Listener[] } | { kind: 'unreadable'; why: string }> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    let seen: Listener[];
    try {
      seen = await listenersOf(pid);
    } catch (err) {
      return { kind: 'unreadable', why: (err as NodeJS.ErrnoException).code ?? String(err) };
    }
    const paths = new Set(seen.map((l) => (l.kind === 'unix' ? l.path : '')));
    if (expected.every((p) => paths.has(p)) || Date.now() >= deadline) return { kind: 'seen', listeners: seen };
    await sleep(50);
  }
}

/** The node's network configs, copied so NetworkReady reflects them without containerd touching the node's dir. */
async function copyNetworkConfigs(source: string | undefined, paths: TempPaths): Promise<void> {
  await mkdir(paths.cniConfDir, { recursive: true, mode: 0o700 });
  if (source === undefined) return;
  let names: string[];
  try {
    names = await readdir(source);
  } catch {
    return; // no network config yet: NetworkReady is reported false, as on the node
  }
  for (const name of names.filter((n) => /\.(conflist|conf|json)$/.test(n))) {
    await copyFile(path.join(source, name), path.join(paths.cniConfDir, name)).catch(() => undefined);
  }
}

/**
 * A temporary daemon gets a private nerdctl config: nerdctl keeps per-address state under its
 * data root (/var/lib/nerdctl), which must not be touched on the build host.
 */
async function nerdctlEnv(input: SmokeInput, scratch: string, socket: string): Promise<Record<string, string>> {
  if (input.mode !== 'temporary') return {};
  const file = path.join(scratch, 'nerdctl.toml');
  await writeFile(file, stringify({ address: `unix://${socket}`, namespace: K8S_NAMESPACE, data_root: path.join(scratch, 'nerdctl') }));
  return { NERDCTL_TOML: file };
}
