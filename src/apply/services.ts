/**
 * containerd as a service. With systemd as PID 1 on the live host: daemon-reload when the unit
 * changed, enable, and (re)start only when its binary, config or unit changed or it is not running;
 * then wait until the socket and the CRI API answer. Under --root the unit is enabled through its
 * wants symlink inside the image. Anywhere else nothing is started, and the report says why.
 */
import path from 'node:path';
import { NODE_PATHS, SOCKET, UNIT_START_TIMEOUT_S, WANTS_LINK } from '../node/paths.ts';
import { NodePrepError } from '../errors.ts';
import type { Exec } from '../exec/exec.ts';
import { NotAFolderError, OutsideRootError, RootFs, splitNodePath } from '../install/root-fs.ts';

export type ServiceReport =
  | { kind: 'skipped'; reason: string }
  | { kind: 'enabled-in-image'; link: string; created: boolean; reason: string }
  | { kind: 'running'; restarted: boolean; enabled: boolean; reloaded: boolean; startAttempts?: number };

/** A start or restart waits for systemd's verdict: the unit's TimeoutStartSec, and a margin beyond it. */
export const START_VERDICT_MS = (UNIT_START_TIMEOUT_S + 30) * 1000;

/** Poll until the CRI API answers on the socket, or time out with the last error. */
export async function waitForCri(socket: string, timeoutMs: number): Promise<void> {
  const { criVersion } = await import('../smoke/cri.ts');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await criVersion(socket, { timeoutMs: 2_000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}


/**
 * The unit's wants link now. Any link to a `containerd.service` (a distro package's in /lib) already
 * enables the unit: systemd resolves the name, and /etc/systemd/system wins over /lib.
 */
export async function wantsLinkState(root: string): Promise<'absent' | 'enabled' | 'conflict'> {
  return (await wantsLink(root)).state;
}

/** The wants link's state, and for a conflict what is in the way (for people); read inside the root. */
export async function wantsLink(root: string): Promise<{ state: 'absent' | 'enabled' | 'conflict'; why?: string }> {
  const fs = await RootFs.openExisting(root);
  if (!fs) return { state: 'absent' };
  const { dir, name } = splitNodePath(WANTS_LINK);
  try {
    const d = await fs.dirIfPresent(dir).catch((err: unknown) => {
      if (err instanceof OutsideRootError) return { why: `${dir} is behind the symlink ${String(err.fields.path)} -> ${String(err.fields.target)}, which leads outside the root` };
      if (err instanceof NotAFolderError) return { why: `${dir} is not a folder` };
      throw err;
    });
    if (d === undefined) return { state: 'absent' };
    if ('why' in d) return { state: 'conflict', why: d.why };
    try {
      const st = await d.lstat(name);
      if (!st) return { state: 'absent' };
      if (st.isSymbolicLink() && path.posix.basename(await d.readlink(name)) === 'containerd.service') return { state: 'enabled' };
      return { state: 'conflict', why: `${WANTS_LINK} exists and is not a link to a containerd.service` };
    } finally {
      await d.close();
    }
  } finally {
    await fs.close();
  }
}

/** `systemctl enable` for an image: the same symlink it would make, made inside DIR. */
export async function enableInImage(root: string): Promise<{ link: string; created: boolean }> {
  const state = await wantsLinkState(root);
  if (state === 'enabled') return { link: WANTS_LINK, created: false };
  if (state === 'conflict') {
    const { why } = await wantsLink(root);
    throw new NodePrepError('INSTALL_TARGET', `Cannot enable the unit in ${root}: ${why ?? `${WANTS_LINK} is in the way`}.`, { hint: 'Move it aside and run again.' });
  }
  const { dir, name } = splitNodePath(WANTS_LINK);
  await RootFs.with(root, {}, (fs) => fs.withDir(dir, { create: true }, (d) => d.symlink(NODE_PATHS.containerdUnit, name)));
  return { link: WANTS_LINK, created: true };
}

/** Remove the wants link this run made (a rollback). */
export async function removeWantsLink(root: string): Promise<void> {
  const { dir, name } = splitNodePath(WANTS_LINK);
  const fs = await RootFs.openExisting(root);
  if (!fs) return;
  try {
    const d = await fs.dirIfPresent(dir);
    if (d && (await d.lstat(name))?.isSymbolicLink()) await d.unlink(name);
    await d?.close();
  } finally {
    await fs.close();
  }
}

/** Whether the unit or a drop-in of it (containerd.service.d/, the proxy's) is among the changed files: systemd must reload. */
export function unitFilesChanged(unit: string, changed: Array<{ path: string }>): boolean {
  return changed.some((c) => c.path === unit || c.path.startsWith(`${unit}.d/`));
}

export interface LiveServiceInput {
  exec: Exec;
  /** false (--no-start): reload and enable only. */
  start: boolean;
  unitChanged: boolean;
  /** binary, runc or config changed: a running containerd must restart to use them. */
  restartNeeded: boolean;
  waitReady: (timeoutMs: number) => Promise<void>;
  /** Whether something already answers on containerd's socket. */
  socketAnswers: () => Promise<boolean>;
}

export async function runLiveService(input: LiveServiceInput): Promise<ServiceReport> {
  const systemctl = (...args: string[]) => input.exec.run('systemctl', args, { timeoutMs: 60_000 });
  let reloaded = false;
  if (input.unitChanged) {
    await check(await systemctl('daemon-reload'), 'systemctl daemon-reload');
    reloaded = true;
  }
  const enabled = (await systemctl('is-enabled', '--quiet', 'containerd')).exitCode === 0;
  if (!enabled) await check(await systemctl('enable', 'containerd'), 'systemctl enable containerd');
  if (!input.start) return { kind: 'skipped', reason: '--no-start: enabled for the next boot, not started' };
  const active = (await systemctl('is-active', '--quiet', 'containerd')).exitCode === 0;
  if (!active && (await input.socketAnswers())) {
    // Another containerd (Docker's own unit, a hand-started one) holds the socket: starting ours would fail.
    throw new NodePrepError('SOCKET_IN_USE', `${SOCKET} is already served by a containerd that the containerd unit did not start.`, {
      hint: 'Stop it first (e.g. `systemctl stop docker containerd.io` or kill the hand-started containerd), then run node-prep again.',
      fields: { socket: SOCKET },
    });
  }
  const restart = input.restartNeeded || input.unitChanged || !active;
  if (restart) {
    // Not systemctl's 60 s default client wait: a containerd that hangs is ended by systemd itself
    // (TimeoutStartSec in the unit), and only that verdict says whether the start job is over.
    const r = await input.exec.run('systemctl', [active ? 'restart' : 'start', 'containerd'], { timeoutMs: START_VERDICT_MS });
    if (r.exitCode !== 0) throw await startFailure(input.exec, `systemctl ${active ? 'restart' : 'start'} containerd`, r.stderr);
  }
  try {
    await input.waitReady(60_000);
  } catch (err) {
    throw await startFailure(input.exec, 'waiting for containerd to answer on its socket', (err as Error).message);
  }
  return { kind: 'running', restarted: restart, enabled: true, reloaded };
}

/** Stop and disable containerd (a first install that did not pass its smoke test). */
export async function stopService(exec: Exec): Promise<void> {
  await exec.run('systemctl', ['disable', '--now', 'containerd'], { timeoutMs: 120_000 });
  await exec.run('systemctl', ['daemon-reload'], { timeoutMs: 60_000 });
}

async function check(r: { exitCode?: number | undefined; stderr: unknown }, what: string): Promise<void> {
  if (r.exitCode !== 0) {
    throw new NodePrepError('SERVICE', `${what} failed: ${String(r.stderr).trim().split('\n').pop() ?? ''}`, {
      hint: 'Check `systemctl status containerd` and `journalctl -u containerd`.',
    });
  }
}

/** Explain a failed start with the last lines of containerd's journal. */
async function startFailure(exec: Exec, what: string, stderr: unknown): Promise<NodePrepError> {
  const journal = await exec.run('journalctl', ['-u', 'containerd', '-n', '15', '--no-pager', '-o', 'cat'], { timeoutMs: 15_000 });
  const lines = String(journal.stdout ?? '').trim().split('\n').filter(Boolean).slice(-15);
  // systemctl's own sentence ends with a period; ours adds one.
  const why = String(stderr).trim().split('\n').pop()?.replace(/\.+$/, '') ?? '';
  return new NodePrepError('SERVICE', `${what} failed${why ? `: ${why}` : ''}.`, {
    hint: lines.length > 0 ? `containerd's journal ends with:\n    ${lines.join('\n    ')}` : 'See `journalctl -u containerd`.',
    fields: { journal: lines },
  });
}
