/**
 * Running the installed tools. A failed run is explained from its exit code and the stderr lines
 * that matter, never a stack or the whole output.
 */
import type { Exec } from '../exec/exec.ts';

export interface ToolRun {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** Set when !ok: one line naming the command and why it failed. */
  why: string;
  /** The binary could not be executed at all (missing, not executable, wrong architecture). */
  notRunnable: boolean;
}

export interface ToolOptions {
  timeoutMs: number;
  env?: Record<string, string>;
}

/** Run `file args` without a shell; never throws. */
export async function runTool(exec: Exec, file: string, args: string[], opts: ToolOptions): Promise<ToolRun> {
  const result = await exec.run(file, args, { timeoutMs: opts.timeoutMs, env: opts.env });
  const { stdout, stderr } = result;
  if (!result.failed) return { ok: true, stdout, stderr, why: '', notRunnable: false };
  const code = result.spawnError;
  return {
    ok: false,
    stdout,
    stderr,
    why: explainFailure({ command: commandLine(file, args), exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, code, stderr, timeoutMs: opts.timeoutMs }),
    notRunnable: code === 'ENOENT' || code === 'EACCES' || code === 'ENOEXEC' || result.exitCode === 127 || result.exitCode === 126,
  };
}

export interface FailedRun {
  command: string;
  exitCode?: number | undefined;
  signal?: string | undefined;
  timedOut?: boolean | undefined;
  /** The spawn error code (ENOENT, EACCES, ENOEXEC) when the process never started. */
  code?: string | undefined;
  stderr: string;
  timeoutMs?: number | undefined;
}

/** One line: what ran, how it ended, the stderr lines that say why. */
export function explainFailure(run: FailedRun): string {
  const why = relevantLines(run.stderr);
  const tail = why.length > 0 ? `: ${why.join(' | ')}` : '';
  const bin = run.command.split(' ')[0] ?? run.command;
  switch (run.code) {
    case 'ENOENT':
      return `${bin} does not exist (ENOENT)`;
    case 'EACCES':
      return `${bin} is not executable (EACCES)`;
    case 'ENOEXEC':
      return `${bin} cannot be executed here (ENOEXEC: a binary for another architecture?)`;
  }
  if (run.timedOut) return `\`${run.command}\` did not finish within ${Math.round((run.timeoutMs ?? 0) / 100) / 10} s${tail}`;
  if (run.exitCode === undefined && run.signal) return `\`${run.command}\` was killed by ${run.signal}${tail}`;
  return `\`${run.command}\` exited with code ${run.exitCode ?? '?'}${tail}`;
}

/**
 * The stderr lines worth showing: error-level log lines if there are any (containerd logs a lot at
 * info level), else the last non-empty lines. At most `max` lines, each cut to 300 characters.
 */
export function relevantLines(stderr: string, max = 3): string[] {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const errors = lines.filter((l) => /level=(error|fatal|panic)|\b(error|failed|fatal|cannot|no such|not found|denied)\b/i.test(l));
  const pick = (errors.length > 0 ? errors : lines).slice(-max);
  return pick.map((l) => (l.length > 300 ? `${l.slice(0, 297)}...` : l));
}

export function commandLine(file: string, args: string[]): string {
  return [file, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}
