import { describe, expect, it } from 'vitest';
import { describeRestore } from '../../src/commands/install.ts';

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
