/** Checks against a running containerd: its socket, the CRI API as the kubelet sees it, and the listing tools. */
import { stat } from 'node:fs/promises';
import { criStatus, criVersion, type CriCondition } from './cri.ts';
import type { Exec } from '../exec/exec.ts';
import { runTool } from './exec.ts';
import { connects, sleep } from './host.ts';
import { fail, pass, type CheckOutcome } from './types.ts';
import { matchVersion } from './version.ts';

export interface SocketCheck {
  outcome: CheckOutcome;
  /** Something answers on the socket: the checks that talk to the daemon can run. */
  answered: boolean;
}

/**
 * `ctr version` talks to the daemon: its Server section is what runs, which may not be what is
 * installed (a service not restarted after an upgrade).
 */
export async function checkSocket(exec: Exec, ctr: string, socket: string, expected: string, timeoutMs: number): Promise<SocketCheck> {
  // Asked first because ctr 1.6 waits its full 10 s dial timeout for a socket that is not there.
  const reach = await socketState(socket);
  if (reach !== 'accepts') return { outcome: fail(`containerd does not answer on ${socket}: ${reach}`), answered: false };
  const run = await runTool(exec, ctr, ['--address', socket, 'version'], { timeoutMs });
  if (run.notRunnable) return { outcome: fail(`ctr: ${run.why}; the socket ${socket} accepts connections`), answered: true };
  if (!run.ok) return { outcome: fail(`containerd does not answer on ${socket}: ${run.why}`), answered: false };
  const server = run.stdout.split(/^Server:/m)[1];
  if (server === undefined) return { outcome: fail(`\`ctr version\` printed no Server section for ${socket}`), answered: true };
  const match = matchVersion(expected, server.split('\n').find((l) => /^\s*Version:/.test(l)) ?? '');
  switch (match.kind) {
    case 'match':
      return { outcome: pass(`containerd ${match.raw} answers on ${socket}`), answered: true };
    case 'mismatch':
      return { outcome: fail(`the containerd on ${socket} runs ${match.raw}, but ${match.expected} is installed: restart containerd`), answered: true };
    case 'unreadable':
      return { outcome: fail(`containerd answers on ${socket} but \`ctr version\` shows no server version`), answered: true };
  }
}

async function socketState(socket: string): Promise<string> {
  try {
    if (!(await stat(socket)).isSocket()) return 'it is not a socket';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'the socket does not exist (is containerd running?)' : `cannot stat it (${code})`;
  }
  return (await connects(socket)) ? 'accepts' : 'nothing accepts connections on it (ECONNREFUSED: a stale socket?)';
}

export async function checkCriVersion(socket: string, expected: string, timeoutMs: number): Promise<CheckOutcome> {
  try {
    const v = await criVersion(socket, { timeoutMs });
    const match = matchVersion(expected, v.runtimeVersion);
    const seen = `runtime ${JSON.stringify(v.runtimeName)} ${JSON.stringify(v.runtimeVersion)}, CRI ${v.runtimeApiVersion || '?'}`;
    if (v.runtimeName !== 'containerd') return fail(`runtime.v1 Version on ${socket}: ${seen}, expected runtime name "containerd"`);
    if (match.kind !== 'match') return fail(`runtime.v1 Version on ${socket}: ${seen}, expected version ${expected}`);
    return pass(`runtime.v1 Version: ${seen}`);
  } catch (err) {
    return fail((err as Error).message);
  }
}

const describe = (c: CriCondition) => `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`;

/**
 * runtime.v1 Status: RuntimeReady must be true (a containerd just started may need a moment, so it
 * is asked again until `readyMs`); NetworkReady must be reported. Its value depends on a CNI
 * network config, which the node may not have yet (the kubelet's network add-on writes one).
 */
export async function checkCriStatus(socket: string, callMs: number, readyMs: number): Promise<CheckOutcome> {
  const deadline = Date.now() + readyMs;
  for (;;) {
    let conditions: CriCondition[];
    try {
      conditions = await criStatus(socket, { timeoutMs: callMs });
    } catch (err) {
      return fail((err as Error).message);
    }
    const runtime = conditions.find((c) => c.type === 'RuntimeReady');
    const network = conditions.find((c) => c.type === 'NetworkReady');
    if (runtime?.status === true || Date.now() >= deadline) {
      const all = conditions.map(describe).join(', ') || 'no conditions';
      if (runtime === undefined) return fail(`runtime.v1 Status on ${socket} reports no RuntimeReady condition (${all})`);
      if (!runtime.status) return fail(`runtime.v1 Status on ${socket}: ${describe(runtime)} after ${readyMs / 1000} s`);
      if (network === undefined) return fail(`runtime.v1 Status on ${socket} reports no NetworkReady condition (${all})`);
      return pass(`runtime.v1 Status: ${all}`);
    }
    await sleep(200);
  }
}

/** `ctr -n k8s.io images ls`: only lists. */
export async function checkCtrImages(exec: Exec, ctr: string, socket: string, namespace: string, timeoutMs: number): Promise<CheckOutcome> {
  const run = await runTool(exec, ctr, ['--address', socket, '--namespace', namespace, 'images', 'ls'], { timeoutMs });
  if (!run.ok) return fail(run.why);
  return pass(`\`ctr -n ${namespace} images ls\`: ${count(run.stdout, 'image')}`);
}

/** `nerdctl --namespace k8s.io ps -a`: only lists. */
export async function checkNerdctlPs(exec: Exec, nerdctl: string, socket: string, namespace: string, env: Record<string, string>, timeoutMs: number): Promise<CheckOutcome> {
  const run = await runTool(exec, nerdctl, ['--address', socket, '--namespace', namespace, 'ps', '-a'], { timeoutMs, env });
  if (!run.ok) return fail(`nerdctl: ${run.why}`);
  const standIn = /stand-in/i.test(run.stderr) ? ' (nerdctl says it is a stand-in)' : '';
  return pass(`\`nerdctl --namespace ${namespace} ps -a\`: ${count(run.stdout, 'container')}${standIn}`);
}

/** Rows below the header line of a ctr/nerdctl table. */
function count(table: string, noun: string): string {
  const rows = table.split('\n').filter((l) => l.trim() !== '').length - 1;
  const n = Math.max(0, rows);
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
