// The effective-config reading and the temporary config, from `config dump` shapes of containerd
// 1.6 (version 2, one cri plugin) and 2.x (version 3, cri.v1.runtime + cri.v1.images).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { configMismatches, criSettings } from '../../src/smoke/config.ts';
import { listenersOutside, temporaryConfig, tempPaths } from '../../src/smoke/temp-config.ts';
import type { SmokeExpect } from '../../src/smoke/types.ts';

const DUMP_16 = `
imports = ["/etc/containerd/config.toml"]
root = "/var/lib/containerd"
state = "/run/containerd"
version = 2
disabled_plugins = []
[cgroup]
  path = ""
[debug]
  address = ""
[grpc]
  address = "/run/containerd/containerd.sock"
  tcp_address = ""
[metrics]
  address = ""
[ttrpc]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.8"
  systemd_cgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/local/sbin/runc"
        SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.internal.v1.opt"]
  path = "/opt/containerd"
`;

const DUMP_2X = `
version = 3
root = '/var/lib/containerd'
state = '/run/containerd'
imports = ['/etc/containerd/conf.d/*.toml']
disabled_plugins = []
[grpc]
  address = '/run/containerd/containerd.sock'
[ttrpc]
  address = ''
[debug]
  address = ''
[metrics]
  address = ''
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = 'registry.k8s.io/pause:3.10'
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = '/etc/containerd/certs.d'
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = '/usr/local/sbin/runc'
  Root = ''
  SystemdCgroup = true
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]
  runtime_type = 'io.containerd.kata.v2'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata.options]
  ConfigPath = '/etc/kata/configuration.toml'
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dir = ''
  bin_dirs = ['/opt/cni/bin']
  conf_dir = '/etc/cni/net.d'
[plugins.'io.containerd.internal.v1.opt']
  path = '/opt/containerd'
[plugins.'io.containerd.nri.v1.nri']
  disable = false
  socket_path = '/var/run/nri/nri.sock'
`;

const expect16: SmokeExpect = {
  versions: { containerd: '1.6.20', runc: '1.1.5' }, systemdCgroup: true, sandboxImage: 'registry.k8s.io/pause:3.8',
  configPath: '/etc/containerd/certs.d', cniBinDir: '/opt/cni/bin', cniConfDir: '/etc/cni/net.d',
};
const expect2x: SmokeExpect = { ...expect16, versions: { containerd: '2.1.9', runc: '1.1.5' }, sandboxImage: 'registry.k8s.io/pause:3.10' };

describe('criSettings', () => {
  it('reads the 1.x layout', () => {
    expect(criSettings(parse(DUMP_16))).toEqual({
      configVersion: 2, criDisabled: false, defaultRuntime: 'runc', systemdCgroup: true, sandboxImage: 'registry.k8s.io/pause:3.8',
      configPath: '/etc/containerd/certs.d', cniBinDirs: ['/opt/cni/bin'], cniConfDir: '/etc/cni/net.d',
    });
  });

  it('reads the 2.x layout (bin_dirs, an empty legacy bin_dir ignored)', () => {
    expect(criSettings(parse(DUMP_2X))).toEqual({
      configVersion: 3, criDisabled: false, defaultRuntime: 'runc', systemdCgroup: true, sandboxImage: 'registry.k8s.io/pause:3.10',
      configPath: '/etc/containerd/certs.d', cniBinDirs: ['/opt/cni/bin'], cniConfDir: '/etc/cni/net.d',
    });
  });

  it('follows default_runtime_name', () => {
    const dump = parse(DUMP_2X.replace("default_runtime_name = 'runc'", "default_runtime_name = 'kata'"));
    expect(criSettings(dump)).toMatchObject({ defaultRuntime: 'kata', systemdCgroup: undefined });
  });
});

describe('configMismatches', () => {
  it('is empty when every intended value is in effect', () => {
    expect(configMismatches(criSettings(parse(DUMP_16)), expect16)).toEqual([]);
    expect(configMismatches(criSettings(parse(DUMP_2X)), expect2x)).toEqual([]);
  });

  it('names each value that differs', () => {
    const dump = parse(DUMP_16.replace('SystemdCgroup = true', 'SystemdCgroup = false').replace('pause:3.8', 'pause:3.6'));
    expect(configMismatches(criSettings(dump), expect16)).toEqual([
      'SystemdCgroup (runtime runc): want true, effective false',
      'sandbox_image: want "registry.k8s.io/pause:3.8", effective "registry.k8s.io/pause:3.6"',
    ]);
  });

  // containerd 1.6 fed a version 3 file exits 0 and dumps its own defaults.
  it('catches a 2.x file read by 1.x through the values', () => {
    const defaults = parse('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.6"\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/opt/cni/bin"\n  conf_dir = "/etc/cni/net.d"\n');
    const found = configMismatches(criSettings(defaults), expect16);
    expect(found[0]).toBe('SystemdCgroup (runtime runc): want true, effective unset');
    expect(found).toContain('registry config_path: want "/etc/containerd/certs.d", effective unset');
  });

  it('reports a disabled cri plugin and a missing CNI bin dir', () => {
    const dump = parse(DUMP_2X.replace('disabled_plugins = []', "disabled_plugins = ['io.containerd.grpc.v1.cri']").replace("bin_dirs = ['/opt/cni/bin']", "bin_dirs = ['/usr/lib/cni']"));
    expect(configMismatches(criSettings(dump), expect2x)).toEqual([
      'the cri plugin is in disabled_plugins',
      'cni bin dir: want "/opt/cni/bin", effective ["/usr/lib/cni"]',
    ]);
  });
});

describe('temporaryConfig', () => {
  const paths = tempPaths('/tmp/np-smoke-x');

  it('moves everything host-wide into the temp dir and adapts SystemdCgroup without systemd (2.x)', () => {
    const effective = parse(DUMP_2X);
    const { config, adaptations, cniConfSource } = temporaryConfig({ effective, paths, root: '/img', systemdRunning: false });
    const c = config as any;
    expect(c.imports).toEqual([]);
    expect([c.root, c.state, c.grpc.address]).toEqual(['/tmp/np-smoke-x/root', '/tmp/np-smoke-x/state', '/tmp/np-smoke-x/containerd.sock']);
    expect([c.ttrpc.address, c.grpc.tcp_address, c.debug.address, c.metrics.address]).toEqual(['/tmp/np-smoke-x/containerd.sock.ttrpc', '', '', '']);
    expect(c.plugins['io.containerd.internal.v1.opt'].path).toBe('/tmp/np-smoke-x/opt');
    expect(c.plugins['io.containerd.nri.v1.nri'].disable).toBe(true);
    const runtime = c.plugins['io.containerd.cri.v1.runtime'];
    expect(runtime.containerd.runtimes.runc.options).toEqual({ BinaryName: '/img/usr/local/sbin/runc', Root: '/tmp/np-smoke-x/runc-cri', SystemdCgroup: false });
    // Another runtime type's options are not runc's: left alone.
    expect(runtime.containerd.runtimes.kata.options).toEqual({ ConfigPath: '/etc/kata/configuration.toml' });
    expect(runtime.cni).toMatchObject({ bin_dir: '', bin_dirs: ['/img/opt/cni/bin'], conf_dir: '/tmp/np-smoke-x/net.d' });
    expect(c.plugins['io.containerd.cri.v1.images'].registry.config_path).toBe('/img/etc/containerd/certs.d');
    expect(cniConfSource).toBe('/img/etc/cni/net.d');
    expect(adaptations).toHaveLength(1);
    expect(adaptations[0]).toMatch(/^SystemdCgroup = true → false for runtime runc in the temporary config: systemd is not running here/);
    expect(adaptations[0]).toMatch(/the installed config keeps SystemdCgroup = true/);
    // The input is not changed.
    expect((effective as any).plugins['io.containerd.cri.v1.runtime'].containerd.runtimes.runc.options.SystemdCgroup).toBe(true);
  });

  it('keeps SystemdCgroup when systemd runs, and node paths when the root is /', () => {
    const { config, adaptations } = temporaryConfig({ effective: parse(DUMP_16), paths, root: '/', systemdRunning: true });
    const cri = (config as any).plugins['io.containerd.grpc.v1.cri'];
    expect(adaptations).toEqual([]);
    expect(cri.containerd.runtimes.runc.options).toEqual({ BinaryName: '/usr/local/sbin/runc', SystemdCgroup: true, Root: '/tmp/np-smoke-x/runc-cri' });
    expect(cri.cni).toEqual({ bin_dir: '/opt/cni/bin', conf_dir: '/tmp/np-smoke-x/net.d' });
    expect(cri.registry.config_path).toBe('/etc/containerd/certs.d');
    expect((config as any).plugins['io.containerd.nri.v1.nri']).toBeUndefined();
  });

  it('does not move this host into the configured cgroup, and says so', () => {
    const { config, adaptations } = temporaryConfig({ effective: parse(DUMP_16.replace('path = ""', 'path = "/containerd"')), paths, root: '/', systemdRunning: false });
    expect((config as any).cgroup.path).toBe('');
    expect(adaptations.map((a) => a.split(' ')[0])).toEqual(['[cgroup]', 'SystemdCgroup']);
  });
});

// What a real containerd 2.3.4 printed for `config dump` of a version 3 file: already version 4, with
// the listeners in io.containerd.server.v1.* plugin sections and top-level [grpc]/[ttrpc] ignored.
const DUMP_234 = readFileSync(path.join(import.meta.dirname, '../fixtures/containerd/containerd-2.3.4-config-dump-of-a-v3-file.toml'), 'utf8');

describe('temporaryConfig on containerd 2.3 (config version 4)', () => {
  const paths = tempPaths('/tmp/np-smoke-x');
  const server = (c: any, id: string) => c.plugins[`io.containerd.server.v1.${id}`];

  it('moves the gRPC and ttrpc listeners in their plugin sections into the temp dir and writes no top-level listener keys', () => {
    const { config, refusal } = temporaryConfig({ effective: parse(DUMP_234), paths, root: '/img', systemdRunning: false });
    const c = config as any;
    expect(c.version).toBe(4);
    expect(server(c, 'grpc').address).toBe('/tmp/np-smoke-x/containerd.sock');
    expect(server(c, 'ttrpc').address).toBe('/tmp/np-smoke-x/containerd.sock.ttrpc');
    expect([server(c, 'grpc-tcp').address, server(c, 'debug').address, server(c, 'metrics').address]).toEqual(['', '', '']);
    expect([c.grpc, c.ttrpc, c.metrics, c.debug.address]).toEqual([undefined, undefined, undefined, undefined]);
    expect(c.debug.level).toBe('');
    expect(refusal).toBeUndefined();
  });

  it('puts the shim sockets in the temp dir (2.3 has the setting) and the streaming server on an ephemeral loopback port', () => {
    const { config, shimSocketDir, overrides } = temporaryConfig({ effective: parse(DUMP_234), paths, root: '/img', systemdRunning: false });
    const c = config as any;
    expect(c.plugins['io.containerd.shim.v1.manager'].socket_dir).toBe('/tmp/np-smoke-x/s');
    expect(shimSocketDir).toBe('/tmp/np-smoke-x/s');
    expect(overrides.join('; ')).not.toMatch(/shim sockets in \/run/);
    expect(c.plugins['io.containerd.grpc.v1.cri']).toMatchObject({ stream_server_address: '127.0.0.1', stream_server_port: '0', disable_tcp_service: true });
  });

  it('empties site listener settings from top-level tables and plugin sections alike', () => {
    const site = parse(DUMP_234) as any;
    site.grpc = { address: '/run/containerd/containerd.sock', tcp_address: '0.0.0.0:1234' };
    site.ttrpc = { address: '/run/containerd/containerd.sock.ttrpc' };
    site.metrics = { address: '0.0.0.0:1338' };
    site.debug.address = '/run/containerd/debug.sock';
    server(site, 'debug').address = '/run/containerd/debug.sock';
    server(site, 'metrics').address = '127.0.0.1:1338';
    server(site, 'grpc-tcp').address = '0.0.0.0:1234';
    site.plugins['io.containerd.grpc.v1.cri'].stream_server_port = '10010';
    site.plugins['io.containerd.snapshotter.v1.overlayfs'].root_path = '/var/lib/containerd/overlay';
    const { config } = temporaryConfig({ effective: site, paths, root: '/', systemdRunning: true });
    const c = config as any;
    expect([server(c, 'debug').address, server(c, 'metrics').address, server(c, 'grpc-tcp').address]).toEqual(['', '', '']);
    expect([c.grpc, c.ttrpc, c.metrics, c.debug.address]).toEqual([undefined, undefined, undefined, undefined]);
    expect(c.plugins['io.containerd.grpc.v1.cri'].stream_server_port).toBe('0');
    expect(c.plugins['io.containerd.snapshotter.v1.overlayfs'].root_path).toBe('');
  });

  it('refuses a scratch dir too long for the shim sockets instead of letting containerd fail', () => {
    const long = tempPaths(`/tmp/${'d'.repeat(40)}`);
    const { refusal } = temporaryConfig({ effective: parse(DUMP_234), paths: long, root: '/', systemdRunning: true });
    expect(refusal).toMatch(/shim socket dir \/tmp\/d+\/s is longer than the 42 bytes containerd allows: set TMPDIR/);
  });

  it('says where the shim sockets go when the containerd has no setting for them (before 2.3)', () => {
    const { shimSocketDir, overrides } = temporaryConfig({ effective: parse(DUMP_2X), paths, root: '/', systemdRunning: true });
    expect(shimSocketDir).toBe('/run/containerd/s');
    expect(overrides).toContain('shim sockets in /run/containerd/s (this containerd has no setting for them; removed at cleanup)');
  });

  it('reads the CRI settings of a version 4 dump', () => {
    expect(criSettings(parse(DUMP_234))).toEqual({
      configVersion: 4, criDisabled: false, defaultRuntime: 'runc', systemdCgroup: false, sandboxImage: 'registry.k8s.io/pause:3.10.2',
      configPath: '/etc/containerd/certs.d', cniBinDirs: ['/opt/cni/bin'], cniConfDir: '/etc/cni/net.d',
    });
  });
});

describe('temporaryConfig keeps every other host path out of reach', () => {
  const paths = tempPaths('/tmp/np-smoke-x');

  it('moves temp, CDI and each runtime\'s own CNI conf dir, drops proxy plugins, plugin_dir and the tracing endpoint', () => {
    const site = parse(DUMP_2X) as any;
    site.temp = '/var/tmp/containerd';
    site.plugin_dir = '/opt/containerd/plugins';
    site.proxy_plugins = { stargz: { type: 'snapshot', address: '/run/containerd-stargz-grpc/containerd-stargz-grpc.sock' } };
    const runtime = site.plugins['io.containerd.cri.v1.runtime'];
    runtime.cdi_spec_dirs = ['/etc/cdi', '/var/run/cdi'];
    runtime.containerd.runtimes.runc.cni_conf_dir = '/etc/cni/runc.d';
    runtime.containerd.runtimes.kata.cni_conf_dir = '/etc/cni/kata.d';
    site.plugins['io.containerd.transfer.v1.local'] = { config_path: '/etc/containerd/certs.d' };
    site.plugins['io.containerd.image-verifier.v1.bindir'] = { bin_dir: '/opt/containerd/image-verifier/bin' };
    site.plugins['io.containerd.tracing.processor.v1.otlp'] = { endpoint: 'collector.example:4317' };
    const { config, adaptations } = temporaryConfig({ effective: site, paths, root: '/img', systemdRunning: true });
    const c = config as any;
    expect([c.temp, c.plugin_dir, c.proxy_plugins]).toEqual(['/tmp/np-smoke-x/tmp', '', {}]);
    const rt = c.plugins['io.containerd.cri.v1.runtime'];
    expect(rt.cdi_spec_dirs).toEqual(['/tmp/np-smoke-x/cdi']);
    expect([rt.containerd.runtimes.runc.cni_conf_dir, rt.containerd.runtimes.kata.cni_conf_dir]).toEqual(['', '']);
    expect(c.plugins['io.containerd.transfer.v1.local'].config_path).toBe('/img/etc/containerd/certs.d');
    expect(c.plugins['io.containerd.image-verifier.v1.bindir'].bin_dir).toBe('/img/opt/containerd/image-verifier/bin');
    expect(c.plugins['io.containerd.tracing.processor.v1.otlp'].endpoint).toBe('');
    expect(adaptations).toEqual([expect.stringMatching(/^\[proxy_plugins\] stargz not loaded in the temporary containerd/)]);
  });
});

describe('listenersOutside: the temporary config as containerd reads it back', () => {
  const paths = tempPaths('/tmp/np-smoke-x');

  it('is empty for the temporary config of a 2.3 dump', () => {
    const { config } = temporaryConfig({ effective: parse(DUMP_234), paths, root: '/', systemdRunning: true });
    expect(listenersOutside(config, paths)).toEqual([]);
  });

  it('names what 2.3 would open on the host when the listeners were written in the old top-level tables', () => {
    // What node-prep 0.1 wrote for a version 4 dump: top-level keys, plugin sections left as dumped.
    const old = parse(DUMP_234) as any;
    old.grpc = { address: paths.socket };
    old.ttrpc = { address: '' };
    expect(listenersOutside(old, paths)).toEqual([
      `plugins.io.containerd.server.v1.grpc.address = "/run/containerd/containerd.sock"`,
      `plugins.io.containerd.server.v1.ttrpc.address = "/run/containerd/containerd.sock.ttrpc"`,
      `plugins.io.containerd.shim.v1.manager.socket_dir = ""`,
    ]);
  });

  it('accepts an empty ttrpc address up to version 3 (derived from gRPC) and names debug and metrics addresses', () => {
    const { config } = temporaryConfig({ effective: parse(DUMP_2X), paths, root: '/', systemdRunning: true });
    const c = config as any;
    c.ttrpc.address = '';
    expect(listenersOutside(c, paths)).toEqual([]);
    c.debug.address = '/run/containerd/debug.sock';
    c.metrics.address = '127.0.0.1:1338';
    expect(listenersOutside(c, paths)).toEqual(['debug.address = "/run/containerd/debug.sock"', 'metrics.address = "127.0.0.1:1338"']);
  });
});
