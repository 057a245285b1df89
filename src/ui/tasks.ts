/**
 * The task tree: listr2 renders the phases of a command. On a terminal it is a live tree with
 * per-download progress; without a TTY, or with CI set, plain timestamped lines; with --json or
 * --quiet nothing. It always writes to stderr: stdout is kept for the result.
 */
import { Listr, ListrLogger, PRESET_TIMER, PRESET_TIMESTAMP, ProcessOutput, type ListrTask } from 'listr2';

export type OutputMode = 'tree' | 'lines' | 'silent';

export interface Phase {
  title: string;
  /**
   * Returns a short result for the title ("3 downloaded, 2 from cache"), or `{ skipped }` when the
   * phase found it could not do its work here: shown as skipped, not as done.
   */
  run: (update: (text: string) => void) => Promise<string | void | { skipped: string }>;
  skip?: () => string | false;
}

export function outputMode(opts: { json: boolean; quiet: boolean; ci: boolean; isTTY: boolean }): OutputMode {
  if (opts.json || opts.quiet) return 'silent';
  return opts.isTTY && !opts.ci ? 'tree' : 'lines';
}

export async function runPhases(phases: Phase[], mode: OutputMode): Promise<void> {
  const processOutput = new ProcessOutput(process.stderr, process.stderr);
  const tasks: ListrTask[] = phases.map((p) => ({
    title: p.title,
    skip: () => p.skip?.() ?? false,
    task: async (_ctx, task) => {
      const result = await p.run((text) => {
        task.output = text;
      });
      if (typeof result === 'object') task.skip(result.skipped);
      else if (result) task.title = `${p.title}: ${result}`;
    },
  }));
  const list = new Listr(tasks, {
    concurrent: false,
    exitOnError: true,
    // node-prep handles SIGINT/SIGTERM/SIGHUP itself (util/interrupt.ts): it rolls back, then exits.
    registerSignalListeners: false,
    renderer: mode === 'tree' ? 'default' : mode === 'lines' ? 'simple' : 'silent',
    rendererOptions:
      mode === 'tree'
        ? { collapseSubtasks: false, collapseSkips: false, suffixSkips: true, showErrorMessage: false, outputBar: Infinity, persistentOutput: false, logger: new ListrLogger({ processOutput }) }
        : { timestamp: PRESET_TIMESTAMP, timer: PRESET_TIMER, logger: new ListrLogger({ processOutput }) },
  } as never);
  await list.run();
}
