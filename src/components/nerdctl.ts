import type { Arch } from '../arch.ts';
import { mib, type Described } from './types.ts';

const REPO = 'containerd/nerdctl';

export const nerdctl: Described<'nerdctl'> = {
  name: 'nerdctl',
  title: 'nerdctl',
  repo: REPO,
  required: false,
  pinKey: 'nerdctl',
  defaultVersion: '2.3.0',
  flag: 'nerdctl',
  help: 'nerdctl',
  versionChecks: [{ check: 'nerdctl version', binary: 'bin/nerdctl', args: ['--version'] }],
  configFiles: ['/etc/nerdctl/nerdctl.toml'],
  purgePaths: ['/var/lib/nerdctl'],
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
      limits: { memberBytes: mib(256), unpackedBytes: mib(512) },
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
