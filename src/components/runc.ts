import type { Arch } from '../arch.ts';
import { mib, type Described } from './types.ts';

const REPO = 'opencontainers/runc';

export const runc: Described<'runc'> = {
  name: 'runc',
  title: 'runc',
  repo: REPO,
  required: true,
  pinKey: 'runc',
  defaultVersion: '1.4.3',
  flag: 'runc',
  help: 'runc',
  versionChecks: [{ check: 'runc version', binary: 'sbin/runc', args: ['--version'] }],
  configFiles: [],
  purgePaths: [],
  release(version: string, arch: Arch) {
    // runc publishes a bare static binary per arch, and one clear-signed runc.sha256sum for all of them.
    const asset = `runc.${arch}`;
    return {
      component: 'runc',
      pinKey: 'runc',
      version,
      tag: `v${version}`,
      arch,
      repo: REPO,
      asset: { name: asset, kind: 'binary' },
      checksum: { format: 'sha256sum', file: 'runc.sha256sum', clearsigned: true },
      signatures: [
        { kind: 'clearsigned-checksums', file: 'runc.sha256sum', keyring: 'runc' },
        { kind: 'detached', file: `${asset}.asc`, signs: asset, keyring: 'runc' },
      ],
      limits: { memberBytes: mib(128), unpackedBytes: mib(128) },
      install: [{ member: '', dest: { base: 'prefix', dir: 'sbin' }, name: 'runc', mode: 0o755, required: true }],
    };
  },
};
