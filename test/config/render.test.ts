import path from 'node:path';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { renderNodeFiles, type NodeConfigInputs } from '../../src/config/render.ts';
import { findTemplatesDir } from '../../src/config/templates.ts';
import type { NodeFile } from '../../src/config/types.ts';

const baseInputs: NodeConfigInputs = {
  containerdVersion: '2.2.0',
  prefix: '/usr/local',
  cgroupDriver: 'systemd',
  registryMirrors: [],
  namespace: 'k8s.io',
  components: ['containerd', 'runc', 'cni', 'nerdctl', 'crictl'],
};

async function files(overrides: Partial<NodeConfigInputs> = {}): Promise<Map<string, NodeFile>> {
  const list = await renderNodeFiles({ ...baseInputs, ...overrides });
  return new Map(list.map((f) => [f.nodePath, f]));
}
async function toml(nodePath: string, overrides: Partial<NodeConfigInputs> = {}): Promise<Record<string, any>> {
  const file = (await files(overrides)).get(nodePath);
  if (file === undefined) throw new Error(`${nodePath} was not rendered`);
  return parse(file.content) as Record<string, any>;
}

describe('containerd config.toml', () => {
  it('1.x: version 2 with everything under io.containerd.grpc.v1.cri', async () => {
    const config = await toml('/etc/containerd/config.toml', { containerdVersion: '1.7.34' });
    const cri = config.plugins['io.containerd.grpc.v1.cri'];
    expect(config.version).toBe(2);
    expect(config.imports).toEqual(['/etc/containerd/conf.d/*.toml']);
    expect(cri.sandbox_image).toBe('registry.k8s.io/pause:3.8');
    expect(cri.containerd.default_runtime_name).toBe('runc');
    expect(cri.containerd.runtimes.runc.runtime_type).toBe('io.containerd.runc.v2');
    expect(cri.containerd.runtimes.runc.options).toEqual({ BinaryName: '/usr/local/sbin/runc', SystemdCgroup: true });
    expect(cri.cni).toEqual({ bin_dir: '/opt/cni/bin', conf_dir: '/etc/cni/net.d' });
    expect(cri.registry).toEqual({ config_path: '/etc/containerd/certs.d' });
    expect(Object.keys(config.plugins)).toEqual(['io.containerd.grpc.v1.cri']);
  });

  it.each([
    ['2.0.11', 'registry.k8s.io/pause:3.10', { bin_dir: '/opt/cni/bin', conf_dir: '/etc/cni/net.d' }],
    ['2.1.4', 'registry.k8s.io/pause:3.10', { bin_dirs: ['/opt/cni/bin'], conf_dir: '/etc/cni/net.d' }],
    ['2.2.0', 'registry.k8s.io/pause:3.10.1', { bin_dirs: ['/opt/cni/bin'], conf_dir: '/etc/cni/net.d' }],
  ])('%s: version 3 with cri.v1.runtime / cri.v1.images', async (containerdVersion, sandbox, cni) => {
    const config = await toml('/etc/containerd/config.toml', { containerdVersion });
    const images = config.plugins['io.containerd.cri.v1.images'];
    const runtime = config.plugins['io.containerd.cri.v1.runtime'];
    expect(config.version).toBe(3);
    expect(config.imports).toEqual(['/etc/containerd/conf.d/*.toml']);
    expect(images.pinned_images).toEqual({ sandbox });
    expect(images.registry).toEqual({ config_path: '/etc/containerd/certs.d' });
    expect(runtime.containerd.default_runtime_name).toBe('runc');
    expect(runtime.containerd.runtimes.runc.runtime_type).toBe('io.containerd.runc.v2');
    expect(runtime.containerd.runtimes.runc.options).toEqual({ BinaryName: '/usr/local/sbin/runc', SystemdCgroup: true });
    expect(runtime.cni).toEqual(cni);
    expect(Object.keys(config.plugins).sort()).toEqual(['io.containerd.cri.v1.images', 'io.containerd.cri.v1.runtime']);
  });

  it.each(['2.3.0', '2.3.4', '2.4.0'])('%s: version 4, the CRI tables of version 3 and the gRPC listener as a plugin section', async (containerdVersion) => {
    const config = await toml('/etc/containerd/config.toml', { containerdVersion });
    expect(config.version).toBe(4);
    expect(config.imports).toEqual(['/etc/containerd/conf.d/*.toml']);
    expect(config.plugins['io.containerd.server.v1.grpc']).toEqual({ address: '/run/containerd/containerd.sock' });
    expect(config.plugins['io.containerd.cri.v1.images']).toEqual({
      pinned_images: { sandbox: 'registry.k8s.io/pause:3.10.2' },
      registry: { config_path: '/etc/containerd/certs.d' },
    });
    expect(config.plugins['io.containerd.cri.v1.runtime']).toEqual({
      containerd: { default_runtime_name: 'runc', runtimes: { runc: { runtime_type: 'io.containerd.runc.v2', options: { BinaryName: '/usr/local/sbin/runc', SystemdCgroup: true } } } },
      cni: { bin_dirs: ['/opt/cni/bin'], conf_dir: '/etc/cni/net.d' },
    });
    // Version 4 ignores these top-level tables without a word (layout.ts).
    for (const ignored of ['grpc', 'ttrpc', 'metrics', 'debug']) expect(config).not.toHaveProperty(ignored);
  });

  it('follows --cgroup-driver, --sandbox-image and --prefix', async () => {
    const overrides = { cgroupDriver: 'cgroupfs', sandboxImage: 'mirror.example:5000/pause@sha256:abc', prefix: '/opt/node' } as const;
    const v3 = await toml('/etc/containerd/config.toml', overrides);
    expect(v3.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes.runc.options).toEqual({ BinaryName: '/opt/node/sbin/runc', SystemdCgroup: false });
    expect(v3.plugins['io.containerd.cri.v1.images'].pinned_images.sandbox).toBe(overrides.sandboxImage);
    const v2 = await toml('/etc/containerd/config.toml', { ...overrides, containerdVersion: '1.6.20' });
    expect(v2.plugins['io.containerd.grpc.v1.cri'].sandbox_image).toBe(overrides.sandboxImage);
    expect(v2.plugins['io.containerd.grpc.v1.cri'].containerd.runtimes.runc.options.SystemdCgroup).toBe(false);
  });

  it('starts with a comment that node-prep manages it and where drop-ins go', async () => {
    const content = (await files()).get('/etc/containerd/config.toml')!.content;
    expect(content.split('\n').slice(0, 2).join('\n')).toMatch(/^# Managed by node-prep.*\n.*\/etc\/containerd\/conf\.d\/\*\.toml/);
  });
});

describe('registry mirrors', () => {
  it('writes one hosts.toml per host, mirrors in flag order, duplicates dropped', async () => {
    const all = await files({
      registryMirrors: [
        { host: 'docker.io', url: 'https://mirror-a.example' },
        { host: 'ghcr.io', url: 'http://10.0.0.5:5000' },
        { host: 'docker.io', url: 'https://mirror-b.example/v2' },
        { host: 'docker.io', url: 'https://mirror-a.example' },
      ],
    });
    const docker = parse(all.get('/etc/containerd/certs.d/docker.io/hosts.toml')!.content) as Record<string, any>;
    // containerd serves docker.io from registry-1.docker.io; "https://docker.io" would not work.
    expect(docker.server).toBe('https://registry-1.docker.io');
    // A URL ending in /v2 is the registry's API root: containerd adds /v2 itself.
    expect(Object.keys(docker.host)).toEqual(['https://mirror-a.example', 'https://mirror-b.example']);
    expect(docker.host['https://mirror-a.example']).toEqual({ capabilities: ['pull', 'resolve'] });
    const ghcr = parse(all.get('/etc/containerd/certs.d/ghcr.io/hosts.toml')!.content) as Record<string, any>;
    expect(ghcr).toEqual({ server: 'https://ghcr.io', host: { 'http://10.0.0.5:5000': { capabilities: ['pull', 'resolve'] } } });
  });

  it.each(['_default', 'localhost:5000', '127.0.0.1:5000'])('writes no server line for %s (containerd picks its own)', async (host) => {
    const all = await files({ registryMirrors: [{ host, url: 'https://m.example' }] });
    const hosts = parse(all.get(`/etc/containerd/certs.d/${host}/hosts.toml`)!.content);
    expect(hosts).toEqual({ host: { 'https://m.example': { capabilities: ['pull', 'resolve'] } } });
  });

  it('writes a URL as containerd reads it, with what TOML must escape escaped', async () => {
    const url = 'https://m.example/a"b\\c/v2';
    const all = await files({ registryMirrors: [{ host: 'quay.io', url }] });
    const hosts = parse(all.get('/etc/containerd/certs.d/quay.io/hosts.toml')!.content) as any;
    // The URL parser's spelling (%22 for the quote, / for the backslash): what containerd requests.
    expect(hosts.host).toEqual({ 'https://m.example/a%22b/c/v2': { capabilities: ['pull', 'resolve'], override_path: true } });
  });

  it.each([
    ['..', 'https://m.example', /HOST must be/],
    ['a/b', 'https://m.example', /HOST must be/],
    ['docker.io', 'ftp://m.example', /http:\/\/ or https:\/\//],
    ['docker.io', 'mirror.example', /http:\/\/ or https:\/\//],
    ['docker.io', 'https://m.example/\nx', /http:\/\/ or https:\/\//],
  ])('refuses %j=%j', async (host, url, message) => {
    await expect(files({ registryMirrors: [{ host, url }] })).rejects.toThrow(message);
  });
});

describe('the other files', () => {
  it('crictl.yaml points at the containerd socket', async () => {
    const content = (await files()).get('/etc/crictl.yaml')!.content;
    const lines = content.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).toEqual([
      'runtime-endpoint: unix:///run/containerd/containerd.sock',
      'image-endpoint: unix:///run/containerd/containerd.sock',
      'timeout: 10',
    ]);
  });

  it('nerdctl.toml uses nerdctl key names', async () => {
    const nerdctl = parse((await files({ namespace: 'default', cgroupDriver: 'cgroupfs' })).get('/etc/nerdctl/nerdctl.toml')!.content);
    expect(nerdctl).toEqual({
      address: 'unix:///run/containerd/containerd.sock',
      namespace: 'default',
      cgroup_manager: 'cgroupfs',
      cni_path: '/opt/cni/bin',
      cni_netconfpath: '/etc/cni/net.d',
    });
  });

  it('kernel prerequisites', async () => {
    const all = await files();
    const body = (p: string) => all.get(p)!.content.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(body('/etc/modules-load.d/node-prep.conf')).toEqual(['overlay', 'br_netfilter']);
    expect(body('/etc/sysctl.d/90-node-prep.conf')).toEqual([
      'net.ipv4.ip_forward = 1',
      'net.bridge.bridge-nf-call-iptables = 1',
      'net.bridge.bridge-nf-call-ip6tables = 1',
    ]);
  });

  it('the unit runs <prefix>/bin/containerd and carries LimitNOFILE only for 1.x', async () => {
    const unit = async (containerdVersion: string) =>
      (await files({ containerdVersion, prefix: '/opt/np' })).get('/etc/systemd/system/containerd.service')!.content;
    const v1 = await unit('1.7.34');
    const v2 = await unit('2.2.0');
    expect(v2).toMatch(/^# Managed by node-prep/);
    expect(v2).toContain('\nExecStart=/opt/np/bin/containerd\n');
    expect(v2).toContain('\nAfter=network.target dbus.service\n');
    expect(v2).not.toContain('LimitNOFILE');
    expect(v1).toContain('\nLimitNOFILE=infinity\n');
    expect(v1).toContain('\nAfter=network.target local-fs.target dbus.service\n');
    expect(v2).not.toMatch(/\{\{|\}\}/);
    // systemd ends a start that hangs: node-prep waits for that verdict (START_VERDICT_MS is longer).
    expect(v2).toContain('\nTimeoutStartSec=60s\n');
  });
});

describe('renderNodeFiles', () => {
  it('lists each file once, with its component, mode and what', async () => {
    const list = await renderNodeFiles({ ...baseInputs, registryMirrors: [{ host: 'docker.io', url: 'https://m.example' }] });
    expect(list.map((f) => [f.nodePath, f.component, f.mode])).toEqual([
      ['/etc/containerd/config.toml', 'containerd', 0o644],
      ['/etc/systemd/system/containerd.service', 'containerd', 0o644],
      ['/etc/containerd/certs.d/docker.io/hosts.toml', 'containerd', 0o644],
      // In catalog order: each component's config files, as its entry names them.
      ['/etc/nerdctl/nerdctl.toml', 'nerdctl', 0o644],
      ['/etc/crictl.yaml', 'crictl', 0o644],
      ['/etc/modules-load.d/node-prep.conf', 'node', 0o644],
      ['/etc/sysctl.d/90-node-prep.conf', 'node', 0o644],
    ]);
    for (const f of list) {
      expect(f.what).not.toBe('');
      expect(f.content.endsWith('\n') && !f.content.endsWith('\n\n')).toBe(true);
      expect(f.content).not.toMatch(/\{\{|\}\}/);
    }
  });

  it('leaves out crictl and nerdctl files when those are not installed', async () => {
    const list = await renderNodeFiles({ ...baseInputs, components: ['containerd', 'runc', 'cni'] });
    expect(list.map((f) => f.nodePath)).not.toContain('/etc/crictl.yaml');
    expect(list.map((f) => f.nodePath)).not.toContain('/etc/nerdctl/nerdctl.toml');
  });

  it('is deterministic: same inputs, byte-identical files', async () => {
    const inputs = { ...baseInputs, registryMirrors: [{ host: 'docker.io', url: 'https://m.example' }] };
    expect(await renderNodeFiles(structuredClone(inputs))).toEqual(await renderNodeFiles(structuredClone(inputs)));
  });

  it.each([
    [{ prefix: 'usr/local' }, /--prefix/],
    [{ prefix: '/usr/my local' }, /--prefix/],
    [{ prefix: '/usr/%h' }, /--prefix/],
    [{ prefix: '/usr/../etc' }, /--prefix/],
    [{ sandboxImage: 'pause 3.10' }, /--sandbox-image/],
    [{ namespace: 'k8s io' }, /--namespace/],
    [{ namespace: '-x' }, /--namespace/],
    [{ containerdVersion: '1.5.0' }, /cannot configure containerd/],
  ])('refuses %j', async (overrides, message) => {
    await expect(renderNodeFiles({ ...baseInputs, ...overrides })).rejects.toThrow(message);
  });
});

describe('templates', () => {
  it('are found beside package.json', () => {
    expect(findTemplatesDir()).toBe(path.resolve(import.meta.dirname, '../../templates'));
  });

  it('are found from a bundled chunk in dist/', () => {
    const fromDist = new URL('../../dist/chunk-ABC.js', import.meta.url).href;
    expect(findTemplatesDir(fromDist)).toBe(path.resolve(import.meta.dirname, '../../templates'));
  });
});
