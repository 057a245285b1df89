/**
 * The one module that runs processes. Everything else takes an `Exec` (passed in, so tests hand in a
 * recording fake instead of changing PATH) and gets plain data back: no shell, no throw for a
 * failed or missing command, output as strings.
 */
import { execa } from 'execa';

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
    const child = execa(file, args, {
      ...(opts.env ? { env: opts.env } : {}),
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: { file: opts.stderrFile },
      reject: false,
      cleanup: true,
    });
    return {
      pid: child.pid,
      done: child.then((r) => toResult(r as ExecaOutcome), (err: ExecaOutcome) => toResult(err)),
      kill: (signal) => void child.kill(signal),
    };
  },
};
