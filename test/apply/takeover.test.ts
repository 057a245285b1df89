/**
 * Giving a distribution's containerd back on uninstall: what systemctl is asked, from the unit as the
 * first install found it (a pure decision; the booted-host check belongs to the VM harness).
 */
import { describe, expect, it } from 'vitest';
import { foreignUnit, parseShow, readUnit, uninstallCalls } from '../../src/apply/takeover.ts';
import { recordingExec } from '../support/recording-exec.ts';

const debian = { fragmentPath: '/lib/systemd/system/containerd.service', unitFileState: 'enabled', activeState: 'active' };

describe('the unit as found', () => {
  it('reads systemctl show', async () => {
    const exec = recordingExec(() => ({ stdout: 'FragmentPath=/lib/systemd/system/containerd.service\nUnitFileState=enabled\nActiveState=active\n' }));
    expect(await readUnit(exec)).toEqual(debian);
    expect(exec.calls).toEqual(['systemctl show containerd --property=FragmentPath,UnitFileState,ActiveState']);
    expect(parseShow('FragmentPath=\nUnitFileState=\nActiveState=inactive\n')).toEqual({ fragmentPath: '', unitFileState: '', activeState: 'inactive' });
  });

  it('a package unit, or one made by hand where node-prep\'s goes, is the host\'s; none is not', () => {
    expect(foreignUnit(debian)).toBe(true);
    // Found before node-prep's first install, so not node-prep's: backed up, restored, given back.
    expect(foreignUnit({ ...debian, fragmentPath: '/etc/systemd/system/containerd.service' })).toBe(true);
    expect(foreignUnit({ ...debian, fragmentPath: '' })).toBe(false);
    expect(foreignUnit(undefined)).toBe(false);
  });
});

describe('uninstall gives the package\'s containerd back as it was', () => {
  it('enabled and running: disabled and stopped first, then enabled and started again from its own unit', () => {
    expect(uninstallCalls(debian)).toEqual({
      before: [['disable', '--now', 'containerd']],
      after: [['daemon-reload'], ['enable', 'containerd'], ['start', 'containerd']],
    });
  });

  it('installed but disabled and stopped: left disabled and stopped', () => {
    expect(uninstallCalls({ ...debian, unitFileState: 'disabled', activeState: 'inactive' }).after).toEqual([['daemon-reload']]);
  });

  it('no unit before node-prep: disabled and stopped, and no unit left to start', () => {
    expect(uninstallCalls(undefined)).toEqual({ before: [['disable', '--now', 'containerd']], after: [['daemon-reload']] });
  });
});
