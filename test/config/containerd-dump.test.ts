// The rendered config.toml as the real containerd reads it: `containerd --config FILE config dump`
// prints the effective configuration (defaults + our file + imports); we assert values, not text.
// `config dump` only loads and merges the config: it needs no root, opens no socket and does not
// touch root/state (/var/lib/containerd, /run/containerd), so no temp copies of those are needed.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { parse } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSandboxImage, renderNodeFiles, type NodeConfigInputs } from '../../src/config/render.ts';
import { tomlString } from '../../src/config/template.ts';
import { E2E, findContainerd, missing, type Containerd } from './real-tools.ts';

const containerd1 = await findContainerd(1);
const containerd2 = await findContainerd(2);
const HOW = 'set NODE_PREP_TEST_CONTAINERD_1/_2 to a containerd binary or run `node scripts/fixtures/debian-release.mjs`';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'node-prep-dump-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let n = 0;
/**
 * Render for `version`, point `imports` at a private conf.d (so the host's /etc/containerd cannot
 * leak in), add drop-ins, dump. Warnings fail: 2.x warns about every key it does not know.
 */
async function dump(bin: Containerd | undefined, inputs: Partial<NodeConfigInputs>, dropIns: Record<string, string> = {}) {
  if (bin === undefined) throw missing('a real containerd', HOW);
  const dir = path.join(tmp, `case-${n++}`);
  await mkdir(path.join(dir, 'conf.d'), { recursive: true });
  const files = await renderNodeFiles({
    containerdVersion: bin.version, prefix: '/usr/local', cgroupDriver: 'systemd', registryMirrors: [],
    namespace: 'k8s.io', components: ['containerd', 'runc'], ...inputs,
  });
  const rendered = files.find((f) => f.nodePath === '/etc/containerd/config.toml')!.content;
  const imports = '"/etc/containerd/conf.d/*.toml"';
  expect(rendered.split(imports)).toHaveLength(2);
  await writeFile(path.join(dir, 'config.toml'), rendered.replace(imports, tomlString(path.join(dir, 'conf.d/*.toml'))));
  for (const [name, content] of Object.entries(dropIns)) await writeFile(path.join(dir, 'conf.d', name), content);
  const result = await execa(bin.path, ['--config', path.join(dir, 'config.toml'), 'config', 'dump'], { reject: false, timeout: 20_000 });
  expect(result.exitCode, result.stderr).toBe(0);
  expect(result.stderr.split('\n').filter((l) => /level=(warning|error|fatal)/.test(l))).toEqual([]);
  return parse(result.stdout) as Record<string, any>;
}

describe.skipIf(containerd1 === undefined && !E2E)(`containerd 1.x (${containerd1?.version ?? 'not found'}) reads the version 2 config`, () => {
  it.each([
    ['its own version', undefined, 'systemd'],
    ['1.7.34', '1.7.34', 'systemd'],
    ['its own version, cgroupfs', undefined, 'cgroupfs'],
  ] as const)('%s', async (_name, containerdVersion, cgroupDriver) => {
    const config = await dump(containerd1, { ...(containerdVersion && { containerdVersion }), cgroupDriver, prefix: '/opt/np' });
    const cri = config.plugins['io.containerd.grpc.v1.cri'];
    expect(config.version).toBe(2);
    expect(cri.sandbox_image).toBe('registry.k8s.io/pause:3.8');
    expect(cri.containerd.default_runtime_name).toBe('runc');
    expect(cri.containerd.runtimes.runc.runtime_type).toBe('io.containerd.runc.v2');
    expect(cri.containerd.runtimes.runc.options.SystemdCgroup).toBe(cgroupDriver === 'systemd');
    expect(cri.containerd.runtimes.runc.options.BinaryName).toBe('/opt/np/sbin/runc');
    expect(cri.cni.bin_dir).toBe('/opt/cni/bin');
    expect(cri.cni.conf_dir).toBe('/etc/cni/net.d');
    expect(cri.registry.config_path).toBe('/etc/containerd/certs.d');
    expect(config.disabled_plugins ?? []).not.toContain('cri');
  });

  it('takes --sandbox-image over its own default', async () => {
    const config = await dump(containerd1, { sandboxImage: 'registry.example/pause:9' });
    expect(config.plugins['io.containerd.grpc.v1.cri'].sandbox_image).toBe('registry.example/pause:9');
  });

  // Upstream quirk kept visible: before 2.0 an imported file replaces a whole plugin section
  // (https://github.com/containerd/containerd/pull/9982), so a CRI drop-in drops our settings.
  it('lets a CRI drop-in replace the whole CRI section (1.x behaviour)', async () => {
    const config = await dump(containerd1, {}, {
      'gpu.toml': 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n  runtime_type = "io.containerd.runc.v2"\n',
    });
    const cri = config.plugins['io.containerd.grpc.v1.cri'];
    expect(cri.containerd.runtimes.nvidia.runtime_type).toBe('io.containerd.runc.v2');
    expect(cri.registry.config_path).toBe('');
    expect(cri.containerd.runtimes.runc).toBeUndefined();
  });
});

describe.skipIf(containerd2 === undefined && !E2E)(`containerd 2.x (${containerd2?.version ?? 'not found'}) reads the version 3 config`, () => {
  // The 2.x binary here is one release; the other lines' renders differ only in the sandbox image
  // and (2.0) in bin_dir, which 2.1+ still accepts, so they are checked against it too.
  it.each([
    ['its own version', undefined, undefined, 'systemd'],
    ['its own version, cgroupfs', undefined, undefined, 'cgroupfs'],
    ['2.0.11', '2.0.11', 'registry.k8s.io/pause:3.10', 'systemd'],
    ['2.2.0', '2.2.0', 'registry.k8s.io/pause:3.10.1', 'systemd'],
  ] as const)('%s', async (_name, containerdVersion, pause, cgroupDriver) => {
    const sandbox = pause ?? defaultSandboxImage(containerd2?.version ?? '2.0.0');
    const config = await dump(containerd2, { ...(containerdVersion && { containerdVersion }), cgroupDriver, prefix: '/opt/np' });
    const images = config.plugins['io.containerd.cri.v1.images'];
    const runtime = config.plugins['io.containerd.cri.v1.runtime'];
    expect(config.version).toBe(3);
    expect(images.pinned_images.sandbox).toBe(sandbox);
    expect(images.registry.config_path).toBe('/etc/containerd/certs.d');
    expect(runtime.containerd.default_runtime_name).toBe('runc');
    expect(runtime.containerd.runtimes.runc.runtime_type).toBe('io.containerd.runc.v2');
    expect(runtime.containerd.runtimes.runc.options.SystemdCgroup).toBe(cgroupDriver === 'systemd');
    expect(runtime.containerd.runtimes.runc.options.BinaryName).toBe('/opt/np/sbin/runc');
    if (containerdVersion === '2.0.11') expect(runtime.cni.bin_dir).toBe('/opt/cni/bin');
    else expect(runtime.cni.bin_dirs).toEqual(['/opt/cni/bin']);
    expect(runtime.cni.conf_dir).toBe('/etc/cni/net.d');
    expect(config.disabled_plugins ?? []).toEqual([]);
  });

  // Why 2.2 and older get version 3: they refuse the version 4 file that 2.3+ gets (held to 2.3.4's
  // own dumps in config-v4-dump.test.ts).
  it('refuses the version 4 config rendered for 2.3.4', async () => {
    if (containerd2 === undefined) throw missing('a real containerd', HOW);
    const files = await renderNodeFiles({ containerdVersion: '2.3.4', prefix: '/usr/local', cgroupDriver: 'systemd', registryMirrors: [], namespace: 'k8s.io', components: ['containerd'] });
    const file = path.join(tmp, 'v4.toml');
    await writeFile(file, files.find((f) => f.nodePath === '/etc/containerd/config.toml')!.content.replace('"/etc/containerd/conf.d/*.toml"', tomlString(path.join(tmp, 'none/*.toml'))));
    const result = await execa(containerd2.path, ['--config', file, 'config', 'dump'], { reject: false, timeout: 20_000 });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('expected containerd config version equal to or less than `3`, got `4`');
  });

  it("renders the pause image this containerd build itself defaults to", async () => {
    if (containerd2 === undefined) throw missing('a real containerd', HOW);
    const result = await execa(containerd2.path, ['config', 'default']);
    const builtIn = (parse(result.stdout) as Record<string, any>).plugins['io.containerd.cri.v1.images'].pinned_images.sandbox;
    expect(defaultSandboxImage(containerd2.version)).toBe(builtIn);
  });

  it('merges a CRI drop-in into our sections (2.x behaviour)', async () => {
    const config = await dump(containerd2, {}, {
      'gpu.toml': 'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia]\n  runtime_type = "io.containerd.runc.v2"\n',
    });
    const runtime = config.plugins['io.containerd.cri.v1.runtime'];
    expect(runtime.containerd.runtimes.nvidia.runtime_type).toBe('io.containerd.runc.v2');
    expect(runtime.containerd.runtimes.runc.options.SystemdCgroup).toBe(true);
    expect(config.plugins['io.containerd.cri.v1.images'].registry.config_path).toBe('/etc/containerd/certs.d');
  });

  it('lets a drop-in override one of our values', async () => {
    const config = await dump(containerd2, {}, {
      'cgroupfs.toml': 'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]\n  SystemdCgroup = false\n',
    });
    const options = config.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes.runc.options;
    expect(options).toMatchObject({ SystemdCgroup: false, BinaryName: '/usr/local/sbin/runc' });
  });
});
