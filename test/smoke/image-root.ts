// A temporary image root laid out as node-prep installs it, from the Debian-built release assets that
// scripts/fixtures/debian-release.mjs writes to .cache/debian-release (real containerd, shim, ctr,
// runc and CNI plugins; stand-ins for nerdctl and crictl).
import { createHash } from 'node:crypto';
import { access, chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { serializeManifest, type Manifest } from '../../src/state/manifest.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { SmokeExpect } from '../../src/smoke/types.ts';

export const E2E = process.env.NODE_PREP_E2E === '1';
export const RELEASES = path.resolve(import.meta.dirname, '../../.cache/debian-release');
export const HOW = 'run `node scripts/fixtures/debian-release.mjs` (needs the Debian mirror once)';
export const isRoot = process.getuid?.() === 0;

const asset = (...parts: string[]) => path.join(RELEASES, ...parts);
export const ASSETS = {
  containerd: (v: string) => asset('containerd/containerd/releases/download', `v${v}`, `containerd-${v}-linux-amd64.tar.gz`),
  runc: asset('opencontainers/runc/releases/download/v1.1.5/runc.amd64'),
  cni: asset('containernetworking/plugins/releases/download/v1.1.1/cni-plugins-linux-amd64-v1.1.1.tgz'),
  nerdctl: asset('containerd/nerdctl/releases/download/v2.3.0/nerdctl-2.3.0-linux-amd64.tar.gz'),
  crictl: asset('kubernetes-sigs/cri-tools/releases/download/v1.36.0/crictl-v1.36.0-linux-amd64.tar.gz'),
  busybox: asset('rootfs/busybox'),
};

/** The fixture files these tests need, or undefined when one is missing. */
export async function fixturesPresent(containerdVersions: string[]): Promise<boolean> {
  const files = [...containerdVersions.map(ASSETS.containerd), ASSETS.runc, ASSETS.cni, ASSETS.nerdctl, ASSETS.crictl, ASSETS.busybox];
  try {
    await Promise.all(files.map((f) => access(f)));
    return process.arch === 'x64';
  } catch {
    return false;
  }
}

export const SANDBOX = 'registry.k8s.io/pause:3.10';

export function expectFor(containerdVersion: string, overrides: Partial<SmokeExpect> = {}): SmokeExpect {
  return {
    versions: { containerd: containerdVersion, runc: '1.1.5', nerdctl: '2.3.0', crictl: '1.36.0' },
    systemdCgroup: true, sandboxImage: SANDBOX, configPath: '/etc/containerd/certs.d',
    cniBinDir: '/opt/cni/bin', cniConfDir: '/etc/cni/net.d', ...overrides,
  };
}

/** config.toml as node-prep writes it: version 2 for 1.x, version 3 for 2.x. */
export function configToml(containerdVersion: string, systemdCgroup: boolean): string {
  if (containerdVersion.startsWith('1.')) {
    return `version = 2
imports = ["/etc/containerd/conf.d/*.toml"]
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX}"
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "/usr/local/sbin/runc"
  SystemdCgroup = ${systemdCgroup}
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
`;
  }
  return `version = 3
imports = ["/etc/containerd/conf.d/*.toml"]
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "${SANDBOX}"
[plugins."io.containerd.cri.v1.images".registry]
  config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  BinaryName = "/usr/local/sbin/runc"
  SystemdCgroup = ${systemdCgroup}
[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["/opt/cni/bin"]
  conf_dir = "/etc/cni/net.d"
`;
}

export interface ImageRoot {
  root: string;
  remove: () => Promise<void>;
}

/** TMP/usr/local/{bin,sbin/runc}, TMP/opt/cni/bin, TMP/etc/containerd/config.toml. */
export async function makeImageRoot(containerdVersion: string, opts: { systemdCgroup?: boolean; withRunc?: boolean } = {}): Promise<ImageRoot> {
  const root = await mkdtemp(path.join(tmpdir(), 'np-image-'));
  const dir = (p: string) => path.join(root, p);
  for (const d of ['usr/local/bin', 'usr/local/sbin', 'opt/cni/bin', 'etc/containerd/conf.d', 'etc/cni/net.d']) await mkdir(dir(d), { recursive: true });
  // The containerd tarball holds bin/..., extracted under the prefix as node-prep does.
  await execa('tar', ['-C', dir('usr/local'), '-xzf', ASSETS.containerd(containerdVersion)]);
  await execa('tar', ['-C', dir('opt/cni/bin'), '-xzf', ASSETS.cni]);
  await execa('tar', ['-C', dir('usr/local/bin'), '-xzf', ASSETS.nerdctl]);
  await execa('tar', ['-C', dir('usr/local/bin'), '-xzf', ASSETS.crictl]);
  if (opts.withRunc ?? true) {
    await copyFile(ASSETS.runc, dir('usr/local/sbin/runc'));
    await chmod(dir('usr/local/sbin/runc'), 0o755);
  }
  await writeFile(dir('etc/containerd/config.toml'), configToml(containerdVersion, opts.systemdCgroup ?? true));
  await recordBinaries(root);
  return { root, remove: () => rm(root, { recursive: true, force: true }) };
}

/**
 * The record node-prep would have written for the binaries in the prefix: the smoke test under
 * --root runs only binaries it can hold to a record (smoke/private-bin.ts).
 */
export async function recordBinaries(root: string): Promise<void> {
  const files: Manifest['files'] = {};
  for (const d of ['usr/local/bin', 'usr/local/sbin']) {
    for (const name of await readdir(path.join(root, d))) {
      const full = path.join(root, d, name);
      files[`/${d}/${name}`] = { sha256: createHash('sha256').update(await readFile(full)).digest('hex'), mode: 0o755, component: 'containerd' };
    }
  }
  const m: Manifest = { schemaVersion: 1, nodePrepVersion: 'test', installedAt: new Date().toISOString(), arch: 'amd64', prefix: '/usr/local', components: {}, files, backups: {} };
  await mkdir(path.join(root, 'var/lib/node-prep'), { recursive: true });
  await writeFile(path.join(root, 'var/lib/node-prep/manifest.json'), serializeManifest(m));
}
