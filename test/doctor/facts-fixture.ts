/** A healthy node's facts; each table row changes what it is about. */
import type { Facts } from '../../src/doctor/types.ts';

export function healthyFacts(over: Partial<Facts> = {}): Facts {
  return {
    root: '/',
    arch: { host: 'x86_64', target: 'amd64' },
    kernel: { release: '6.8.0-45-generic' },
    os: { prettyName: 'Ubuntu 24.04 LTS', id: 'ubuntu', versionId: '24.04' },
    libc: { kind: 'glibc', version: '2.39', source: 'the version banner in /lib/x86_64-linux-gnu/libc.so.6' },
    cgroup: { mode: 'v2', controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'], source: '/sys/fs/cgroup/cgroup.controllers' },
    init: { systemd: true, detail: 'PID 1 is systemd (/proc/1/comm)' },
    modules: { overlay: { state: 'loaded', detail: '/sys/module/overlay exists' }, br_netfilter: { state: 'loaded', detail: '/sys/module/br_netfilter exists' } },
    sysctls: { 'net.ipv4.ip_forward': '1', 'net.bridge.bridge-nf-call-iptables': '1', 'net.bridge.bridge-nf-call-ip6tables': '1' },
    swap: [],
    packages: [],
    containerdBinaries: [],
    nodePrepBinary: undefined,
    containerdConfig: { path: '/etc/containerd/config.toml', exists: false, criDisabled: false },
    containerdVersion: { version: '2.3.4', source: 'default' },
    dropIns: [],
    cniBin: { owners: [], nodePrepInstalled: undefined },
    maskedUnits: [],
    socket: { path: '/run/containerd/containerd.sock', state: 'absent' },
    processes: [],
    disk: [
      { path: '/var', measured: '/var', freeBytes: 50 * 1024 ** 3 },
      { path: '/usr/local', measured: '/usr/local', freeBytes: 50 * 1024 ** 3 },
    ],
    ...over,
  };
}
