/**
 * SIGINT, SIGTERM and SIGHUP (Ctrl-C, `timeout`, a cancelled CI job) as one process-wide abort signal.
 * Long waits (downloads, retries' backoff) end at once with its reason; the transaction stops before
 * its next change and rolls back; the run releases its lock and reports, and the CLI exits 128 + the
 * signal's number (130, 143, 129). A second signal ends the process at once: the next run repairs
 * what it left (the journal, apply/journal.ts).
 */
import { NodePrepError } from '../errors.ts';

const NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

export class InterruptedError extends NodePrepError {
  override readonly exitCode: number;
  constructor(readonly signalName: string) {
    super('INTERRUPTED', `Stopped by ${signalName}.`, {
      hint: 'What this run had changed was put back (see the report). Run node-prep again to finish.',
      fields: { signal: signalName },
    });
    this.name = 'InterruptedError';
    this.exitCode = 128 + (NUMBERS[signalName] ?? 0);
  }
}

const controller = new AbortController();

/** Aborted (with an InterruptedError as its reason) once a watched signal arrived. */
export const interruptSignal: AbortSignal = controller.signal;

/** Throw the InterruptedError if a signal arrived: call at every safe point. */
export function throwIfInterrupted(): void {
  if (controller.signal.aborted) throw controller.signal.reason;
}

/** Start turning the signals into the abort; returns the function that stops it. */
export function watchSignals(onSecond: (code: number) => void = (code) => process.exit(code)): () => void {
  const handler = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) return onSecond(128 + (NUMBERS[name] ?? 0));
    controller.abort(new InterruptedError(name));
  };
  const names = Object.keys(NUMBERS) as NodeJS.Signals[];
  for (const n of names) process.on(n, handler);
  return () => {
    for (const n of names) process.off(n, handler);
  };
}
