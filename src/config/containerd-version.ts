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
 * The config file version to write: containerd's own current version for its line. 1.x reads
 * version 2, 2.0–2.2 read 3, and 2.3 made 4 current: it still reads 3, but migrates it in memory at
 * every start and logs a WARN ("Configuration migrated from version 3, use `containerd config
 * migrate` to avoid migration"). The CRI tables are the same in 3 and 4; the listeners moved into
 * `io.containerd.server.v1.*` plugin sections (layout.ts). A rollback restores config.toml with the
 * binaries it belongs to, and a later install of 2.2 or older writes version 3 again (2.0–2.2 refuse
 * a version 4 file). Migration logic:
 * https://github.com/containerd/containerd/blob/v2.3.0/cmd/containerd/server/config/config.go
 */
export function containerdConfigVersion(containerdVersion: string): 2 | 3 | 4 {
  const { major, minor } = containerdLine(containerdVersion);
  if (major === 1) return 2;
  return major === 2 && minor < 3 ? 3 : 4;
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
