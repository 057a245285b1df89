import type { Arch } from '../arch.ts';
import type { Component } from './types.ts';

const REPO = 'containerd/nerdctl';

export const nerdctl: Component = {
  name: 'nerdctl',
  title: 'nerdctl',
  repo: REPO,
  optional: true,
  flag: 'nerdctl',
  release(version: string, arch: Arch) {
    // The minimal archive is flat: nerdctl plus the two rootless helper scripts.
    const asset = `nerdctl-${version}-linux-${arch}.tar.gz`;
    return {
      component: 'nerdctl',
      pinKey: 'nerdctl',
      version,
      tag: `v${version}`,
      arch,
      repo: REPO,
      asset: { name: asset, kind: 'tar.gz' },
      checksum: { format: 'sha256sum', file: 'SHA256SUMS' },
      signatures: [{ kind: 'detached', file: 'SHA256SUMS.asc', signs: 'SHA256SUMS', keyring: 'nerdctl' }],
      install: [
        { member: 'nerdctl', dest: { base: 'prefix', dir: 'bin' }, name: 'nerdctl', mode: 0o755, required: true },
        ...['containerd-rootless-setuptool.sh', 'containerd-rootless.sh'].map((name) => ({
          member: name,
          dest: { base: 'prefix' as const, dir: 'bin' as const },
          name,
          mode: 0o755,
          required: false,
        })),
      ],
    };
  },
};
