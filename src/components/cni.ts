import type { Arch } from '../arch.ts';
import { mib, type Described } from './types.ts';

const REPO = 'containernetworking/plugins';
export const CNI_BIN_DIR = '/opt/cni/bin';

/**
 * Every plugin the releases have shipped since 1.0 (build_linux.sh builds plugins/{meta,main,ipam}/*);
 * older releases lack some (dummy, tap), so only the four a Kubernetes node cannot do without are required.
 */
const PLUGINS = [
  'bandwidth', 'bridge', 'dhcp', 'dummy', 'firewall', 'host-device', 'host-local', 'ipvlan', 'loopback',
  'macvlan', 'portmap', 'ptp', 'sbr', 'static', 'tap', 'tuning', 'vlan', 'vrf',
];
const REQUIRED = new Set(['bridge', 'host-local', 'loopback', 'portmap']);

export const cni: Described<'cni'> = {
  name: 'cni',
  title: 'CNI plugins',
  repo: REPO,
  required: false,
  pinKey: 'cni-plugins',
  defaultVersion: '1.9.1',
  flag: 'cni',
  help: 'CNI plugins',
  versionChecks: [],
  configFiles: [],
  purgePaths: [],
  release(version: string, arch: Arch) {
    // The CNI file name keeps the `v`: cni-plugins-linux-amd64-v1.9.1.tgz
    const asset = `cni-plugins-linux-${arch}-v${version}.tgz`;
    return {
      component: 'cni',
      pinKey: 'cni-plugins',
      version,
      tag: `v${version}`,
      arch,
      repo: REPO,
      asset: { name: asset, kind: 'tar.gz' },
      checksum: { format: 'sha256sum', file: `${asset}.sha256` },
      signatures: [],
      limits: { memberBytes: mib(128), unpackedBytes: mib(512) },
      install: PLUGINS.map((name) => ({
        member: name,
        dest: { base: 'absolute', dir: CNI_BIN_DIR },
        name,
        mode: 0o755,
        required: REQUIRED.has(name),
      })),
    };
  },
};
