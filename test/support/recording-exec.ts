/**
 * An `Exec` that runs nothing: it records each command line and answers from a function the test
 * gives, so a test of which processes node-prep runs needs no stand-in binaries on PATH.
 */
import type { Exec, RunResult } from '../../src/exec/exec.ts';

export type Answer = Partial<Pick<RunResult, 'exitCode' | 'stdout' | 'stderr' | 'spawnError'>>;

export interface RecordingExec extends Exec {
  /** `file args…`, one string per call, in order. */
  calls: string[];
  /** The timeout each call was given, in the same order. */
  timeouts: Array<number | undefined>;
}

export function recordingExec(answer: (file: string, args: string[]) => Answer = () => ({})): RecordingExec {
  const calls: string[] = [];
  const timeouts: Array<number | undefined> = [];
  const result = (file: string, args: string[]): RunResult => {
    calls.push([file, ...args].join(' '));
    const a = answer(file, args);
    const exitCode = a.spawnError ? undefined : (a.exitCode ?? 0);
    return { exitCode, signal: undefined, stdout: a.stdout ?? '', stderr: a.stderr ?? '', failed: exitCode !== 0, timedOut: false, spawnError: a.spawnError };
  };
  return {
    calls,
    timeouts,
    run: async (file, args, opts) => {
      timeouts.push(opts?.timeoutMs);
      return result(file, args);
    },
    spawn: (file, args) => ({ pid: undefined, done: Promise.resolve(result(file, args)), kill: () => undefined }),
  };
}
