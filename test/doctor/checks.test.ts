import { describe, expect, it } from 'vitest';
import { runChecks } from '../../src/doctor/checks.ts';
import type { Facts, Level } from '../../src/doctor/types.ts';
import { healthyFacts } from './facts-fixture.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function levelOf(facts: Facts, id: string): { level: Level; title: string; detail: string; hint?: string | undefined; scope: string } {
  const f = runChecks(facts).find((x) => x.id === id);
  if (!f) throw new Error(`no finding ${id}`);
  return f;
}

describe('a healthy node', () => {
  it('has only ok findings, with the stable ids', () => {
    const findings = runChecks(healthyFacts());
    expect(findings.filter((f) => f.level !== 'ok')).toEqual([]);
    expect(findings.map((f) => f.id)).toEqual([
      'arch', 'os', 'kernel', 'libc', 'cgroup', 'systemd', 'module.overlay', 'module.br_netfilter',
      'sysctl.net.ipv4.ip_forward', 'sysctl.net.bridge.bridge-nf-call-iptables', 'sysctl.net.bridge.bridge-nf-call-ip6tables',
      'swap', 'runtime.docker-containerd', 'runtime.distro-containerd', 'unit.masked', 'containerd.drop-in-version', 'cni.bin-owner', 'socket', 'disk',
    ]);
    expect(new Set(findings.map((f) => f.scope))).toEqual(new Set(['node']));
  });
});

describe('decisions on a live host', () => {
  const disk = (varFree: number, usrFree = 50 * GiB): Partial<Facts> => ({
    disk: [
      { path: '/var', measured: '/var', freeBytes: varFree },
      { path: '/usr/local', measured: '/usr/local', freeBytes: usrFree },
    ],
  });
  it.each<[string, Partial<Facts>, string, Level, RegExp]>([
    ['s390x machine', { arch: { host: 's390x', target: 'amd64' } }, 'arch', 'blocker', /s390x: node-prep installs for amd64 and arm64 only/],
    ['--arch arm64 on amd64', { arch: { host: 'x86_64', target: 'arm64' } }, 'arch', 'blocker', /--arch arm64 does not match this amd64 machine/],
    ['aarch64 machine', { arch: { host: 'aarch64', target: 'arm64' } }, 'arch', 'ok', /linux\/arm64/],
    ['kernel 4.14', { kernel: { release: '4.14.336' } }, 'kernel', 'warn', /older than 4\.19/],
    ['kernel 5.4 on cgroup v2', { kernel: { release: '5.4.0-150-generic' } }, 'kernel', 'warn', /older than 5\.8.*cgroup v2/],
    ['kernel unknown', { kernel: { release: undefined } }, 'kernel', 'warn', /not known/],
    ['glibc 2.35', { libc: { kind: 'glibc', version: '2.35', source: 's' } }, 'libc', 'ok', /glibc 2\.35/],
    ['glibc 2.31', { libc: { kind: 'glibc', version: '2.31', source: 's' } }, 'libc', 'warn', /glibc 2\.31 is older than 2\.35/],
    ['glibc 2.9 (numeric, not string, compare)', { libc: { kind: 'glibc', version: '2.9', source: 's' } }, 'libc', 'warn', /older than 2\.35/],
    ['musl', { libc: { kind: 'musl', version: '1.2.5-r0', source: '/lib/ld-musl-x86_64.so.1' } }, 'libc', 'warn', /musl libc 1\.2\.5-r0/],
    ['no libc', { libc: { kind: 'unknown', detail: 'none' } }, 'libc', 'warn', /No C library/],
    ['cgroup v1', { cgroup: { mode: 'v1', controllers: ['cpu', 'memory'], source: 's' } }, 'cgroup', 'blocker', /^cgroup v1: the kubelet refuses cgroup v1 by default from Kubernetes 1\.35/],
    ['cgroup hybrid', { cgroup: { mode: 'hybrid', controllers: ['cpu', 'memory'], source: 's' } }, 'cgroup', 'blocker', /^cgroup v1 \(hybrid\)/],
    ['cgroup v2 without memory', { cgroup: { mode: 'v2', controllers: ['cpu', 'cpuset', 'pids'], source: 's' } }, 'cgroup', 'blocker', /without the memory controller/],
    ['no cgroups', { cgroup: { mode: 'none', controllers: [], source: 's' } }, 'cgroup', 'blocker', /No cgroup hierarchy/],
    ['PID 1 not systemd', { init: { systemd: false, detail: 'PID 1 is "tini"' } }, 'systemd', 'blocker', /systemd is not PID 1/],
    ['overlay loadable', { modules: { ...healthyFacts().modules, overlay: { state: 'loadable', detail: 'd' } } }, 'module.overlay', 'ok', /install loads it/],
    ['overlay built in', { modules: { ...healthyFacts().modules, overlay: { state: 'builtin', detail: 'd' } } }, 'module.overlay', 'ok', /built in/],
    ['overlay missing', { modules: { ...healthyFacts().modules, overlay: { state: 'missing', detail: 'd' } } }, 'module.overlay', 'warn', /missing and cannot be loaded/],
    ['br_netfilter missing', { modules: { ...healthyFacts().modules, br_netfilter: { state: 'missing', detail: 'd' } } }, 'module.br_netfilter', 'warn', /br_netfilter is missing/],
    ['ip_forward 0', { sysctls: { ...healthyFacts().sysctls, 'net.ipv4.ip_forward': '0' } }, 'sysctl.net.ipv4.ip_forward', 'warn', /is 0.*needs 1/],
    ['bridge sysctl absent', { sysctls: { ...healthyFacts().sysctls, 'net.bridge.bridge-nf-call-iptables': undefined } }, 'sysctl.net.bridge.bridge-nf-call-iptables', 'warn', /does not exist \(it appears when br_netfilter is loaded\)/],
    ['swap on', { swap: [{ name: '/swap.img', sizeKiB: 2 * 1024 * 1024 }] }, 'swap', 'warn', /Swap is on \(\/swap\.img, 2\.0 GiB\)/],
    ['swap unknown', { swap: undefined }, 'swap', 'warn', /not known/],
    ['containerd.io with CRI disabled', {
      packages: [{ manager: 'dpkg', name: 'containerd.io', version: '1.7.27-1' }, { manager: 'dpkg', name: 'docker-ce', version: '5:28.1.1-1' }],
      containerdBinaries: ['/usr/bin/containerd'],
      containerdConfig: { path: '/etc/containerd/config.toml', exists: true, criDisabled: true },
    }, 'runtime.docker-containerd', 'warn', /containerd\.io is installed with CRI disabled/],
    ['containerd.io with CRI on', { packages: [{ manager: 'rpm', name: 'containerd.io', version: '1.7.27-3.1.el9' }] }, 'runtime.docker-containerd', 'warn', /containerd\.io is installed$/],
    ['Debian containerd package', { packages: [{ manager: 'dpkg', name: 'containerd', version: '1.6.20~ds1-1+b1' }], containerdBinaries: ['/usr/bin/containerd'] }, 'runtime.distro-containerd', 'warn', /distribution containerd package is installed: containerd 1\.6\.20~ds1-1\+b1 \(dpkg\)/],
    ["containerd.io's own /usr/bin/containerd is not a distro one", { packages: [{ manager: 'dpkg', name: 'containerd.io', version: '1' }], containerdBinaries: ['/usr/bin/containerd'] }, 'runtime.distro-containerd', 'ok', /No other containerd/],
    ['a hand-installed containerd', { containerdBinaries: ['/usr/local/bin/containerd'] }, 'runtime.distro-containerd', 'warn', /not installed by node-prep or a package: \/usr\/local\/bin\/containerd/],
    ["node-prep's own containerd", { containerdBinaries: ['/usr/local/bin/containerd'], nodePrepBinary: '/usr/local/bin/containerd' }, 'runtime.distro-containerd', 'ok', /No other containerd/],
    ['masked unit', { maskedUnits: ['/etc/systemd/system/containerd.service'] }, 'unit.masked', 'blocker', /containerd\.service is masked/],
    ['socket in use', { socket: { path: '/run/containerd/containerd.sock', state: 'listening' }, processes: [{ pid: 812, exe: '/usr/bin/containerd' }] }, 'socket', 'warn', /Socket in use/],
    ['socket held by node-prep\'s own containerd', { socket: { path: '/run/containerd/containerd.sock', state: 'listening' }, nodePrepBinary: '/usr/local/bin/containerd', containerdBinaries: ['/usr/local/bin/containerd'], processes: [{ pid: 812, exe: '/usr/local/bin/containerd' }] }, 'socket', 'ok', /^node-prep's containerd listens on/],
    ['socket held by another containerd beside node-prep\'s', { socket: { path: '/run/containerd/containerd.sock', state: 'listening' }, nodePrepBinary: '/usr/local/bin/containerd', processes: [{ pid: 812, exe: '/usr/bin/containerd' }] }, 'socket', 'warn', /Socket in use/],
    ['stale socket', { socket: { path: '/run/containerd/containerd.sock', state: 'stale' } }, 'socket', 'ok', /stale socket/],
    ['socket path is a file', { socket: { path: '/run/containerd/containerd.sock', state: 'not-a-socket' } }, 'socket', 'warn', /not a socket/],
    ['1.5 GiB free', disk(1.5 * GiB), 'disk', 'warn', /Only 1\.5 GiB free under \/var/],
    ['300 MiB free in /usr/local', disk(50 * GiB, 300 * MiB), 'disk', 'blocker', /Only 300 MiB free under \/usr\/local/],
    ['disk not measurable', { disk: [{ path: '/var', measured: '/var', freeBytes: undefined, error: 'EACCES' }] }, 'disk', 'warn', /not known/],
  ])('%s → %s %s', (_name, over, id, level, title) => {
    const f = levelOf(healthyFacts(over), id);
    expect(f.level).toBe(level);
    expect(f.title).toMatch(title);
  });

  it('explains the cgroup v1 blocker with failCgroupV1 and the Kubernetes doc', () => {
    const [f] = runChecks(healthyFacts({ cgroup: { mode: 'hybrid', controllers: ['cpu'], source: 's' } })).filter((x) => x.id === 'cgroup');
    expect(f!.detail).toMatch(/maintenance mode in 1\.31/);
    expect(f!.detail).toMatch(/failCgroupV1: true/);
    expect(f!.detail).toContain('https://kubernetes.io/docs/concepts/architecture/cgroups/');
    expect(f!.hint).toMatch(/systemd\.unified_cgroup_hierarchy=1/);
  });

  it('points at --no-start and --root when systemd is not PID 1', () => {
    expect(levelOf(healthyFacts({ init: { systemd: false, detail: 'x' } }), 'systemd').hint).toMatch(/--no-start.*--root DIR/);
  });

  it('names the static containerd asset when the glibc is too old', () => {
    expect(levelOf(healthyFacts({ libc: { kind: 'glibc', version: '2.28', source: 's' } }), 'libc').hint).toContain('containerd-static-VERSION-linux-amd64.tar.gz');
  });

  it("says node-prep replaces Docker's config and that the socket is shared", () => {
    const [f] = runChecks(
      healthyFacts({ packages: [{ manager: 'dpkg', name: 'containerd.io', version: '1' }], containerdConfig: { path: '/etc/containerd/config.toml', exists: true, criDisabled: true } }),
    ).filter((x) => x.id === 'runtime.docker-containerd');
    expect(f!.detail).toMatch(/disabled_plugins = \["cri"\].*shares \/run\/containerd\/containerd\.sock/);
    expect(f!.hint).toMatch(/backs up and replaces \/etc\/containerd\/config\.toml/);
  });
});

describe('decisions under --root', () => {
  const nvidia4 = { path: '/etc/containerd/conf.d/99-nvidia.toml', version: 4 };
  const config = (version: number) => ({ path: '/etc/containerd/config.toml', exists: true, criDisabled: false, version });
  const image = (over: Partial<Facts> = {}) => healthyFacts({ root: '/img', socket: undefined, arch: { host: 'x86_64', target: 'amd64', image: 'amd64', imageSource: 'the ELF header of /bin/sh' }, ...over });

  it('marks host facts as the build host and never lets them block', () => {
    const findings = runChecks(image({ cgroup: { mode: 'v1', controllers: ['cpu'], source: 's' }, swap: [{ name: '/dev/sda2', sizeKiB: 1024 }] }));
    const cgroup = findings.find((f) => f.id === 'cgroup')!;
    expect(cgroup).toMatchObject({ level: 'warn', scope: 'build-host' });
    expect(cgroup.hint).toMatch(/build host, not the machine that will boot \/img/);
    for (const id of ['kernel', 'cgroup', 'module.overlay', 'sysctl.net.ipv4.ip_forward', 'swap']) expect(findings.find((f) => f.id === id)!.scope).toBe('build-host');
    for (const id of ['arch', 'libc', 'systemd', 'runtime.docker-containerd', 'unit.masked', 'disk']) expect(findings.find((f) => f.id === id)!.scope).toBe('image');
    expect(findings.some((f) => f.id === 'socket')).toBe(false);
  });

  it.each<[string, Partial<Facts>, string, Level, RegExp]>([
    ['arm64 image, amd64 target', { arch: { host: 'x86_64', target: 'amd64', image: 'arm64', imageSource: 's' } }, 'arch', 'blocker', /image is arm64, but node-prep would install amd64/],
    ['arch not detected', { arch: { host: 'x86_64', target: 'arm64' } }, 'arch', 'ok', /Installs linux\/arm64 into the image/],
    ['image init is busybox', { init: { systemd: false, detail: '/img/sbin/init is /bin/busybox in the image, not systemd' } }, 'systemd', 'warn', /image's init is not systemd/],
    ['image init is systemd', {}, 'systemd', 'ok', /image's init is systemd/],
    ['masked in the image', { maskedUnits: ['/etc/systemd/system/containerd.service'] }, 'unit.masked', 'blocker', /masked/],
    ['image too full', { disk: [{ path: '/var', measured: '/img/var', freeBytes: 100 * MiB }] }, 'disk', 'blocker', /Only 100 MiB free under \/img\/var/],
    ['a version 4 drop-in beside the default 2.3.4 (node-prep writes version 4)', { dropIns: [nvidia4] }, 'containerd.drop-in-version', 'ok', /1 drop-in in/],
    ['kubernetes-cni owns /opt/cni/bin, before an install', { cniBin: { owners: [{ manager: 'dpkg', name: 'kubernetes-cni' }], nodePrepInstalled: undefined } }, 'cni.bin-owner', 'warn', /^\/opt\/cni\/bin belongs to a package: kubernetes-cni \(dpkg\)$/],
    ['kubernetes-cni owns /opt/cni/bin, installed with --cni none', { cniBin: { owners: [{ manager: 'rpm', name: 'kubernetes-cni' }], nodePrepInstalled: false } }, 'cni.bin-owner', 'ok', /belongs to kubernetes-cni \(rpm\)/],
    ['no package owns /opt/cni/bin', {}, 'cni.bin-owner', 'ok', /^No package owns \/opt\/cni\/bin$/],
    ['a version 5 drop-in beside the default 2.3.4', { dropIns: [{ ...nvidia4, version: 5 }] }, 'containerd.drop-in-version', 'blocker', /keeps containerd 2\.3\.4 \(node-prep's default\) from starting$/],
    ['a version 4 drop-in beside the version 3 config.toml an installed 2.3.4 reads now', { dropIns: [nvidia4], containerdVersion: { version: '2.3.4', source: 'installed' }, containerdConfig: config(3) }, 'containerd.drop-in-version', 'blocker', /keeps containerd 2\.3\.4 \(installed by node-prep\) from starting with \/etc\/containerd\/config\.toml as it is/],
    ["a version 4 drop-in beside the version 2 config.toml of a containerd.io 2.3.1 package", { dropIns: [nvidia4], packages: [{ manager: 'dpkg', name: 'containerd.io', version: '2.3.1-1' }], containerdConfig: config(2) }, 'containerd.drop-in-version', 'blocker', /keeps containerd 2\.3\.1-1 \(the containerd\.io package\) from starting/],
    ['a version 4 drop-in beside the version 2 config.toml of a containerd 1.7.28 package', { dropIns: [nvidia4], packages: [{ manager: 'dpkg', name: 'containerd', version: '1.7.28~ds1-1' }], containerdConfig: config(2) }, 'containerd.drop-in-version', 'ok', /1 drop-in in/],
    ['a version 4 drop-in beside an installed 2.2.0', { dropIns: [{ path: '/etc/containerd/conf.d/99-nvidia.toml', version: 4 }], containerdVersion: { version: '2.2.0', source: 'installed' } }, 'containerd.drop-in-version', 'ok', /1 drop-in in/],
    ['a version 3 drop-in beside 2.3.4', { dropIns: [{ path: '/etc/containerd/conf.d/50-site.toml', version: 3 }] }, 'containerd.drop-in-version', 'ok', /1 drop-in in/],
  ])('%s → %s %s', (_name, over, id, level, title) => {
    const f = levelOf(image(over), id);
    expect(f.level).toBe(level);
    expect(f.title).toMatch(title);
  });

  it('tells the node that is down now that install rewrites config.toml as version 4', () => {
    const f = levelOf(image({ dropIns: [nvidia4], containerdVersion: { version: '2.3.4', source: 'installed' }, containerdConfig: config(3) }), 'containerd.drop-in-version');
    expect(f.detail).toContain('/etc/containerd/config.toml as it is now (version 3)');
    expect(f.detail).toContain('"drop-in config version 4 higher than root config version 3"');
    expect(f.hint).toMatch(/^Run `node-prep install`: it writes config\.toml as version 4\. Or set `version = 3` in the drop-in/);
  });
});
