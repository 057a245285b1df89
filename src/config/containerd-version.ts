import semver from 'semver';
import { NodePrepError } from '../errors.ts';

/** major.minor of a containerd version ("2.2.0", "v2.1.9", "2.3.0-rc.1", Debian's "2.1.9+ds1"). */
export function containerdLine(version: string): { major: number; minor: number } {
  const parsed = semver.coerce(version);
  if (parsed === null || parsed.major < 1 || (parsed.major === 1 && parsed.minor < 6)) {
    throw new NodePrepError('CONTAINERD_VERSION', `node-prep cannot configure containerd ${JSON.stringify(version)}.`, {
      hint: 'Choose containerd 1.6 or later with --containerd.',
      fields: { version },
    });
  }
  return { major: parsed.major, minor: parsed.minor };
}

/**
 * The config file version to write. 1.x reads version 2. 2.x reads version 3; 2.3 added version 4
 * but still reads 3 and migrates it in memory at every start (one log line), and the CRI tables we
 * write are the same in 3 and 4. The installed config.toml holds no listener settings; v4 moved
 * those ([grpc]/[ttrpc]/[metrics]/[debug] address) into `io.containerd.server.v1.*` plugin
 * sections, so anything that does write them (the smoke test's temporary config, a site drop-in)
 * must use the layout of the version it is in (layout.ts). We stay on 3 for 2.3+: containerd
 * 2.0–2.2 refuse a version 4 file ("expected containerd config version equal to or less than
 * `3`"), so version 3 survives a rollback. Migration logic:
 * https://github.com/containerd/containerd/blob/v2.3.0/cmd/containerd/server/config/config.go
 */
export function containerdConfigVersion(containerdVersion: string): 2 | 3 {
  return containerdLine(containerdVersion).major === 1 ? 2 : 3;
}

/**
 * The pause image each containerd line uses by default (RELEASES.md §9), written explicitly so the
 * node does not depend on a build's default: Debian's containerd 1.6.20 defaults to pause:3.6.
 */
export function defaultSandboxImage(containerdVersion: string): string {
  const { major, minor } = containerdLine(containerdVersion);
  const tag = major === 1 ? '3.8' : major === 2 && minor <= 1 ? '3.10' : major === 2 && minor === 2 ? '3.10.1' : '3.10.2';
  return `registry.k8s.io/pause:${tag}`;
}

/** CNI bin dirs became a list in 2.1 (`bin_dir` is "DEPRECATED … since containerd v2.1"). */
export function usesCniBinDirs(containerdVersion: string): boolean {
  const { major, minor } = containerdLine(containerdVersion);
  return major > 2 || (major === 2 && minor >= 1);
}

/**
 * How containerd's own containerd.service differs per line (RELEASES.md §8): 2.1+ dropped
 * local-fs.target from After= (containerd e0459262b), 2.0 removed LimitNOFILE=infinity
 * (https://github.com/containerd/containerd/pull/8924). For 1.x we follow the newest 1.x unit
 * (1.7.34, which added dbus.service to After= like 2.x); After= on a unit that is absent is harmless.
 */
export function containerdUnitVariant(containerdVersion: string): { after: string; limitNofile: boolean } {
  const { major, minor } = containerdLine(containerdVersion);
  if (major === 1) return { after: 'network.target local-fs.target dbus.service', limitNofile: true };
  if (major === 2 && minor === 0) return { after: 'network.target local-fs.target dbus.service', limitNofile: false };
  return { after: 'network.target dbus.service', limitNofile: false };
}
