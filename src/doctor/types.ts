/**
 * What `node-prep doctor` observes (Facts) and what it concludes (Finding). Facts are plain data read
 * once from the machine or the image root; the checks are pure functions from Facts to Findings, so
 * every decision is testable from a table.
 */
import type { Arch } from '../arch.ts';
import type { LibcFact } from '../node/libc.ts';
export type { LibcFact } from '../node/libc.ts';
import type { DropIn } from '../config/dropins.ts';

export type Level = 'ok' | 'warn' | 'blocker';

/**
 * Whose fact a finding describes. `node`: the live host that will run containerd (no --root).
 * `image`: the image root being prepared (--root DIR). `build-host`: the machine running node-prep
 * under --root, whose kernel, cgroups and swap say nothing about the machine that will boot the image.
 */
export type Scope = 'node' | 'image' | 'build-host';

export interface Finding {
  /** Stable: tools may match on it (`cgroup`, `module.overlay`, `sysctl.net.ipv4.ip_forward`, ...). */
  id: string;
  level: Level;
  scope: Scope;
  title: string;
  detail: string;
  hint?: string | undefined;
}


export type CgroupMode = 'v2' | 'hybrid' | 'v1' | 'none';

export interface CgroupFact {
  /** v2: unified only; hybrid: v1 controllers with a v2 tree beside them (systemd's "hybrid"); v1: legacy. */
  mode: CgroupMode;
  /** v2: the root's cgroup.controllers; v1/hybrid: the v1 controllers enabled and mounted. */
  controllers: string[];
  source: string;
}

export interface InitFact {
  systemd: boolean;
  /** In words: `PID 1 is "process_api", not systemd (/proc/1/comm)`. */
  detail: string;
}

export type ModuleState = 'loaded' | 'builtin' | 'loadable' | 'missing';
export interface ModuleFact {
  state: ModuleState;
  detail: string;
}

export interface PackageFact {
  manager: 'dpkg' | 'rpm' | 'apk';
  name: string;
  version: string;
}

export interface ContainerdConfigFact {
  path: string;
  exists: boolean;
  /** `disabled_plugins` holds "cri" (or the full plugin id): Docker's containerd.io default. */
  criDisabled: boolean;
  parseError?: string | undefined;
  /** The config version it declares (1 when it has none, containerd's rule); undefined when unparsable. */
  version?: number | undefined;
}

export interface SocketFact {
  path: string;
  /** listening: a connect succeeded; stale: a socket file nobody answers on. */
  state: 'absent' | 'listening' | 'stale' | 'not-a-socket';
}

export interface DiskFact {
  /** The node path asked about (`/var`, `/usr/local`). */
  path: string;
  /** The host directory measured: the nearest one that exists. */
  measured: string;
  freeBytes: number | undefined;
  error?: string | undefined;
}

export interface Facts {
  /** '/' for this machine, else the image root (--root DIR). */
  root: string;
  arch: {
    /** `uname -m` of the machine running node-prep. */
    host: string;
    /** What node-prep installs for: --arch, or the host's. */
    target: Arch;
    /** The image's own arch from the ELF header of its /bin/sh (--root only; undefined when not found). */
    image?: string | undefined;
    imageSource?: string | undefined;
  };
  kernel: { release: string | undefined };
  os: { prettyName?: string | undefined; id?: string | undefined; versionId?: string | undefined } | undefined;
  libc: LibcFact;
  cgroup: CgroupFact;
  init: InitFact;
  modules: Record<string, ModuleFact>;
  /** key -> current value; undefined when the file does not exist. */
  sysctls: Record<string, string | undefined>;
  /** Active swap areas from /proc/swaps; undefined when it cannot be read. */
  swap: Array<{ name: string; sizeKiB: number }> | undefined;
  packages: PackageFact[];
  /** containerd binaries present in the root (node paths), and which one node-prep's manifest owns. */
  containerdBinaries: string[];
  nodePrepBinary: string | undefined;
  containerdConfig: ContainerdConfigFact;
  /** The containerd the drop-ins are judged for: node-prep's installed one, else the built-in default. */
  containerdVersion: { version: string; source: 'installed' | 'default' };
  /** /etc/containerd/conf.d/*.toml with their declared config versions. */
  dropIns: DropIn[];
  /** Packages that own /opt/cni/bin (dpkg's info lists, rpm), and whether node-prep's record has its CNI plugins. */
  cniBin: { owners: Array<{ manager: 'dpkg' | 'rpm'; name: string }>; nodePrepInstalled: boolean | undefined };
  /** containerd units that are masked (symlinked to /dev/null): node path -> link target. */
  maskedUnits: string[];
  /** Live host only. */
  socket: SocketFact | undefined;
  /** Live host only: running containerd processes. */
  processes: Array<{ pid: number; exe: string | undefined }>;
  disk: DiskFact[];
}
