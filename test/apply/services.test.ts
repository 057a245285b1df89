/**
 * The live-host service logic (daemon-reload, enable, restart only on change, a busy socket, the
 * journal on failure) against a stand-in `systemctl` on PATH: this machine has no systemd as PID 1,
 * so the real one cannot run. The stand-in records each call and answers from a state file; what is
 * tested is node-prep's choice of calls, not systemd.
 */
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runLiveService, type LiveServiceInput } from '../../src/apply/services.ts';
import { NodePrepError } from '../../src/errors.ts';

let dir: string;
let savedPath: string | undefined;

/** state: "active enabled" words; `fail` lists subcommands that exit 1. */
async function standIn(state: { active: boolean; enabled: boolean; fail?: string[] }): Promise<void> {
  await writeFile(path.join(dir, 'state'), `${state.active ? 'active' : ''} ${state.enabled ? 'enabled' : ''} ${(state.fail ?? []).join(' ')}`);
  const script = `#!/bin/sh
# node-prep test stand-in for systemctl: records its arguments, answers from ./state
echo "$*" >> "${dir}/calls"
state=$(cat "${dir}/state")
case " $state " in *" fail-$1 "*) echo "stand-in: $1 failed" >&2; exit 1;; esac
case "$1" in
  is-active) case " $state " in *" active "*) exit 0;; *) exit 3;; esac;;
  is-enabled) case " $state " in *" enabled "*) exit 0;; *) exit 1;; esac;;
esac
exit 0
`;
  await writeFile(path.join(dir, 'systemctl'), script);
  await writeFile(path.join(dir, 'journalctl'), '#!/bin/sh\necho "containerd: level=fatal msg=\\"stand-in journal line\\""\n');
  await chmod(path.join(dir, 'systemctl'), 0o755);
  await chmod(path.join(dir, 'journalctl'), 0o755);
}

const calls = async () => (await readFile(path.join(dir, 'calls'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
const input = (over: Partial<LiveServiceInput> = {}): LiveServiceInput => ({
  start: true,
  unitChanged: false,
  restartNeeded: false,
  waitReady: async () => undefined,
  socketAnswers: async () => false,
  ...over,
});

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-systemctl-'));
  savedPath = process.env.PATH;
  process.env.PATH = `${dir}:${savedPath}`;
});
afterEach(() => {
  process.env.PATH = savedPath;
});

describe('runLiveService', () => {
  it('first install: reload, enable, start, wait', async () => {
    await standIn({ active: false, enabled: false });
    const r = await runLiveService(input({ unitChanged: true, restartNeeded: true }));
    expect(r).toEqual({ kind: 'running', restarted: true, enabled: true, reloaded: true });
    expect(await calls()).toEqual(['daemon-reload', 'is-enabled --quiet containerd', 'enable containerd', 'is-active --quiet containerd', 'start containerd']);
  });

  it('nothing changed and containerd runs: restarts nothing', async () => {
    await standIn({ active: true, enabled: true });
    const r = await runLiveService(input());
    expect(r).toEqual({ kind: 'running', restarted: false, enabled: true, reloaded: false });
    expect(await calls()).toEqual(['is-enabled --quiet containerd', 'is-active --quiet containerd']);
  });

  it('a new binary restarts a running containerd without a daemon-reload', async () => {
    await standIn({ active: true, enabled: true });
    await runLiveService(input({ restartNeeded: true }));
    expect(await calls()).toContain('restart containerd');
    expect(await calls()).not.toContain('daemon-reload');
  });

  it('--no-start enables and starts nothing', async () => {
    await standIn({ active: false, enabled: false });
    const r = await runLiveService(input({ start: false, unitChanged: true }));
    expect(r.kind).toBe('skipped');
    expect(await calls()).toEqual(['daemon-reload', 'is-enabled --quiet containerd', 'enable containerd']);
  });

  it('refuses to start when another containerd already answers on the socket', async () => {
    await standIn({ active: false, enabled: true });
    const err = await runLiveService(input({ socketAnswers: async () => true })).catch((e) => e);
    expect(err).toBeInstanceOf(NodePrepError);
    expect(err.code).toBe('SOCKET_IN_USE');
    expect(await calls()).not.toContain('start containerd');
  });

  it('a failed start says so with the last lines of the journal', async () => {
    await standIn({ active: false, enabled: true, fail: ['fail-start'] });
    const err = await runLiveService(input({ restartNeeded: true })).catch((e) => e);
    expect(err).toBeInstanceOf(NodePrepError);
    expect(err.message).toContain('systemctl start containerd failed: stand-in: start failed');
    expect(err.hint).toContain('stand-in journal line');
  });

  it('a containerd that starts but never answers fails with the journal too', async () => {
    await standIn({ active: false, enabled: true });
    const err = await runLiveService(input({ restartNeeded: true, waitReady: async () => { throw new Error('no answer within 60000 ms'); } })).catch((e) => e);
    expect(err.message).toContain('waiting for containerd to answer on its socket failed: no answer within 60000 ms');
    expect(err.hint).toContain('stand-in journal line');
  });
});
