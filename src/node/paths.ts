import path from 'node:path';

/**
 * Facts about a node's layout, at the bottom of node-prep: where things go (DESIGN.md), relative to
 * the target root, and how a node path is seen from this host.
 */

/** Where things go on a node, relative to the target root. */
export const NODE_PATHS = {
  containerdConfig: '/etc/containerd/config.toml',
  containerdDropIns: '/etc/containerd/conf.d',
  certsDir: '/etc/containerd/certs.d',
  containerdUnit: '/etc/systemd/system/containerd.service',
  /** The unit drop-in with containerd's proxy environment (--containerd-proxy). */
  containerdProxyDropIn: '/etc/systemd/system/containerd.service.d/http-proxy.conf',
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


/** A path on this host (inside --root) back to the path on the node. */
export function nodePathOf(root: string, hostPath: string): string {
  if (root === '/') return hostPath;
  const rel = path.relative(root, hostPath);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${hostPath} is not inside the root ${root}`);
  return `/${rel.split(path.sep).join('/')}`;
}

/** containerd's CRI socket: what the kubelet, crictl and nerdctl talk to. */
export const SOCKET = '/run/containerd/containerd.sock';
/**
 * The unit's TimeoutStartSec: systemd gives up on a containerd that has not signalled READY by then
 * (and kills it). node-prep waits for that verdict, a little longer, never giving up first.
 */
export const UNIT_START_TIMEOUT_S = 60;

/** What `systemctl enable containerd` creates. */
export const WANTS_LINK = '/etc/systemd/system/multi-user.target.wants/containerd.service';

/** The kernel prerequisites of a Kubernetes node running containerd. */
export const MODULES = ['overlay', 'br_netfilter'] as const;
export const SYSCTLS: Record<string, string> = {
  'net.ipv4.ip_forward': '1',
  'net.bridge.bridge-nf-call-iptables': '1',
  'net.bridge.bridge-nf-call-ip6tables': '1',
};
