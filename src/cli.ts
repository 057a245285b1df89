/**
 * The command line: argv in, exit code out. Only option parsing and help are loaded up front; each
 * command's code is imported when that command runs, so `--help` and `--version` start fast.
 */
import { helpFor } from './cli/help.ts';
import { parseArgv } from './cli/options.ts';
import { type Options } from './commands/options.ts';
import { explainSystemError, NodePrepError } from './errors.ts';
import type { Emit } from './events.ts';
import { printableLines } from './util/printable.ts';
import { InterruptedError, interruptSignal, watchSignals } from './util/interrupt.ts';
import { VERSION } from './version.ts';

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export async function main(argv: string[], env: Record<string, string | undefined>, io: Io = processIo): Promise<number> {
  let json = argv.includes('--json');
  let verbose = argv.includes('--verbose');
  let stopWatching: (() => void) | undefined;
  try {
    const parsed = parseArgv(argv, env);
    if (parsed.kind === 'help') {
      if (parsed.noCommand) {
        io.stderr(helpFor(undefined));
        return 2;
      }
      io.stdout(helpFor(parsed.command));
      return 0;
    }
    if (parsed.kind === 'version') {
      io.stdout(`${VERSION}\n`);
      return 0;
    }
    json = parsed.options.json;
    verbose = parsed.options.verbose;
    // Only install turns a signal into a rollback at its next safe point; the other commands end on
    // it at once, as before (they change nothing a signal could leave half done, or, as uninstall,
    // are repaired by the next run).
    if (parsed.options.command === 'install' && !parsed.options.dryRun) stopWatching = watchSignals();
    const result = await run(parsed.options, io);
    // JSON escapes control characters itself; text shows them as visible escapes.
    io.stdout(json ? `${JSON.stringify(result.data, null, 2)}\n` : printableLines(result.text));
    return result.exitCode ?? 0;
  } catch (err) {
    return reportError(asInterrupted(err), { json, verbose }, io);
  } finally {
    stopWatching?.();
  }
}

/** After a signal, whatever error the run ended with is reported as the interruption it was (130, 143, 129). */
function asInterrupted(err: unknown): unknown {
  if (!interruptSignal.aborted || err instanceof InterruptedError) return err;
  // Putting back what the run changed failed: that, not the signal, is what the user must read.
  if (err instanceof NodePrepError && err.code.startsWith('ROLLBACK')) return err;
  const stopped = interruptSignal.reason as InterruptedError;
  if (err instanceof NodePrepError) {
    Object.assign(stopped.fields, { ...err.fields, stoppedIn: err.message });
  }
  return stopped;
}

async function run(options: Options, io: Io): Promise<{ data: unknown; text: string; exitCode?: number }> {
  // The root is opened once, first: whoever owns a folder above it cannot swap it mid-run.
  if (options.root !== '/') {
    const { pinRoot } = await import('./install/root-fs.ts');
    await pinRoot(options.root, { create: options.command === 'install' && !options.dryRun });
  }
  const { createContext } = await import('./commands/context.ts');
  const ctx = await createContext(options);
  try {
    switch (options.command) {
      case 'plan':
      case 'install': {
        if (options.command === 'install' && !options.dryRun) {
          const { installCommand } = await import('./commands/install.ts');
          const { outputMode } = await import('./ui/tasks.ts');
          const mode = outputMode({ json: options.json, quiet: options.quiet, ci: options.ci, isTTY: Boolean(process.stderr.isTTY) });
          const { report, text } = await installCommand(ctx, mode, mode === 'lines' && options.verbose ? lineReporter(options, io) : () => {});
          return { data: report, text };
        }
        const { planBlocked, planCommand } = await import('./commands/plan.ts');
        const { publicPlan } = await import('./plan/render.ts');
        const { plan, text } = await planCommand(ctx, true);
        return { data: publicPlan(plan, options.showPrivate), text, exitCode: planBlocked(plan) ? 1 : 0 };
      }
      case 'versions': {
        const { versionsCommand } = await import('./commands/versions.ts');
        const { report, text } = await versionsCommand(ctx);
        return { data: report, text };
      }
      case 'download': {
        const { downloadCommand } = await import('./commands/download.ts');
        const { lock, text } = await downloadCommand(ctx, lineReporter(options, io));
        return { data: lock, text };
      }
      case 'status': {
        const { statusCommand } = await import('./commands/status.ts');
        const { report, text } = await statusCommand(ctx);
        return { data: report, text, exitCode: options.check && report.drift.length > 0 ? 1 : 0 };
      }
      case 'uninstall': {
        const { uninstallCommand } = await import('./commands/uninstall.ts');
        // Asked on a terminal only; a run without one (CI, a pipe) must say --yes.
        const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY) && !options.json;
        const { report, text } = await uninstallCommand(ctx, lineReporter(options, io), interactive ? askOnTerminal : undefined);
        return { data: report, text };
      }
      case 'smoke': {
        const { smokeCommand } = await import('./commands/smoke.ts');
        const { report, text, exitCode } = await smokeCommand(ctx);
        return { data: report, text, exitCode };
      }
      case 'doctor': {
        const { doctorCommand } = await import('./commands/doctor.ts');
        const { report, text, exitCode } = await doctorCommand(ctx);
        return { data: report, text, exitCode };
      }
    }
  } finally {
    await ctx.close();
  }
}

/** A yes/no question on the terminal (stderr), the answer read from stdin; anything but y/yes is no. */
async function askOnTerminal(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `, { signal: interruptSignal });
    return /^y(es)?$/i.test(answer.trim());
  } catch {
    return false;
  } finally {
    rl.close();
  }
}

/** Plain progress lines on stderr (stdout stays for the result, and for --json). */
function lineReporter(options: Options, io: Io): Emit {
  return (e) => {
    if (options.quiet) return;
    switch (e.type) {
      case 'download:start':
        io.stderr(`download ${e.artifact}\n`);
        break;
      case 'download:retry':
        io.stderr(`retry    ${e.artifact} (attempt ${e.attempt}: ${printableLines(e.reason)})\n`);
        break;
      case 'download:done':
        io.stderr(`${e.source === 'cache' ? 'cached  ' : 'verified'} ${e.artifact}\n`);
        break;
      case 'warn':
        io.stderr(`warning: ${printableLines(e.message)}\n`);
        break;
      default:
        if (options.verbose && e.type !== 'download:progress') io.stderr(`${JSON.stringify(e)}\n`);
    }
  };
}

function reportError(raw: unknown, flags: { json: boolean; verbose: boolean }, io: Io): number {
  const err = explainSystemError(raw);
  const known = err instanceof NodePrepError ? err : undefined;
  const code = known?.exitCode ?? 1;
  if (flags.json) {
    const error = known ? known.toJSON() : { code: 'INTERNAL', message: String((err as Error)?.message ?? err) };
    io.stdout(`${JSON.stringify({ kind: 'error', exitCode: code, error }, null, 2)}\n`);
  }
  const message = known ? known.message : `unexpected error: ${(err as Error)?.message ?? String(err)}`;
  // A message may quote a server (an error page, a tag): no control character reaches the terminal.
  io.stderr(`node-prep: ${printableLines(message)}\n`);
  if (known?.hint) io.stderr(`  ${printableLines(known.hint)}\n`);
  if (flags.verbose && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
  else if (!known) io.stderr('  Run again with --verbose for details.\n');
  return code;
}
