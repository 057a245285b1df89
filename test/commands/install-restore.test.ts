import { describe, expect, it } from 'vitest';
import { describeRestore, restorePrevious } from '../../src/commands/install.ts';
import { NodePrepError } from '../../src/errors.ts';
import { recordingExec } from '../support/recording-exec.ts';

describe('what a rollback on a live host says it did', () => {
  it('an upgrade: the previous set is back and running', () => {
    expect(describeRestore({ hadPreviousInstall: true })).toBe('The previous binaries and config were put back and containerd restarted.');
  });
  it('a first install: there was nothing to put back; the new containerd is stopped', () => {
    expect(describeRestore({ hadPreviousInstall: false })).toBe('Nothing had been installed before: the new files were removed and containerd stopped and disabled.');
  });
  it('without systemd running containerd there is no service to restart or stop', () => {
    expect(describeRestore({ hadPreviousInstall: true }, false)).toBe('The previous binaries and config were put back.');
    expect(describeRestore({ hadPreviousInstall: false }, false)).toBe('Nothing had been installed before: the new files were removed.');
  });
});

describe('restorePrevious: the previous containerd running when node-prep exits 1', () => {
  const running = { kind: 'running' as const, restarted: true, enabled: true, reloaded: true };
  const setup = () => {
    const exec = recordingExec();
    let rolledBack = 0;
    const run = { hadPreviousInstall: true, rollback: async () => void rolledBack++ };
    return { exec, run, rolledBack: () => rolledBack };
  };

  it('puts the files back and restarts the previous containerd', async () => {
    const { exec, run, rolledBack } = setup();
    expect(await restorePrevious({ exec }, run, async () => running)).toEqual(running);
    expect(rolledBack()).toBe(1);
    expect(exec.calls).toEqual([]);
  });

  it('a previous containerd that does not come up at once is tried again after reset-failed, and the report says so', async () => {
    const { exec, run } = setup();
    let tries = 0;
    const start = async () => {
      if (++tries === 1) throw new NodePrepError('SERVICE', 'systemctl restart containerd failed: Job for containerd.service canceled.');
      return running;
    };
    expect(await restorePrevious({ exec }, run, start)).toEqual({ ...running, startAttempts: 2 });
    expect(exec.calls).toEqual(['systemctl reset-failed containerd']);
  });

  it('one that does not come up twice: the error says containerd is not running', async () => {
    const { exec, run } = setup();
    const err = await restorePrevious({ exec }, run, async () => {
      throw new NodePrepError('SERVICE', 'systemctl restart containerd failed: start timed out.');
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ROLLBACK_START' });
    expect((err as NodePrepError).hint).toMatch(/containerd is not running/);
  });

  it('after a first install, the new containerd is stopped and disabled', async () => {
    const exec = recordingExec();
    const r = await restorePrevious({ exec }, { hadPreviousInstall: false, rollback: async () => undefined }, async () => running);
    expect(r.kind).toBe('skipped');
    expect(exec.calls).toEqual(['systemctl disable --now containerd', 'systemctl daemon-reload']);
  });
});
