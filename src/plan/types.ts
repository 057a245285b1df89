import type { Arch } from '../arch.ts';
import type { DigestSource } from '../checksums/pins.ts';
import type { ComponentName } from '../components/types.ts';
import type { RefusedDropIn } from '../config/dropins.ts';
import type { ResolvedFrom } from '../versions/resolve.ts';

/** The plan is plain data: printable, diffable, testable; `--json` emits it as is. */
export interface Plan {
  kind: 'plan';
  schemaVersion: 1;
  nodePrepVersion: string;
  arch: Arch;
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
  files: PlannedFile[];
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
  kind: 'tar.gz' | 'binary';
  /** containerd's static build. */
  static?: boolean;
  url: string;
  sha256: string;
  digestSource: DigestSource;
  checksumFile: { name: string; url: string };
  signatures: Array<{ name: string; url: string }>;
}

export type FileSource =
  | { kind: 'artifact'; asset: string; member: string }
  | { kind: 'config'; what: string };

export interface PlannedFile {
  /** Where the file is written on this host: --root joined with the path on the node. */
  path: string;
  component: ComponentName | 'node';
  source: FileSource;
  mode: number;
  /** Optional archive members (e.g. a CNI plugin an older release lacks) are installed when present. */
  optional: boolean;
  /** Config files: the whole content and its digest (binaries are known only after extraction). */
  content?: string;
  sha256?: string;
  /** What install would do to the file now on disk (plan only). */
  change?: import('./changes.ts').FileChange;
}
