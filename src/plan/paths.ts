import path from 'node:path';
import type { Destination } from '../components/types.ts';

/** Where things go on a node (DESIGN.md), relative to the target root. */
export const NODE_PATHS = {
  containerdConfig: '/etc/containerd/config.toml',
  containerdDropIns: '/etc/containerd/conf.d',
  certsDir: '/etc/containerd/certs.d',
  containerdUnit: '/etc/systemd/system/containerd.service',
  crictlConfig: '/etc/crictl.yaml',
  nerdctlConfig: '/etc/nerdctl/nerdctl.toml',
  modulesLoad: '/etc/modules-load.d/node-prep.conf',
  sysctl: '/etc/sysctl.d/90-node-prep.conf',
  stateDir: '/var/lib/node-prep',
  cacheDir: '/var/cache/node-prep',
  cniBinDir: '/opt/cni/bin',
  cniConfDir: '/etc/cni/net.d',
} as const;

/** A path on the node, seen from this host: inside --root when one is given. */
export function inRoot(root: string, nodePath: string): string {
  return root === '/' ? nodePath : path.join(root, nodePath);
}

export function destinationDir(dest: Destination, prefix: string): string {
  return dest.base === 'prefix' ? path.posix.join(prefix, dest.dir) : dest.dir;
}

/** A path on this host (inside --root) back to the path on the node. */
export function nodePathOf(root: string, hostPath: string): string {
  if (root === '/') return hostPath;
  const rel = path.relative(root, hostPath);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${hostPath} is not inside the root ${root}`);
  return `/${rel.split(path.sep).join('/')}`;
}
