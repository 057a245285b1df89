/**
 * Taking over a containerd unit that was already there (a distribution's package: Debian's
 * containerd, Docker's containerd.io) and giving it back. The first install on a live host with
 * systemd records the unit as it found it: whose unit file, enabled or not, running or not.
 * node-prep's unit in /etc/systemd/system then wins over the package's in /lib; uninstall removes it
 * and puts the package's back as it was (enabled and running again, its config restored from the
 * backup), instead of `systemctl disable --now`, which would take the host's container runtime away
 * now and at every boot.
 */
import type { Exec } from '../exec/exec.ts';

export interface FoundUnit {
  /** The unit file systemd used (`FragmentPath`); '' when there was none. */
  fragmentPath: string;
  /** `UnitFileState`: enabled, disabled, static, masked, ... ('' when not found). */
  unitFileState: string;
  /** `ActiveState`: active, inactive, failed, ... */
  activeState: string;
}

/** `systemctl show` key=value lines, as the unit is now. */
export function parseShow(text: string): FoundUnit {
  const v = Object.fromEntries(text.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const).filter(([k]) => k !== ''));
  return { fragmentPath: v.FragmentPath ?? '', unitFileState: v.UnitFileState ?? '', activeState: v.ActiveState ?? '' };
}

export async function readUnit(exec: Exec): Promise<FoundUnit | undefined> {
  const r = await exec.run('systemctl', ['show', 'containerd', '--property=FragmentPath,UnitFileState,ActiveState'], { timeoutMs: 30_000 });
  return r.exitCode === 0 ? parseShow(String(r.stdout)) : undefined;
}

/**
 * A containerd unit was there before node-prep's first install: a package's in /lib, or one made by
 * hand in /etc/systemd/system (which install backs up and uninstall restores). Either is the host's,
 * to give back as it was.
 */
export function foreignUnit(found: FoundUnit | undefined): found is FoundUnit {
  return found !== undefined && found.fragmentPath !== '';
}

/**
 * The systemctl calls of an uninstall on a live host: before the files go, and after (when node-prep's
 * unit is gone and the package's config restored).
 */
export function uninstallCalls(found: FoundUnit | undefined): { before: string[][]; after: string[][] } {
  // Stop node-prep's containerd and drop its enablement (its wants link points at node-prep's unit).
  const before = [['disable', '--now', 'containerd']];
  const after: string[][] = [['daemon-reload']];
  if (!foreignUnit(found)) return { before, after };
  // The package's unit is the one systemd finds now: enabled and started again as it was.
  if (found.unitFileState === 'enabled') after.push(['enable', 'containerd']);
  if (found.activeState === 'active' || found.activeState === 'activating' || found.activeState === 'reloading') after.push(['start', 'containerd']);
  return { before, after };
}
