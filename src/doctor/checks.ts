/**
 * The decisions: Facts in, Findings out, no I/O. Levels are for a node that will run the kubelet
 * against this containerd: `blocker` means the node will not work as it is (doctor exits 1), `warn`
 * means it works with a caveat or install will fix it, `ok` says what was seen.
 */
import { normalizeArch } from '../arch.ts';
import { NODE_PATHS, SYSCTLS } from '../node/paths.ts';
import { containerdConfigVersion } from '../config/containerd-version.ts';
import { explainRefusal, refusedDropIns } from '../config/dropins.ts';
import { CONTAINERD_DYNAMIC_MIN_GLIBC, compareDotted, containerdAssetFlavor } from '../node/libc.ts';
import type { Facts, Finding, Level, PackageFact, Scope } from './types.ts';

export const DOCS = {
  cgroups: 'https://kubernetes.io/docs/concepts/architecture/cgroups/',
  kernel: 'https://kubernetes.io/docs/reference/node/kernel-version-requirements/',
  swap: 'https://kubernetes.io/docs/concepts/cluster-administration/swap-memory-management/',
} as const;

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
/** Free space below which install is likely to fail (downloads, cache and binaries need ~0.5 GiB). */
export const DISK_BLOCKER_BYTES = 500 * MiB;
/** Free space below which images pulled later will fill the disk soon. */
export const DISK_WARN_BYTES = 2 * GiB;

/** Facts of the machine running node-prep: under --root they say nothing about the image's future host. */
const HOST_FACT = /^(kernel|cgroup|module\.|sysctl\.|swap)/;

type Draft = Omit<Finding, 'scope'>;

export function runChecks(facts: Facts): Finding[] {
  const drafts: Draft[] = [
    checkArch(facts),
    checkOs(facts),
    checkKernel(facts),
    checkLibc(facts),
    checkCgroup(facts),
    checkSystemd(facts),
    ...checkModules(facts),
    ...checkSysctls(facts),
    checkSwap(facts),
    checkDockerContainerd(facts),
    checkDistroContainerd(facts),
    checkMaskedUnit(facts),
    checkDropIns(facts),
    checkCniBin(facts),
    ...(facts.socket ? [checkSocket(facts)] : []),
    checkDisk(facts),
  ];
  return drafts.map((d) => scoped(d, facts.root));
}

/**
 * Under --root, the build host's kernel, cgroups and swap are reported but never block: the image
 * will boot elsewhere.
 */
export function scoped(d: Draft, root: string): Finding {
  if (root === '/') return { ...d, scope: 'node' };
  const scope: Scope = HOST_FACT.test(d.id) ? 'build-host' : 'image';
  if (scope === 'image' || d.level !== 'blocker') return { ...d, scope };
  return {
    ...d,
    scope,
    level: 'warn',
    hint: `${d.hint ? `${d.hint} ` : ''}This is the build host, not the machine that will boot ${root}: run \`node-prep doctor\` there.`,
  };
}

const finding = (id: string, level: Level, title: string, detail: string, hint?: string): Draft => (hint === undefined ? { id, level, title, detail } : { id, level, title, detail, hint });

export function checkArch(f: Facts): Draft {
  const { host, target, image } = f.arch;
  if (f.root !== '/') {
    if (image === undefined) return finding('arch', 'ok', `Installs linux/${target} into the image`, `The image's own arch was not detected (no ELF /bin/sh or /bin/busybox); make sure it is ${target}.`);
    if (normalizeArch(image) !== target) {
      return finding('arch', 'blocker', `The image is ${image}, but node-prep would install ${target} binaries`, `From ${f.arch.imageSource}.`, normalizeArch(image) ? `Pass --arch ${normalizeArch(image)}.` : 'node-prep installs for amd64 and arm64 only.');
    }
    return finding('arch', 'ok', `linux/${target}, the image's arch`, `From ${f.arch.imageSource}.`);
  }
  const hostArch = normalizeArch(host);
  if (!hostArch) {
    return finding('arch', 'blocker', `This machine is ${host}: node-prep installs for amd64 and arm64 only`, `uname -m says ${host}.`, 'Prepare an image root for an amd64 or arm64 machine with --root DIR --arch amd64|arm64.');
  }
  if (hostArch !== target) {
    return finding('arch', 'blocker', `--arch ${target} does not match this ${hostArch} machine`, `${target} binaries do not run on ${host}.`, `Drop --arch to install for ${hostArch}, or use --root DIR to prepare a ${target} image.`);
  }
  return finding('arch', 'ok', `linux/${target}`, `uname -m says ${host}.`);
}

export function checkOs(f: Facts): Draft {
  const where = f.root === '/' ? '/etc/os-release' : `${f.root}/etc/os-release`;
  if (!f.os) return finding('os', 'ok', 'Distribution not identified', `No /etc/os-release or /usr/lib/os-release${f.root === '/' ? '' : ` in ${f.root}`}.`);
  return finding('os', 'ok', f.os.prettyName ?? `${f.os.id ?? 'unknown'} ${f.os.versionId ?? ''}`.trim(), `From ${where}.`);
}

export function checkKernel(f: Facts): Draft {
  const release = f.kernel.release;
  if (!release) return finding('kernel', 'warn', 'Kernel release not known', 'Cannot read /proc/sys/kernel/osrelease.');
  const version = /^(\d+\.\d+)/.exec(release)?.[1] ?? '0.0';
  if (compareDotted(version, '4.19') < 0) {
    return finding('kernel', 'warn', `Linux ${release} is older than 4.19`, 'Kubernetes node features (cgroup v2, user namespaces, nftables kube-proxy) need newer kernels.', `See ${DOCS.kernel}.`);
  }
  if (f.cgroup.mode === 'v2' && compareDotted(version, '5.8') < 0) {
    return finding('kernel', 'warn', `Linux ${release} is older than 5.8, which Kubernetes needs for cgroup v2`, `See ${DOCS.cgroups}.`, 'Upgrade the kernel.');
  }
  return finding('kernel', 'ok', `Linux ${release}`, 'From /proc/sys/kernel/osrelease.');
}

export function checkLibc(f: Facts): Draft {
  const libc = f.libc;
  const whose = f.root === '/' ? 'this machine' : 'the image';
  const staticHint = `Only the static build runs there: containerd-static-VERSION-linux-${f.arch.target}.tar.gz, which install picks by itself (--containerd-flavor static forces it). The other binaries node-prep installs are static already.`;
  if (libc.kind === 'glibc') {
    if (containerdAssetFlavor(libc.version) === 'dynamic') {
      return finding('libc', 'ok', `glibc ${libc.version}`, `From ${libc.source}; the dynamic containerd build (glibc >= ${CONTAINERD_DYNAMIC_MIN_GLIBC}) runs on ${whose}.`);
    }
    return finding('libc', 'warn', `glibc ${libc.version} is older than ${CONTAINERD_DYNAMIC_MIN_GLIBC}: the dynamic containerd build will not run`, `From ${libc.source}. containerd's default tarball is linked against glibc ${CONTAINERD_DYNAMIC_MIN_GLIBC}.`, staticHint);
  }
  if (libc.kind === 'musl') {
    return finding('libc', 'warn', `musl libc${libc.version ? ` ${libc.version}` : ''}: the dynamic containerd build will not run`, `From ${libc.source}. containerd's default tarball is linked against glibc.`, staticHint);
  }
  // Same rule as install's: no libc yet (an image root not built yet) means the upstream default build.
  return finding(
    'libc',
    'warn',
    `No C library found on ${whose}`,
    libc.detail,
    'install assumes the glibc-linked containerd build (glibc >= 2.35) will be there; for a musl image or an older glibc pass --containerd-flavor static.',
  );
}

/** What the kubelet's system validator requires on cgroup v2. */
const V2_REQUIRED = ['cpu', 'cpuset', 'memory', 'pids'];

export function checkCgroup(f: Facts): Draft {
  const { mode, controllers, source } = f.cgroup;
  if (mode === 'v2') {
    const missing = V2_REQUIRED.filter((c) => !controllers.includes(c));
    if (missing.length > 0) {
      return finding('cgroup', 'blocker', `cgroup v2 without the ${missing.join(', ')} controller${missing.length > 1 ? 's' : ''}`, `Controllers: ${controllers.join(' ') || 'none'} (${source}). The kubelet needs ${V2_REQUIRED.join(', ')}.`, 'Enable them on the kernel command line (e.g. remove cgroup_disable=...), or, in a container, delegate them from the host.');
    }
    return finding('cgroup', 'ok', 'cgroup v2', `Controllers: ${controllers.join(' ')} (${source}).`);
  }
  if (mode === 'none') return finding('cgroup', 'blocker', 'No cgroup hierarchy is mounted', `Nothing in ${source}.`, 'Mount cgroup2 at /sys/fs/cgroup (systemd does this at boot).');
  const kind = mode === 'hybrid' ? 'cgroup v1 (hybrid)' : 'cgroup v1';
  return finding(
    'cgroup',
    'blocker',
    `${kind}: the kubelet refuses cgroup v1 by default from Kubernetes 1.35`,
    `Controllers on v1: ${controllers.join(' ')} (${source}). Kubernetes put cgroup v1 in maintenance mode in 1.31; from 1.35 the kubelet will not start on it (failCgroupV1: true) unless failCgroupV1: false is set. See ${DOCS.cgroups}.`,
    'Boot with cgroup v2: a distribution that defaults to it, or systemd.unified_cgroup_hierarchy=1 on the kernel command line (in a VM or container, the host decides). A kubelet older than 1.35, or failCgroupV1: false, still runs on v1.',
  );
}

export function checkSystemd(f: Facts): Draft {
  if (f.root !== '/') {
    if (f.init.systemd) return finding('systemd', 'ok', "The image's init is systemd", `${f.init.detail}.`);
    return finding('systemd', 'warn', "The image's init is not systemd: nothing will start containerd.service when it boots", `${f.init.detail}.`, 'node-prep still installs the unit and its wants link; start containerd from the image\'s own init, or install systemd in the image.');
  }
  if (f.init.systemd) return finding('systemd', 'ok', 'systemd is PID 1', `${f.init.detail}.`);
  return finding(
    'systemd',
    'blocker',
    'systemd is not PID 1: containerd cannot run as a service here',
    `${f.init.detail}. node-prep runs containerd (and the kubelet runs) as systemd services; without systemd nothing starts or restarts them.`,
    'node-prep can still install the files without starting anything: `node-prep install --no-start`, or into an image with --root DIR; containerd then starts on a machine that boots with systemd.',
  );
}

const MODULE_WHY: Record<string, string> = {
  overlay: "containerd's default overlayfs snapshotter needs it; without it images unpack with the slow native snapshotter.",
  br_netfilter: 'without it bridged pod traffic bypasses iptables, so Services and network policies break between pods on one node.',
};

export function checkModules(f: Facts): Draft[] {
  return Object.entries(f.modules).map(([name, m]) => {
    const id = `module.${name}`;
    if (m.state === 'loaded') return finding(id, 'ok', `Kernel module ${name} is loaded`, `${m.detail}.`);
    if (m.state === 'builtin') return finding(id, 'ok', `Kernel module ${name} is built in`, `${m.detail}.`);
    if (m.state === 'loadable') {
      return f.root === '/'
        ? finding(id, 'ok', `Kernel module ${name} is not loaded; install loads it`, `${m.detail}; install runs modprobe and writes /etc/modules-load.d for every boot.`)
        : finding(id, 'ok', `Kernel module ${name} is not loaded`, `${m.detail}; install writes ${f.root}/etc/modules-load.d for the image.`);
    }
    return finding(id, 'warn', `Kernel module ${name} is missing and cannot be loaded`, `${m.detail}. ${MODULE_WHY[name] ?? ''}`.trim(), `Install the kernel's modules package (e.g. linux-modules-extra-$(uname -r)), or use a kernel with ${name}.`);
  });
}

export function checkSysctls(f: Facts): Draft[] {
  return Object.entries(SYSCTLS).map(([key, want]) => {
    const id = `sysctl.${key}`;
    const now = f.sysctls[key];
    if (now === want) return finding(id, 'ok', `${key} = ${want}`, `From /proc/sys/${key.replace(/\./g, '/')}.`);
    const hint =
      f.root === '/'
        ? 'install sets it now and writes /etc/sysctl.d/90-node-prep.conf for every boot.'
        : `install writes ${f.root}/etc/sysctl.d/90-node-prep.conf for the image and leaves this build host alone.`;
    if (now === undefined) {
      const why = key.startsWith('net.bridge.') ? ' (it appears when br_netfilter is loaded)' : '';
      return finding(id, 'warn', `${key} does not exist${why}`, `No /proc/sys/${key.replace(/\./g, '/')}.`, `Load br_netfilter; ${hint}`);
    }
    return finding(id, 'warn', `${key} is ${now}, the kubelet's pod network needs ${want}`, `From /proc/sys/${key.replace(/\./g, '/')}.`, hint.charAt(0).toUpperCase() + hint.slice(1));
  });
}

export function checkSwap(f: Facts): Draft {
  if (f.swap === undefined) return finding('swap', 'warn', 'Swap state not known', 'Cannot read /proc/swaps.');
  if (f.swap.length === 0) return finding('swap', 'ok', 'Swap is off', 'No active swap in /proc/swaps.');
  const total = f.swap.reduce((n, s) => n + s.sizeKiB, 0);
  return finding(
    'swap',
    'warn',
    `Swap is on (${f.swap.map((s) => s.name).join(', ')}, ${formatBytes(total * 1024)})`,
    `The kubelet refuses to start with swap on (failSwapOn: true) unless swap is configured for it (NodeSwap). See ${DOCS.swap}.`,
    '`swapoff -a` and remove the swap entries from /etc/fstab, or configure the kubelet with failSwapOn: false and memorySwap.',
  );
}

const describe = (p: PackageFact) => `${p.name} ${p.version} (${p.manager})`;

export function checkDockerContainerd(f: Facts): Draft {
  const id = 'runtime.docker-containerd';
  const pkg = f.packages.find((p) => p.name === 'containerd.io');
  if (!pkg) return finding(id, 'ok', "Docker's containerd (containerd.io) is not installed", 'No containerd.io package.');
  const docker = f.packages.filter((p) => p.name === 'docker-ce' || p.name === 'moby-engine' || p.name === 'docker.io');
  const also = docker.length > 0 ? ` Docker Engine is installed too (${docker.map(describe).join(', ')}).` : '';
  const hint =
    "node-prep backs up and replaces /etc/containerd/config.toml (CRI on), and its unit in /etc/systemd/system overrides the package's, so Docker then uses node-prep's containerd on the same socket. Removing containerd.io avoids two containerd binaries.";
  if (f.containerdConfig.criDisabled) {
    return finding(id, 'warn', "Docker's containerd.io is installed with CRI disabled", `${describe(pkg)}; ${f.containerdConfig.path} has disabled_plugins = ["cri"], so the kubelet cannot use it. Docker's containerd shares /run/containerd/containerd.sock.${also}`, hint);
  }
  return finding(id, 'warn', "Docker's containerd.io is installed", `${describe(pkg)}; its containerd listens on /run/containerd/containerd.sock, the socket node-prep's containerd uses.${also}`, hint);
}

export function checkDistroContainerd(f: Facts): Draft {
  const id = 'runtime.distro-containerd';
  const pkgs = f.packages.filter((p) => p.name === 'containerd' || p.name === 'moby-containerd');
  const dockerOwnsUsrBin = f.packages.some((p) => p.name === 'containerd.io');
  if (pkgs.length > 0) {
    return finding(
      id,
      'warn',
      `A distribution containerd package is installed: ${pkgs.map(describe).join(', ')}`,
      `Two containerd binaries (${f.containerdBinaries.join(', ') || 'the package\'s'} and node-prep's in the prefix): node-prep's unit in /etc/systemd/system overrides the package's containerd.service, but \`containerd\` on PATH and the package's upgrades may pick the other one.`,
      'Remove the package (apt-get remove containerd / dnf remove containerd), or make sure only one unit starts containerd.',
    );
  }
  const foreign = f.containerdBinaries.filter((b) => b !== f.nodePrepBinary && !(dockerOwnsUsrBin && b === '/usr/bin/containerd'));
  if (foreign.length > 0) {
    return finding(id, 'warn', `containerd not installed by node-prep or a package: ${foreign.join(', ')}`, 'A manual or script install; which one runs depends on the unit that starts it.', 'node-prep backs up any file it replaces (uninstall restores it); remove the others, or check which binary the running unit uses.');
  }
  return finding(id, 'ok', 'No other containerd installed', f.nodePrepBinary ? `Only node-prep's ${f.nodePrepBinary}.` : 'No containerd binary in /usr/bin, /usr/sbin, /usr/local/bin, /usr/local/sbin or /opt/bin.');
}

/**
 * A drop-in whose config version is higher than config.toml's keeps containerd 2.3.0–2.3.4 from
 * starting. Held to the config.toml node-prep writes for its containerd, and to the one on the node
 * now for the containerds that read it today (node-prep's installed one, a package's).
 */
export function checkDropIns(f: Facts): Draft {
  const id = 'containerd.drop-in-version';
  const { version, source } = f.containerdVersion;
  const which = `containerd ${version} (${source === 'installed' ? 'installed by node-prep' : "node-prep's default"})`;
  const writes = containerdConfigVersion(version);
  const current = f.containerdConfig.exists ? f.containerdConfig.version : undefined;
  if (current !== undefined) {
    const readers = [
      ...(source === 'installed' ? [{ version, who: 'installed by node-prep' }] : []),
      ...f.packages.filter((p) => CONTAINERD_PACKAGES.includes(p.name)).map((p) => ({ version: p.version, who: `the ${p.name} package` })),
    ];
    for (const reader of readers) {
      const refused = refusedDropIns(reader.version, current, f.dropIns);
      if (refused.length === 0) continue;
      const { message, hint } = explainRefusal(refused, { kind: 'current', writes: reader.who === 'installed by node-prep' ? writes : undefined });
      return finding(id, 'blocker', `A drop-in in ${NODE_PATHS.containerdDropIns} keeps containerd ${reader.version} (${reader.who}) from starting with ${f.containerdConfig.path} as it is`, message, hint);
    }
  }
  const refused = refusedDropIns(version, writes, f.dropIns);
  if (refused.length > 0) {
    const { message, hint } = explainRefusal(refused);
    return finding(id, 'blocker', `A drop-in in ${NODE_PATHS.containerdDropIns} keeps ${which} from starting`, message, hint);
  }
  const n = f.dropIns.length;
  return finding(id, 'ok', `${n === 0 ? 'No' : n} drop-in${n === 1 ? '' : 's'} in ${NODE_PATHS.containerdDropIns}`, n === 0 ? `nothing for ${which} to refuse` : `${which} accepts ${f.dropIns.map((d) => d.path).join(', ')} beside the version ${writes} config.toml node-prep writes`);
}

/**
 * A package that owns /opt/cni/bin (the kubelet's kubernetes-cni from pkgs.k8s.io): node-prep's CNI
 * plugins would replace its files, and its next upgrade node-prep's. `--cni none` leaves the
 * directory to the package.
 */
export function checkCniBin(f: Facts): Draft {
  const id = 'cni.bin-owner';
  const dir = NODE_PATHS.cniBinDir;
  const { owners, nodePrepInstalled } = f.cniBin;
  if (owners.length === 0) return finding(id, 'ok', `No package owns ${dir}`, nodePrepInstalled ? "node-prep's CNI plugins are the only ones there." : `node-prep's CNI plugins can go there.`);
  const who = owners.map((o) => `${o.name} (${o.manager})`).join(', ');
  if (nodePrepInstalled === false) return finding(id, 'ok', `${dir} belongs to ${who}`, 'node-prep installed no CNI plugins here (--cni none): the package keeps them.');
  return finding(
    id,
    'warn',
    `${dir} belongs to a package: ${who}`,
    `${nodePrepInstalled ? "node-prep's CNI plugins replaced that package's files there" : "node-prep's CNI plugins would replace that package's files there"}, and the package's next upgrade puts its own back (\`node-prep status\` then reports them changed). The kubelet's packages bring kubernetes-cni for this directory.`,
    'Install with --cni none: the package provides the CNI plugins.',
  );
}

/** The packages whose containerd reads /etc/containerd/config.toml. */
const CONTAINERD_PACKAGES = ['containerd', 'containerd.io', 'moby-containerd'];

export function checkMaskedUnit(f: Facts): Draft {
  if (f.maskedUnits.length === 0) return finding('unit.masked', 'ok', 'containerd.service is not masked', 'No containerd.service link to /dev/null in /etc/systemd/system or /run/systemd/system.');
  return finding(
    'unit.masked',
    'blocker',
    'containerd.service is masked',
    `${f.maskedUnits.map((u) => `${u} -> /dev/null`).join(', ')}: systemd refuses to start it.`,
    f.root === '/' ? 'Someone masked it on purpose; if containerd should run here, `systemctl unmask containerd`, then run node-prep again.' : `Someone masked it on purpose; if containerd should run in the image, remove ${f.maskedUnits.map((u) => `${f.root}${u}`).join(', ')}, then run node-prep again.`,
  );
}

export function checkSocket(f: Facts): Draft {
  const s = f.socket!;
  const procs = f.processes.map((p) => `pid ${p.pid} (${p.exe ?? 'binary unknown'})`).join(', ');
  const running = procs ? ` Running containerd: ${procs}.` : '';
  // node-prep's own containerd holding its socket is how a node-prep node is meant to be.
  const own = f.nodePrepBinary === undefined ? undefined : f.processes.find((p) => p.exe === f.nodePrepBinary);
  if (s.state === 'listening' && own !== undefined) {
    return finding('socket', 'ok', `node-prep's containerd listens on ${s.path}`, `pid ${own.pid} (${own.exe}), the containerd node-prep installed.`);
  }
  if (s.state === 'listening') {
    return finding('socket', 'warn', `Socket in use: something already listens on ${s.path}`, `A connect to ${s.path} succeeded.${running}`, 'node-prep (re)starts containerd through its own unit; stop whatever holds the socket first (`systemctl stop containerd`, or Docker\'s), or it keeps the socket.');
  }
  if (s.state === 'not-a-socket') return finding('socket', 'warn', `${s.path} exists and is not a socket`, `containerd cannot listen there.${running}`, `Move ${s.path} aside.`);
  if (s.state === 'stale') return finding('socket', 'ok', `${s.path} is a stale socket`, `Nobody answers on it; containerd replaces it when it starts.${running}`);
  return finding('socket', 'ok', `Nothing listens on ${s.path}`, `No socket file.${running}`);
}

export function checkDisk(f: Facts): Draft {
  const known = f.disk.filter((d) => d.freeBytes !== undefined);
  const unknown = f.disk.filter((d) => d.freeBytes === undefined);
  const where = (p: string) => (f.root === '/' ? p : `${f.root}${p}`);
  const detail = [
    ...known.map((d) => `${where(d.path)}: ${formatBytes(d.freeBytes!)} free${d.measured !== where(d.path) ? ` (measured at ${d.measured})` : ''}`),
    ...unknown.map((d) => `${where(d.path)}: cannot measure (${d.error})`),
  ].join('; ');
  if (known.length === 0) return finding('disk', 'warn', 'Free disk space not known', `${detail}.`);
  const least = known.reduce((a, b) => (b.freeBytes! < a.freeBytes! ? b : a));
  const free = least.freeBytes!;
  if (free < DISK_BLOCKER_BYTES) {
    return finding('disk', 'blocker', `Only ${formatBytes(free)} free under ${where(least.path)}`, `${detail}. The downloads, the cache and the binaries need about ${formatBytes(DISK_BLOCKER_BYTES)}.`, 'Free some space (old images: `nerdctl -n k8s.io image prune -a`, `apt-get clean`), or grow the filesystem.');
  }
  if (free < DISK_WARN_BYTES) {
    return finding('disk', 'warn', `Only ${formatBytes(free)} free under ${where(least.path)}`, `${detail}. Install fits, but the images the kubelet pulls into /var/lib/containerd will soon fill it.`, 'Free some space or grow the filesystem before the node takes workloads.');
  }
  return finding('disk', 'ok', `${formatBytes(free)} free`, `${detail}.`);
}

export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(1)} GiB`;
  if (n >= MiB) return `${Math.round(n / MiB)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}
