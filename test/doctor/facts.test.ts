/**
 * readFacts against fake trees: a /proc and /sys for the host facts, an image root for the rest.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChecks } from '../../src/doctor/checks.ts';
import { readFacts, readCgroup } from '../../src/doctor/facts.ts';
import { criDisabledInText as criDisabledIn } from '../../src/config/layout.ts';
import { parseApkInstalled, parseDpkgStatus, readCniBinOwners } from '../../src/doctor/runtimes.ts';
import { recordingExec } from '../support/recording-exec.ts';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'node-prep-facts-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

type Tree = Record<string, string | Buffer | { link: string }>;
let n = 0;
async function tree(files: Tree): Promise<string> {
  const dir = path.join(tmp, `tree-${n++}`);
  await mkdir(dir, { recursive: true });
  for (const [p, content] of Object.entries(files)) {
    const at = path.join(dir, p);
    await mkdir(path.dirname(at), { recursive: true });
    if (typeof content === 'string' || Buffer.isBuffer(content)) await writeFile(at, content);
    else await symlink(content.link, at);
  }
  return dir;
}

const PROC_CGROUPS_V1 = `#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t3\t1\t1
cpu\t1\t1\t1
memory\t4\t33\t1
net_cls\t0\t1\t1
pids\t8\t1\t1
hugetlb\t0\t1\t0
`;

/** A minimal ELF header whose e_machine says amd64 (62) or arm64 (183). */
function elf(machine: number): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // 64-bit
  b[5] = 1; // little-endian
  b.writeUInt16LE(machine, 18);
  return b;
}

/** 1 GiB free: a disk warning. */
const statfs = async () => ({ bavail: 262144, bsize: 4096 });
const roomyStatfs = async () => ({ bavail: 10n * 262144n, bsize: 4096n });

describe('readFacts: host facts from a fake /proc and /sys', () => {
  it('a systemd, cgroup v2 host with swap, ip_forward off and br_netfilter loadable', async () => {
    const proc = await tree({
      '1/comm': 'systemd\n',
      'sys/kernel/osrelease': '6.1.0-28-amd64\n',
      'sys/net/ipv4/ip_forward': '0\n',
      swaps: 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/vda2                               partition\t1048572\t\t0\t\t-2\n',
      filesystems: 'nodev\tsysfs\nnodev\toverlay\n',
      cgroups: PROC_CGROUPS_V1,
      '4242/comm': 'containerd\n',
      '4242/exe': { link: '/usr/bin/containerd' },
      '77/comm': 'bash\n',
    });
    const sys = await tree({ 'fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n', 'module/.keep': '' });
    const modules = await tree({ '6.1.0-28-amd64/modules.dep': 'kernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz\n', '6.1.0-28-amd64/modules.builtin': '' });
    const socketPath = path.join(await tree({}), 'containerd.sock');
    const server = net.createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(socketPath, r));
    try {
      const facts = await readFacts('/', proc, sys, { hostArch: 'x86_64', modulesDir: modules, socketPath, statfs });
      expect(facts.kernel.release).toBe('6.1.0-28-amd64');
      expect(facts.init).toEqual({ systemd: true, detail: `PID 1 is systemd (${proc}/1/comm)` });
      expect(facts.cgroup).toMatchObject({ mode: 'v2', controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'] });
      expect(facts.modules.overlay).toMatchObject({ state: 'loaded' });
      expect(facts.modules.br_netfilter).toMatchObject({ state: 'loadable' });
      expect(facts.sysctls).toEqual({ 'net.ipv4.ip_forward': '0', 'net.bridge.bridge-nf-call-iptables': undefined, 'net.bridge.bridge-nf-call-ip6tables': undefined });
      expect(facts.swap).toEqual([{ name: '/dev/vda2', sizeKiB: 1048572 }]);
      expect(facts.socket).toEqual({ path: socketPath, state: 'listening' });
      expect(facts.processes).toEqual([{ pid: 4242, exe: '/usr/bin/containerd' }]);
      expect(facts.disk.map((d) => d.freeBytes)).toEqual([1024 ** 3, 1024 ** 3]);

      const levels = Object.fromEntries(runChecks(facts).map((f) => [f.id, f.level]));
      expect(levels).toMatchObject({
        cgroup: 'ok', systemd: 'ok', 'module.br_netfilter': 'ok', 'sysctl.net.ipv4.ip_forward': 'warn',
        'sysctl.net.bridge.bridge-nf-call-iptables': 'warn', swap: 'warn', socket: 'warn', disk: 'warn',
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('a hybrid cgroup v1 host whose PID 1 is not systemd, with modules built in and no /lib/modules', async () => {
    const proc = await tree({
      '1/comm': 'process_api\n',
      'sys/kernel/osrelease': '6.18.44-fc\n',
      'sys/net/ipv4/ip_forward': '1\n',
      'sys/net/bridge/bridge-nf-call-iptables': '1\n',
      'sys/net/bridge/bridge-nf-call-ip6tables': '1\n',
      swaps: 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n',
      filesystems: 'nodev\tcgroup2\n',
      cgroups: PROC_CGROUPS_V1,
    });
    const sys = await tree({ 'fs/cgroup/unified/cgroup.controllers': 'hugetlb\n', 'fs/cgroup/cpu/tasks': '', 'module/overlay/refcnt': '0' });
    const facts = await readFacts('/', proc, sys, { hostArch: 'x86_64', modulesDir: path.join(tmp, 'nowhere'), socketPath: path.join(tmp, 'no.sock'), statfs: roomyStatfs });
    expect(facts.cgroup.mode).toBe('hybrid');
    expect(facts.cgroup.controllers).toEqual(['cpuset', 'cpu', 'memory', 'pids']);
    expect(facts.cgroup.source).toMatch(/unified holds hugetlb/);
    expect(facts.init.systemd).toBe(false);
    expect(facts.modules.overlay).toMatchObject({ state: 'loaded' });
    expect(facts.modules.br_netfilter).toMatchObject({ state: 'loaded', detail: expect.stringMatching(/bridge-nf-call-iptables exists/) });
    expect(facts.swap).toEqual([]);
    expect(facts.socket?.state).toBe('absent');

    const blockers = runChecks(facts).filter((f) => f.level === 'blocker').map((f) => f.id);
    expect(blockers).toEqual(['cgroup', 'systemd']);
  });

  it('cgroup: pure v1 and none', async () => {
    const proc = await tree({ cgroups: PROC_CGROUPS_V1 });
    expect((await readCgroup(proc, await tree({}))).mode).toBe('v1');
    expect((await readCgroup(await tree({ cgroups: '#subsys_name\thierarchy\tnum_cgroups\tenabled\n' }), await tree({}))).mode).toBe('none');
  });

  it('a module that is neither loaded, built in nor in modules.dep is missing', async () => {
    const proc = await tree({ 'sys/kernel/osrelease': '5.15.0\n', filesystems: '' });
    const modules = await tree({ '5.15.0/modules.dep': 'kernel/fs/fuse/fuse.ko:\n', '5.15.0/modules.builtin': 'kernel/fs/overlayfs/overlay.ko\n' });
    const facts = await readFacts('/', proc, await tree({}), { hostArch: 'x86_64', modulesDir: modules, socketPath: path.join(tmp, 'no.sock'), statfs });
    expect(facts.modules.overlay).toMatchObject({ state: 'builtin' });
    expect(facts.modules.br_netfilter).toMatchObject({ state: 'missing' });
  });
});

describe('readFacts: an image root', () => {
  const DPKG_STATUS = `Package: containerd.io
Status: install ok installed
Version: 1.7.27-1

Package: docker-ce
Status: install ok installed
Version: 5:28.1.1-1~debian.12~bookworm

Package: containerd
Status: deinstall ok config-files
Version: 1.6.20~ds1-1

Package: bash
Status: install ok installed
Version: 5.2.15-2+b7
`;

  it("reads Docker's containerd.io, its CRI-disabled config, a masked unit and the image's arch and init", async () => {
    const root = await tree({
      'bin/busybox': elf(62),
      'bin/sh': { link: 'busybox' },
      'sbin/init': { link: '/bin/busybox' },
      'lib/x86_64-linux-gnu/libc.so.6': Buffer.from('\0GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.\0'),
      'usr/lib/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
      'var/lib/dpkg/status': DPKG_STATUS,
      'usr/bin/containerd': '',
      'etc/containerd/config.toml': '#   Copyright 2018-2022 Docker Inc.\n\ndisabled_plugins = ["cri"]\n',
      'etc/systemd/system/containerd.service': { link: '/dev/null' },
    });
    const facts = await readFacts(root, await tree({}), await tree({}), { hostArch: 'x86_64', targetArch: 'amd64', statfs });
    expect(facts.arch).toEqual({ host: 'x86_64', target: 'amd64', image: 'amd64', imageSource: 'the ELF header of /bin/sh (/bin/busybox)' });
    expect(facts.libc).toMatchObject({ kind: 'glibc', version: '2.36' });
    expect(facts.os).toEqual({ prettyName: 'Debian GNU/Linux 12 (bookworm)', id: 'debian', versionId: '12' });
    expect(facts.init.systemd).toBe(false);
    expect(facts.packages.map((p) => p.name)).toEqual(['containerd.io', 'docker-ce']);
    expect(facts.containerdConfig).toEqual({ path: '/etc/containerd/config.toml', exists: true, criDisabled: true, version: 1 });
    expect(facts.maskedUnits).toEqual(['/etc/systemd/system/containerd.service']);
    expect(facts.socket).toBeUndefined();
    expect(facts.disk.map((d) => d.measured)).toEqual([path.join(root, 'var'), path.join(root, 'usr')]);

    const byId = Object.fromEntries(runChecks(facts).map((f) => [f.id, f]));
    expect(byId['runtime.docker-containerd']).toMatchObject({ level: 'warn', scope: 'image', title: "Docker's containerd.io is installed with CRI disabled" });
    expect(byId['unit.masked']).toMatchObject({ level: 'blocker', scope: 'image' });
    expect(byId.systemd).toMatchObject({ level: 'warn', scope: 'image' });
    expect(byId.arch).toMatchObject({ level: 'ok' });
  });

  it("sees the kubelet's kubernetes-cni package owning /opt/cni/bin in the image's dpkg lists", async () => {
    const root = await tree({
      'var/lib/dpkg/info/kubernetes-cni.list': '/.\n/opt\n/opt/cni\n/opt/cni/bin\n/opt/cni/bin/bridge\n/opt/cni/bin/loopback\n',
      'var/lib/dpkg/info/kubelet.list': '/.\n/usr\n/usr/bin\n/usr/bin/kubelet\n',
      'var/lib/dpkg/info/libc6:amd64.list': '/.\n/opt/cni-not-this\n',
      'var/lib/dpkg/info/kubernetes-cni.md5sums': 'abc  opt/cni/bin/bridge\n',
    });
    const facts = await readFacts(root, await tree({}), await tree({}), { hostArch: 'x86_64', targetArch: 'amd64', statfs });
    expect(facts.cniBin).toEqual({ owners: [{ manager: 'dpkg', name: 'kubernetes-cni' }], nodePrepInstalled: undefined });
    const f = runChecks(facts).find((x) => x.id === 'cni.bin-owner')!;
    expect(f).toMatchObject({ level: 'warn', scope: 'image', title: '/opt/cni/bin belongs to a package: kubernetes-cni (dpkg)', hint: 'Install with --cni none: the package provides the CNI plugins.' });
    expect((await readFacts(await tree({ 'var/lib/dpkg/info/kubelet.list': '/usr/bin/kubelet\n' }), await tree({}), await tree({}), { hostArch: 'x86_64', targetArch: 'amd64', statfs })).cniBin.owners).toEqual([]);
  });

  it("asks the image's rpm database who owns /opt/cni/bin, inside the image", async () => {
    const root = await tree({ 'var/lib/rpm/rpmdb.sqlite': '' });
    const owned = recordingExec((file, args) => (file === 'rpm' && args.includes('-qf') ? { stdout: 'kubernetes-cni\n' } : { exitCode: 1 }));
    expect(await readCniBinOwners(owned, root)).toEqual([{ manager: 'rpm', name: 'kubernetes-cni' }]);
    expect(owned.calls).toEqual([`rpm --root ${root} -qf --qf %{NAME}\n /opt/cni/bin`]);
    const notOwned = recordingExec(() => ({ exitCode: 1, stdout: 'file /opt/cni/bin is not owned by any package\n' }));
    expect(await readCniBinOwners(notOwned, root)).toEqual([]);
  });

  it('an arm64 image with a target of amd64 is a blocker', async () => {
    const root = await tree({ 'bin/sh': elf(183) });
    const facts = await readFacts(root, await tree({}), await tree({}), { hostArch: 'x86_64', targetArch: 'amd64', statfs });
    expect(facts.arch.image).toBe('arm64');
    expect(runChecks(facts).find((f) => f.id === 'arch')).toMatchObject({ level: 'blocker', hint: 'Pass --arch arm64.' });
  });

  it('an Alpine image: musl, with its version from the apk database', async () => {
    const root = await tree({
      'lib/ld-musl-aarch64.so.1': '',
      'lib/apk/db/installed': 'C:Q1abc\nP:musl\nV:1.2.5-r9\nA:aarch64\n\nP:containerd\nV:2.0.4-r1\n',
    });
    const facts = await readFacts(root, await tree({}), await tree({}), { hostArch: 'aarch64', targetArch: 'arm64', statfs });
    expect(facts.libc).toEqual({ kind: 'musl', version: '1.2.5-r9', source: '/lib/ld-musl-aarch64.so.1' });
    expect(facts.packages).toContainEqual({ manager: 'apk', name: 'containerd', version: '2.0.4-r1' });
    expect(runChecks(facts).find((f) => f.id === 'runtime.distro-containerd')).toMatchObject({ level: 'warn' });
  });
});

describe('runtime parsers', () => {
  it('dpkg: only installed packages of interest', () => {
    expect(parseDpkgStatus('Package: runc\nStatus: install ok half-installed\nVersion: 1\n\nPackage: runc\nStatus: install ok installed\nVersion: 1.1.5\n')).toEqual([
      { manager: 'dpkg', name: 'runc', version: '1.1.5' },
    ]);
  });

  it('apk', () => {
    expect(parseApkInstalled('P:busybox\nV:1.36\n\nP:runc\nV:1.2.6-r2\n')).toEqual([{ manager: 'apk', name: 'runc', version: '1.2.6-r2' }]);
  });

  it.each<[string, boolean]>([
    ['disabled_plugins = ["cri"]', true],
    ['version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]', true],
    ['disabled_plugins = []', false],
    ['version = 3\n[plugins."io.containerd.cri.v1.runtime"]\n', false],
    ['not toml [[[\ndisabled_plugins = ["cri"]', true],
    // 2.x: the split CRI plugins count too, in either layout's words.
    ['version = 3\ndisabled_plugins = ["io.containerd.cri.v1.runtime"]', true],
    ['version = 2\ndisabled_plugins = ["io.containerd.cri.v1.images"]', false],
    ["not toml [[[\ndisabled_plugins = ['io.containerd.cri.v1.images']", true],
  ])('criDisabledIn %j → %s', (text, disabled) => {
    expect(criDisabledIn(text).criDisabled).toBe(disabled);
  });
});
