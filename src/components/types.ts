import type { Arch } from '../arch.ts';


export type { ComponentName } from './index.ts';

/** How a project publishes the sha256 of an asset next to it in the release. */
export type PublishedChecksum =
  /** A coreutils `sha256sum` file: `<hex>  <name>` lines (containerd, CNI, nerdctl, runc). */
  | { format: 'sha256sum'; file: string; clearsigned?: boolean }
  /** A file holding only the bare hex digest (crictl). */
  | { format: 'bare-hex'; file: string };

/** A detached or inline OpenPGP signature published with the release. */
export type PublishedSignature =
  | { kind: 'clearsigned-checksums'; file: string; keyring: 'runc' | 'nerdctl' }
  | { kind: 'detached'; file: string; signs: string; keyring: 'runc' | 'nerdctl' };

/** Where an installed file goes; `prefix` is --prefix (default /usr/local), paths are inside --root. */
export type Destination = { base: 'prefix'; dir: 'bin' | 'sbin' } | { base: 'absolute'; dir: string };

/** One file a component installs: which member of the archive (or the bare asset) and where it goes. */
export interface InstallEntry {
  /** Path of the member inside the archive, normalised without `./`; '' for a bare binary asset. */
  member: string;
  dest: Destination;
  /** File name at the destination. */
  name: string;
  mode: number;
  /** A required member that is missing from the archive fails the install. */
  required: boolean;
}

/** Build variants a project publishes besides its default asset (containerd's static build). */
export interface ReleaseOptions {
  /** containerd-static-<v>-linux-<arch>.tar.gz: no glibc needed (musl, or glibc older than 2.35). */
  static?: boolean | undefined;
}

/** Everything node-prep needs to know about one component at one version for one arch. */
export interface ComponentRelease {
  component: string;
  /** The key of the pin table: the component, or its variant (`containerd-static`). */
  pinKey: string;
  version: string;
  tag: string;
  arch: Arch;
  repo: string;
  asset: { name: string; kind: 'tar.gz' | 'binary' };
  checksum: PublishedChecksum;
  signatures: PublishedSignature[];
  install: InstallEntry[];
  /**
   * Bounds on what the archive may unpack to, from what the component ships (with room to grow): a
   * member larger than `memberBytes`, or a tar stream inflating to more than `unpackedBytes` in all,
   * is refused before it fills a disk.
   */
  limits: UnpackLimits;
}

export interface UnpackLimits {
  memberBytes: number;
  unpackedBytes: number;
}

const MiB = 1024 * 1024;
export const mib = (n: number) => n * MiB;

/** A binary the smoke test runs with `args` and holds to the component's version. */
export interface VersionCheck {
  /** The check's stable name (`runc version`). */
  check: string;
  /** File name in the prefix (`bin/ctr`, `sbin/runc`). */
  binary: string;
  args: string[];
}

/**
 * A component description: data about a GitHub project and its release layout, and everything else
 * node-prep does with it. Adding a component is one such file and one row in the catalog (index.ts).
 */
export interface Component {
  name: string;
  title: string;
  /** `owner/name` on GitHub. */
  repo: string;
  /** containerd and runc are what makes a node; the others can be skipped with `none`. */
  required: boolean;
  /** Its table in the built-in pins (src/data/checksums.json); a build variant may have its own. */
  pinKey: string;
  /** The built-in default version: pinned for amd64 and arm64. `none`: installed only when asked for. */
  defaultVersion: string;
  /** What the user types: `--containerd`, `--cni` ... */
  flag: string;
  /** The line --help shows for the flag. */
  help: string;
  /** The binaries the smoke test version-checks. */
  versionChecks: readonly VersionCheck[];
  /** Config files node-prep renders for it (node paths), when it is installed. */
  configFiles: readonly string[];
  /** Its runtime state, which `uninstall --purge` removes (node paths). */
  purgePaths: readonly string[];
  /**
   * Folders it makes for itself when they are missing (containerd's CRI plugin makes its CNI conf
   * dir), which `uninstall --purge` removes only when empty, deepest first: an empty folder holds
   * nothing to lose, one with files is another tool's too.
   */
  purgeIfEmpty?: readonly string[];
  release(version: string, arch: Arch, options?: ReleaseOptions): ComponentRelease;
}

/** What a component's module exports: its name kept as a literal, so the catalog's keys are the names. */
export type Described<N extends string> = Component & { name: N };
