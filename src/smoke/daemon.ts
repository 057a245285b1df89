/**
 * A temporary containerd: the installed binary and (adapted) config, with root, state and sockets in
 * a scratch dir. Started as our child, so it dies with us; stopped with SIGTERM, then SIGKILL.
 * SIGTERM does not stop containers or shims (as in production): the caller removes those first.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Exec, Spawned } from '../exec/exec.ts';
import { relevantLines } from './exec.ts';
import { connects, deadline, sleep } from './host.ts';
import type { TempPaths } from './temp-config.ts';

export interface TemporaryDaemon {
  pid: number;
  paths: TempPaths;
  logFile: string;
  /** undefined while it runs. */
  exit: () => { code: number | undefined; signal: string | undefined } | undefined;
  process: Spawned;
}

export interface StartOptions {
  containerd: string;
  configFile: string;
  paths: TempPaths;
  logFile: string;
  /** PATH with the installed bin and sbin first: containerd finds its shim there. */
  env: Record<string, string>;
  timeoutMs: number;
}

export type StartResult = { kind: 'started'; daemon: TemporaryDaemon; waitedMs: number } | { kind: 'failed'; why: string; daemon?: TemporaryDaemon };

export async function startTemporary(exec: Exec, opts: StartOptions): Promise<StartResult> {
  const started = Date.now();
  // The flags repeat the temporary config for the gRPC socket, root and state only. No flag moves the
  // ttrpc, debug or metrics listeners or the shims' sockets: the config does that, in the layout of
  // its version (temp-config.ts), and the smoke test then checks what the daemon really listens on.
  const child = exec.spawn(opts.containerd, ['--config', opts.configFile, '--address', opts.paths.socket, '--root', opts.paths.root, '--state', opts.paths.state], {
    env: opts.env,
    stderrFile: opts.logFile,
  });
  let exited: { code: number | undefined; signal: string | undefined } | undefined;
  void child.done.then((r) => {
    exited = { code: r.exitCode, signal: r.signal };
  });
  const daemon: TemporaryDaemon = { pid: child.pid ?? -1, paths: opts.paths, logFile: opts.logFile, exit: () => exited, process: child };
  if (child.pid === undefined) {
    const r = await child.done;
    return { kind: 'failed', why: `cannot start ${opts.containerd}: ${r.spawnError ?? 'spawn failed'}` };
  }
  const deadline = started + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const how = exited.code !== undefined ? `exit code ${exited.code}` : `signal ${exited.signal}`;
      return { kind: 'failed', why: `containerd exited (${how}) before its socket answered${await logTail(opts.logFile)}`, daemon };
    }
    if (existsSync(opts.paths.socket) && (await connects(opts.paths.socket))) return { kind: 'started', daemon, waitedMs: Date.now() - started };
    await sleep(50);
  }
  return { kind: 'failed', why: `containerd did not listen on ${opts.paths.socket} within ${opts.timeoutMs / 1000} s${await logTail(opts.logFile)}`, daemon };
}

/**
 * The log lines that say why containerd failed, as a suffix for a message: fatal lines first, then
 * errors other than the CNI one every start without a network config logs.
 */
export async function logTail(logFile: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(logFile, 'utf8');
  } catch {
    return '';
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const fatal = lines.filter((l) => /level=(fatal|panic)/.test(l));
  const errors = lines.filter((l) => /level=error/.test(l) && !l.includes('failed to load cni during init'));
  const pick = relevantLines((fatal.length > 0 ? fatal : errors.length > 0 ? errors : lines).join('\n'), 3);
  return pick.length > 0 ? `; containerd log (${logFile}): ${pick.join(' | ')}` : '';
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Says how it ended. */
export async function stopTemporary(daemon: TemporaryDaemon, graceMs: number): Promise<{ stopped: boolean; how: string }> {
  if (daemon.exit() !== undefined) return { stopped: true, how: 'containerd had already exited' };
  const began = Date.now();
  daemon.process.kill('SIGTERM');
  const ended = await Promise.race([daemon.process.done.then(() => true), deadline(graceMs).then(() => false)]);
  if (ended) return { stopped: true, how: `containerd stopped on SIGTERM in ${Date.now() - began} ms` };
  daemon.process.kill('SIGKILL');
  const killed = await Promise.race([daemon.process.done.then(() => true), deadline(5_000).then(() => false)]);
  return killed
    ? { stopped: true, how: `containerd did not stop within ${graceMs} ms of SIGTERM; killed with SIGKILL` }
    : { stopped: false, how: `containerd (pid ${daemon.pid}) survived SIGKILL` };
}
