import type { Arch } from '../arch.ts';
import type { DigestSource } from '../checksums/pins.ts';
import type { ComponentName, UnpackLimits } from '../components/types.ts';

export type { ComponentName } from '../components/types.ts';
import type { RefusedDropIn } from '../config/dropins.ts';
import type { ResolvedFrom } from '../versions/resolve.ts';

/** The plan is plain data: printable, diffable, testable; `--json` emits it as is. */
export interface Plan {
  kind: 'plan';
  schemaVersion: 1;
  nodePrepVersion: string;
  arch: Arch;
  /** Where the arch came from: this machine, the image root's own binaries, --arch (target-arch.ts). */
  archReason: string;
  root: string;
  prefix: string;
  mirror: string;
  components: PlannedComponent[];
  skipped: ComponentName[];
  artifacts: PlannedArtifact[];
  containerd: {
    configVersion: number;
    cgroupDriver: 'systemd' | 'cgroupfs';
    cgroupDriverReason: string;
    sandboxImage: string;
    /** The glibc-linked release asset, or containerd-static-…. */
    build: 'dynamic' | 'static';
    buildReason: string;
    /** Drop-ins this containerd refuses to start with (install stops before downloading). */
    refusedDropIns: RefusedDropIn[];
  };
  /** --kubernetes: the set it picked from, and the versions outside it (warnings; errors under --verify strict). */
  kubernetes?: {
    minor: string;
    /** The components whose version came from the table (the others were given, or come from a bundle). */
    picked: ComponentName[];
    /** The containerd versions RELEASES.md recommends for it (`2.3.0` means 2.3.0+). */
    containerdSupport: string[];
    /** kubeadm's pause image for it (the config's, unless --sandbox-image says otherwise). */
    sandboxImage: string;
    outside: import('../versions/kubernetes.ts').OutsideTable[];
  } | undefined;
  files: PlannedFile[];
  /** From the comparison with the disk (plan only): files node-prep wrote earlier that install removes. */
  removals?: import('./changes.ts').Removal[] | undefined;
  service: PlannedService;
  smoke: PlannedSmoke;
}

/** What install does with containerd's unit, and why. */
export interface PlannedService {
  unit: string;
  /** systemd: daemon-reload, enable and (re)start through systemctl; wants-link: enable by its link only. */
  manage: 'systemd' | 'wants-link';
  /** Whether install starts (or restarts) containerd. */
  start: boolean;
  reason: string;
  /** From the comparison with the disk (plan only): whether a running containerd would be restarted. */
  restart?: { needed: boolean; why: string } | undefined;
  /** From the disk: why install cannot enable the unit (something else where its wants link goes). */
  blocked?: string | undefined;
  /** wants-link, from the disk: the link install makes (`create`) or finds in place (`same`). */
  link?: { path: string; target: string; change: 'create' | 'same' } | undefined;
}

export interface PlannedSmoke {
  /**
   * service: against the running containerd; temporary: a containerd of its own from the installed
   * files; emulated: binaries of another arch under a binfmt_misc handler, the binaries and the config only.
   */
  mode: 'service' | 'temporary' | 'emulated' | 'skipped';
  reason: string;
  /** The checks it runs, by name. */
  checks: string[];
}

export interface PlannedComponent {
  name: ComponentName;
  version: string;
  spec: string;
  resolvedFrom: ResolvedFrom;
}

export interface PlannedArtifact {
  component: ComponentName;
  version: string;
  arch: Arch;
  name: string;
  /** The GitHub release it comes from (`owner/name`, `vX.Y.Z`): where a bundle keeps it. */
  repo: string;
  tag: string;
  kind: 'tar.gz' | 'binary';
  /** containerd's static build. */
  static?: boolean;
  url: string;
  sha256: string;
  digestSource: DigestSource;
  /** The checksum file the release publishes, and how to read the asset's digest from it. */
  checksumFile: { name: string; url: string; format: 'sha256sum' | 'bare-hex'; clearsigned?: boolean };
  /** The release's OpenPGP signatures: a clear-signed checksum file, or a detached one over `signs`. */
  signatures: PlannedSignature[];
  /** What goes where: each member of the archive (the asset itself for a bare binary) and its node path. */
  install: PlannedInstall[];
  /** What the archive may unpack to (the component's bounds). */
  limits: UnpackLimits;
}

export type PlannedSignature =
  | { kind: 'clearsigned-checksums'; name: string; url: string; keyring: 'runc' | 'nerdctl' }
  | { kind: 'detached'; name: string; url: string; signs: string; keyring: 'runc' | 'nerdctl' };

export interface PlannedInstall {
  /** Path of the member inside the archive without `./`; '' for a bare binary asset. */
  member: string;
  /** Where it goes on the node (the prefix applied, not the root). */
  path: string;
  mode: number;
  /** A required member that is missing from the archive fails the install. */
  required: boolean;
}

export type FileSource =
  | { kind: 'artifact'; asset: string; member: string }
  | { kind: 'config'; what: string };

export interface PlannedFile {
  /** Where the file goes on the node (joined with --root only where it is read or written). */
  path: string;
  component: ComponentName | 'node';
  source: FileSource;
  mode: number;
  /** Optional archive members (e.g. a CNI plugin an older release lacks) are installed when present. */
  optional: boolean;
  /** Config files: the whole content and its digest (binaries are known only after extraction). */
  content?: string;
  sha256?: string;
  /**
   * The content holds a secret (registry or proxy credentials, a client key's path): `shown` is the
   * same text with `<redacted>` in its place. Outputs carry `shown` as the content, and no digest.
   */
  private?: true;
  shown?: string;
  /** What install would do to the file now on disk (plan only). */
  change?: import('./changes.ts').FileChange;
}
