export interface RegistryMirror {
  host: string;
  url: string;
}

/** How runc places containers in cgroups; must match the kubelet's `cgroupDriver`. */
export type CgroupDriver = 'systemd' | 'cgroupfs';

/** A file node-prep writes to a node (everything except binaries), with its full content. */
export interface NodeFile {
  /** The path on the node, e.g. /etc/containerd/config.toml; join with --root to write it. */
  nodePath: string;
  content: string;
  mode: number;
  /** A component of the catalog, or `node` for the kernel prerequisites. */
  component: string;
  /** One line for the plan: what the file is for. */
  what: string;
  /** Set when `content` holds a secret: the same text with `<redacted>` in its place, for every output. */
  shown?: string;
}
