/** The installed binaries, where node-prep puts them, and the checks that they run and are the right version. */
import path from 'node:path';
import { inRoot } from '../node/paths.ts';
import type { Exec } from '../exec/exec.ts';
import { runTool } from './exec.ts';
import { fail, pass, type CheckOutcome } from './types.ts';
import { matchVersion } from './version.ts';

export interface InstalledBinaries {
  binDir: string;
  sbinDir: string;
  containerd: string;
  ctr: string;
  runc: string;
  nerdctl: string;
}

/** Paths as seen from this host (inside --root), or in `dirs` (the smoke test's private copies). */
export function installedBinaries(root: string, prefix: string, dirs?: { binDir: string; sbinDir: string }): InstalledBinaries {
  const binDir = dirs?.binDir ?? inRoot(root, path.posix.join(prefix, 'bin'));
  const sbinDir = dirs?.sbinDir ?? inRoot(root, path.posix.join(prefix, 'sbin'));
  return {
    binDir,
    sbinDir,
    containerd: path.join(binDir, 'containerd'),
    ctr: path.join(binDir, 'ctr'),
    runc: path.join(sbinDir, 'runc'),
    nerdctl: path.join(binDir, 'nerdctl'),
  };
}

export interface VersionCheck {
  outcome: CheckOutcome;
  /** The binary executed (its version may still be wrong): checks that use it can go on. */
  runnable: boolean;
}

/**
 * `<binary> <args>` must run and print `expected` (x.y.z compared). `tool` names the binary in every
 * message, so a failure says "runc: ... does not exist" rather than a bare path.
 */
export async function checkVersion(exec: Exec, tool: string, binary: string, args: string[], expected: string, timeoutMs: number): Promise<VersionCheck> {
  const run = await runTool(exec, binary, args, { timeoutMs });
  if (!run.ok) return { outcome: fail(`${tool}: ${run.why}`), runnable: !run.notRunnable };
  const output = `${run.stdout}\n${run.stderr}`;
  const standIn = /stand-in/i.test(output) ? ' (it says it is a stand-in)' : '';
  const match = matchVersion(expected, run.stdout.trim() === '' ? run.stderr : run.stdout);
  switch (match.kind) {
    case 'match':
      return { outcome: pass(`${tool} ${match.raw} at ${binary}${standIn}`), runnable: true };
    case 'mismatch':
      return { outcome: fail(`${tool} at ${binary} is ${match.raw}, expected ${match.expected}${standIn}`), runnable: true };
    case 'unreadable':
      return { outcome: fail(`${tool} at ${binary}: no version in the output of \`${[path.basename(binary), ...args].join(' ')}\` (${JSON.stringify(match.raw)})`), runnable: true };
  }
}
