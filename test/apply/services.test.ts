/**
 * The live-host service logic (daemon-reload, enable, restart only on change, a busy socket, the
 * journal on failure) with a recording Exec that answers as systemd would: what is tested is
 * node-prep's choice of calls, not systemd (no systemd runs as PID 1 on the test machines).
 */
import { describe, expect, it } from 'vitest';
import { runLiveService, START_VERDICT_MS, unitFilesChanged, type LiveServiceInput } from '../../src/apply/services.ts';
import { UNIT_START_TIMEOUT_S } from '../../src/node/paths.ts';
import { NodePrepError } from '../../src/errors.ts';
import { recordingExec, type RecordingExec } from '../support/recording-exec.ts';

let exec: RecordingExec;

/** systemd as the test says it is: `fail` lists subcommands that exit 1. */
function systemd(state: { active: boolean; enabled: boolean; fail?: string[] }): void {
  exec = recordingExec((file, args) => {
    if (file === 'journalctl') return { stdout: 'containerd: level=fatal msg="recorded journal line"\n' };
    const [sub] = args;
    if (state.fail?.includes(sub!)) return { exitCode: 1, stderr: `systemctl: ${sub} failed\n` };
    if (sub === 'is-active') return { exitCode: state.active ? 0 : 3 };
    if (sub === 'is-enabled') return { exitCode: state.enabled ? 0 : 1 };
    return {};
  });
}

/** The systemctl calls, without the command name. */
const calls = async () => exec.calls.filter((c) => c.startsWith('systemctl ')).map((c) => c.slice('systemctl '.length));
const input = (over: Partial<LiveServiceInput> = {}): LiveServiceInput => ({
  exec,
  start: true,
  unitChanged: false,
  restartNeeded: false,
  waitReady: async () => undefined,
  socketAnswers: async () => false,
  ...over,
});

describe('runLiveService', () => {
  it('first install: reload, enable, start, wait', async () => {
    systemd({ active: false, enabled: false });
    const r = await runLiveService(input({ unitChanged: true, restartNeeded: true }));
    expect(r).toEqual({ kind: 'running', restarted: true, enabled: true, reloaded: true });
    expect(await calls()).toEqual(['daemon-reload', 'is-enabled --quiet containerd', 'enable containerd', 'is-active --quiet containerd', 'start containerd']);
  });

  it('waits for systemd\'s verdict on a start: longer than the unit\'s own TimeoutStartSec', async () => {
    systemd({ active: true, enabled: true });
    await runLiveService(input({ restartNeeded: true }));
    const i = exec.calls.indexOf('systemctl restart containerd');
    expect(exec.timeouts[i]).toBe(START_VERDICT_MS);
    expect(START_VERDICT_MS).toBeGreaterThan(UNIT_START_TIMEOUT_S * 1000);
  });

  it('nothing changed and containerd runs: restarts nothing', async () => {
    systemd({ active: true, enabled: true });
    const r = await runLiveService(input());
    expect(r).toEqual({ kind: 'running', restarted: false, enabled: true, reloaded: false });
    expect(await calls()).toEqual(['is-enabled --quiet containerd', 'is-active --quiet containerd']);
  });

  it('a new binary restarts a running containerd without a daemon-reload', async () => {
    systemd({ active: true, enabled: true });
    await runLiveService(input({ restartNeeded: true }));
    expect(await calls()).toContain('restart containerd');
    expect(await calls()).not.toContain('daemon-reload');
  });

  it('--no-start enables and starts nothing', async () => {
    systemd({ active: false, enabled: false });
    const r = await runLiveService(input({ start: false, unitChanged: true }));
    expect(r.kind).toBe('skipped');
    expect(await calls()).toEqual(['daemon-reload', 'is-enabled --quiet containerd', 'enable containerd']);
  });

  it('refuses to start when another containerd already answers on the socket', async () => {
    systemd({ active: false, enabled: true });
    const err = await runLiveService(input({ socketAnswers: async () => true })).catch((e) => e);
    expect(err).toBeInstanceOf(NodePrepError);
    expect(err.code).toBe('SOCKET_IN_USE');
    expect(await calls()).not.toContain('start containerd');
  });

  it('a failed start says so with the last lines of the journal', async () => {
    systemd({ active: false, enabled: true, fail: ['start'] });
    const err = await runLiveService(input({ restartNeeded: true })).catch((e) => e);
    expect(err).toBeInstanceOf(NodePrepError);
    expect(err.message).toContain('systemctl start containerd failed: systemctl: start failed');
    expect(err.hint).toContain('recorded journal line');
  });

  it('systemctl\'s own closing period is not doubled', async () => {
    exec = recordingExec((file, args) => {
      if (file === 'journalctl') return {};
      if (args[0] === 'start') {
        return { exitCode: 1, stderr: 'Job for containerd.service failed because the control process exited with error code.\nSee "systemctl status containerd.service" and "journalctl -xeu containerd.service" for details.\n' };
      }
      return { exitCode: args[0] === 'is-enabled' ? 0 : 3 };
    });
    const err = await runLiveService(input({ restartNeeded: true })).catch((e) => e);
    expect(err.message).toBe('systemctl start containerd failed: See "systemctl status containerd.service" and "journalctl -xeu containerd.service" for details.');
  });

  it('a containerd that starts but never answers fails with the journal too', async () => {
    systemd({ active: false, enabled: true });
    const err = await runLiveService(input({ restartNeeded: true, waitReady: async () => { throw new Error('no answer within 60000 ms'); } })).catch((e) => e);
    expect(err.message).toContain('waiting for containerd to answer on its socket failed: no answer within 60000 ms');
    expect(err.hint).toContain('recorded journal line');
  });
});

describe('unitFilesChanged', () => {
  const unit = '/etc/systemd/system/containerd.service';
  it.each([
    [[], false],
    [[{ path: '/etc/containerd/config.toml' }, { path: '/etc/containerd/certs.d/docker.io/hosts.toml' }], false],
    [[{ path: unit }], true],
    [[{ path: `${unit}.d/http-proxy.conf` }], true],
    [[{ path: `${unit}-other` }], false],
  ])('%j → %s', (changed, want) => {
    expect(unitFilesChanged(unit, changed)).toBe(want);
  });
});
