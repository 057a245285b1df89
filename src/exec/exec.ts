/**
 * The one module that runs processes (execa for commands, node's spawn for a daemon). Everything else takes an `Exec` (passed in, so tests hand in a
 * recording fake instead of changing PATH) and gets plain data back: no shell, no throw for a
 * failed or missing command, output as strings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { execa } from 'execa';
import { onExit } from 'signal-exit';

export interface RunOptions {
  timeoutMs: number;
  /** Variables set for the child on top of this process's environment. */
  env?: Record<string, string> | undefined;
}

export interface RunResult {
  /** undefined when it was killed by a signal or never started. */
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  /** Anything but exit code 0. */
  failed: boolean;
  timedOut: boolean;
  /** The spawn error (ENOENT, EACCES, ENOEXEC) when the process never started. */
  spawnError: string | undefined;
}

export interface Spawned {
  pid: number | undefined;
  /** Settles when the process has ended (never rejects). */
  done: Promise<RunResult>;
  kill(signal: 'SIGTERM' | 'SIGKILL'): void;
}

export interface SpawnOptions {
  /** Variables set for the child on top of this process's environment. */
  env?: Record<string, string> | undefined;
  /** stderr goes to this file; stdout and stdin are closed. */
  stderrFile: string;
}

export interface Exec {
  run(file: string, args: string[], opts: RunOptions): Promise<RunResult>;
  /** A long-running child (a temporary daemon), killed when this process exits. */
  spawn(file: string, args: string[], opts: SpawnOptions): Spawned;
}

type ExecaOutcome = { exitCode?: number | undefined; signal?: string | undefined; stdout?: unknown; stderr?: unknown; failed?: boolean; timedOut?: boolean; code?: string };

function toResult(r: ExecaOutcome): RunResult {
  return {
    exitCode: r.exitCode,
    signal: r.signal ?? undefined,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    failed: r.failed ?? r.exitCode !== 0,
    timedOut: r.timedOut ?? false,
    spawnError: typeof r.code === 'string' && /^E[A-Z]+$/.test(r.code) ? r.code : undefined,
  };
}

export const systemExec: Exec = {
  async run(file, args, opts) {
    const r = await execa(file, args, {
      reject: false,
      timeout: opts.timeoutMs,
      stdin: 'ignore',
      ...(opts.env ? { env: opts.env } : {}),
      stripFinalNewline: true,
      forceKillAfterDelay: 2_000,
    }).catch((err: ExecaOutcome) => err);
    return toResult(r as ExecaOutcome);
  },
  spawn(file, args, opts) {
    // node's own spawn, with the log file's descriptor handed to the child as it is: through a pipe
    // (what execa makes of a file), a grandchild that keeps stderr open (a shim, a wrapper's child)
    // would hold the end of the run open.
    const log = openSync(opts.stderrFile, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(file, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'ignore', log] });
    } finally {
      closeSync(log);
    }
    const done = new Promise<RunResult>((resolve) => {
      child.once('exit', (code, signal) => resolve(toResult({ exitCode: code ?? undefined, signal: signal ?? undefined, failed: code !== 0 })));
      child.once('error', (err: Error & { code?: string }) => resolve(toResult({ exitCode: undefined, failed: true, code: err.code })));
    });
    // Dies with us, as a temporary daemon must: on exit and on SIGINT, SIGTERM and SIGHUP too (which
    // then go on to end this process as they would have).
    const removeHook = onExit(() => void child.kill('SIGKILL'));
    void done.then(removeHook);
    return { pid: child.pid, done, kill: (signal) => void child.kill(signal) };
  },
};
