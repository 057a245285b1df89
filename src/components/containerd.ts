import semver from 'semver';
import type { Arch } from '../arch.ts';
import { mib, type Described, type InstallEntry, type ReleaseOptions } from './types.ts';

const REPO = 'containerd/containerd';

/** `Makefile.linux` COMMANDS: 1.x also ships the v1 shims, removed in 2.0. */
function binaries(version: string): Array<[string, boolean]> {
  const common: Array<[string, boolean]> = [
    ['containerd', true],
    ['ctr', true],
    ['containerd-shim-runc-v2', true],
    ['containerd-stress', false],
  ];
  return semver.major(version) < 2 ? [...common, ['containerd-shim', false], ['containerd-shim-runc-v1', false]] : common;
}

export const containerd: Described<'containerd'> = {
  name: 'containerd',
  title: 'containerd',
  repo: REPO,
  required: true,
  pinKey: 'containerd',
  defaultVersion: '2.3.4',
  flag: 'containerd',
  help: 'containerd',
  versionChecks: [
    { check: 'containerd version', binary: 'bin/containerd', args: ['--version'] },
    { check: 'ctr version', binary: 'bin/ctr', args: ['--version'] },
    { check: 'shim version', binary: 'bin/containerd-shim-runc-v2', args: ['-v'] },
  ],
  configFiles: ['/etc/containerd/config.toml', '/etc/systemd/system/containerd.service'],
  // /opt/containerd: the opt plugin's folders (bin, lib), made at every start.
  purgePaths: ['/var/lib/containerd', '/run/containerd', '/opt/containerd'],
  purgeIfEmpty: ['/etc/cni/net.d', '/etc/cni'],
  release(version: string, arch: Arch, options: ReleaseOptions = {}) {
    // The tag has a `v`, the file name does not: containerd-2.3.4-linux-amd64.tar.gz. The static
    // build has the same layout (Makefile pack_release is shared) under containerd-static-….
    const asset = `containerd-${options.static ? 'static-' : ''}${version}-linux-${arch}.tar.gz`;
    const install: InstallEntry[] = binaries(version).map(([name, required]) => ({
      member: `bin/${name}`,
      dest: { base: 'prefix', dir: 'bin' },
      name,
      mode: 0o755,
      required,
    }));
    return {
      component: 'containerd',
      pinKey: options.static ? 'containerd-static' : 'containerd',
      version,
      tag: `v${version}`,
      arch,
      repo: REPO,
      asset: { name: asset, kind: 'tar.gz' },
      checksum: { format: 'sha256sum', file: `${asset}.sha256sum` },
      signatures: [],
      install,
      limits: { memberBytes: mib(256), unpackedBytes: mib(768) },
    };
  },
};
