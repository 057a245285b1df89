import type { Arch } from '../arch.ts';
import { mib, type Described } from './types.ts';

const REPO = 'kubernetes-sigs/cri-tools';

export const crictl: Described<'crictl'> = {
  name: 'crictl',
  title: 'crictl',
  repo: REPO,
  required: false,
  pinKey: 'crictl',
  defaultVersion: '1.36.0',
  flag: 'crictl',
  help: 'crictl',
  versionChecks: [{ check: 'crictl version', binary: 'bin/crictl', args: ['--version'] }],
  configFiles: ['/etc/crictl.yaml'],
  purgePaths: [],
  release(version: string, arch: Arch) {
    // The file name keeps the `v`; the .sha256 file holds the bare hex digest with no file name.
    const asset = `crictl-v${version}-linux-${arch}.tar.gz`;
    return {
      component: 'crictl',
      pinKey: 'crictl',
      version,
      tag: `v${version}`,
      arch,
      repo: REPO,
      asset: { name: asset, kind: 'tar.gz' },
      checksum: { format: 'bare-hex', file: `${asset}.sha256` },
      signatures: [],
      limits: { memberBytes: mib(256), unpackedBytes: mib(384) },
      install: [{ member: 'crictl', dest: { base: 'prefix', dir: 'bin' }, name: 'crictl', mode: 0o755, required: true }],
    };
  },
};
