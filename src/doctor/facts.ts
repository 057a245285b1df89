/**
 * Read the facts doctor decides on, once, from files. Kernel, cgroups, modules, sysctls and swap are
 * the host's (procDir, sysDir); libc, init, OS, packages, config and units are the root's (`/` or
 * --root DIR). Tests point procDir, sysDir and the other sources at a fake tree.
 */
import { lstat, readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { systemExec, type Exec } from '../exec/exec.ts';
import { normalizeArch, type Arch } from '../arch.ts';
import { inRoot, MODULES, SOCKET, SYSCTLS } from '../node/paths.ts';
import { DEFAULT_VERSIONS } from '../components/index.ts';
import { detectCgroupDriver } from '../config/cgroup.ts';
import { readImageArch } from '../node/elf.ts';
import { readDropIns } from '../config/dropins.ts';
import { moduleProvided } from '../node/kernel.ts';
import { readManifest } from '../state/manifest.ts';
import { parseLddVersion, readLibc } from '../node/libc.ts';
import {
  probeSocket,
  readContainerdBinaries,
  readContainerdConfig,
  readCniBinOwners,
  readContainerdProcesses,
  readMaskedUnits,
  readPackages,
} from './runtimes.ts';
import type { CgroupFact, DiskFact, Facts, LibcFact, ModuleFact } from './types.ts';

export interface FactSources {
  /** What node-prep installs for (--arch); default: the host's. */
  targetArch?: Arch | undefined;
  /** `uname -m`; default os.machine(). */
  hostArch?: string;
  /** Where the host's kernel modules are; default /lib/modules. */
  modulesDir?: string;
  /** The containerd socket on the live host. */
  socketPath?: string;
  statfs?: (dir: string) => Promise<{ bavail: number | bigint; bsize: number | bigint }>;
  /** Runs rpm and ldd (default: this machine's processes). */
  exec?: Exec;
}

export async function readFacts(root: string, procDir = '/proc', sysDir = '/sys', sources: FactSources = {}): Promise<Facts> {
  const live = root === '/';
  const hostArch = sources.hostArch ?? os.machine();
  const target = sources.targetArch ?? normalizeArch(hostArch) ?? 'amd64';
  const release = await readTrimmed(path.join(procDir, 'sys/kernel/osrelease'));
  const exec = sources.exec ?? systemExec;
  const packages = await readPackages(exec, root);

  let libc = await readLibc(root, target);
  if (libc.kind === 'unknown' && live) libc = (await hostLddLibc(exec)) ?? libc;
  if (libc.kind === 'musl' && !libc.version) libc = { ...libc, version: packages.find((p) => p.name === 'musl')?.version };

  const init = await detectCgroupDriver(live ? { root, procDir } : { root });
  const image = live ? undefined : await readImageArch(root);

  return {
    root,
    arch: { host: hostArch, target, image: image?.arch, imageSource: image?.source },
    kernel: { release },
    os: await readOsRelease(root),
    libc,
    cgroup: await readCgroup(procDir, sysDir),
    init: { systemd: init.driver === 'systemd', detail: init.reason },
    modules: Object.fromEntries(
      await Promise.all(MODULES.map(async (m) => [m, await readModule(m, procDir, sysDir, sources.modulesDir ?? '/lib/modules', release)] as const)),
    ),
    sysctls: Object.fromEntries(
      await Promise.all(Object.keys(SYSCTLS).map(async (k) => [k, await readTrimmed(path.join(procDir, 'sys', k.replace(/\./g, '/')))] as const)),
    ),
    swap: await readSwap(procDir),
    packages,
    containerdBinaries: await readContainerdBinaries(root),
    nodePrepBinary: await nodePrepContainerd(root),
    containerdConfig: await readContainerdConfig(root),
    containerdVersion: await containerdToJudge(root),
    dropIns: await readDropIns(root),
    cniBin: { owners: await readCniBinOwners(exec, root), nodePrepInstalled: await nodePrepInstalled(root, 'cni') },
    maskedUnits: await readMaskedUnits(root),
    socket: live ? await probeSocket(sources.socketPath ?? SOCKET) : undefined,
    processes: live ? await readContainerdProcesses(procDir) : [],
    disk: await Promise.all(['/var', '/usr/local'].map((p) => readDisk(root, p, sources.statfs ?? statfs))),
  };
}

async function readTrimmed(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').then((t) => t.trim(), () => undefined);
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(() => true, () => false);
}

/** `ldd --version` of the live host (stdout + stderr): the libc fallback. */
async function hostLddLibc(exec: Exec): Promise<LibcFact | undefined> {
  const r = await exec.run('ldd', ['--version'], { timeoutMs: 10_000 });
  return r.spawnError !== undefined ? undefined : parseLddVersion(`${r.stdout}\n${r.stderr}`.trim());
}

/** cgroup v2 has cgroup.controllers at the top; v1 lists its hierarchies in /proc/cgroups. */
export async function readCgroup(procDir: string, sysDir: string): Promise<CgroupFact> {
  const top = path.join(sysDir, 'fs/cgroup');
  const v2 = await readTrimmed(path.join(top, 'cgroup.controllers'));
  if (v2 !== undefined) return { mode: 'v2', controllers: v2.split(/\s+/).filter(Boolean), source: `${top}/cgroup.controllers` };
  const table = (await readTrimmed(path.join(procDir, 'cgroups'))) ?? '';
  // #subsys_name hierarchy num_cgroups enabled; hierarchy 0 means not mounted on any v1 tree.
  const v1 = table
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/))
    .filter((f) => f[1] !== '0' && f[3] === '1')
    .map((f) => f[0]!);
  const unified = await readTrimmed(path.join(top, 'unified/cgroup.controllers'));
  const hybrid = unified !== undefined;
  if (v1.length === 0) return { mode: hybrid ? 'hybrid' : 'none', controllers: [], source: `${procDir}/cgroups` };
  const v2Part = hybrid ? `; the v2 tree at ${top}/unified holds ${unified.split(/\s+/).filter(Boolean).join(' ') || 'no controllers'}` : '';
  return { mode: hybrid ? 'hybrid' : 'v1', controllers: v1, source: `no ${top}/cgroup.controllers; v1 controllers from ${procDir}/cgroups${v2Part}` };
}

/**
 * A module counts as present when the kernel shows what it provides, which also covers modules built
 * into the kernel that have no /sys/module entry: overlay registers a filesystem, br_netfilter the
 * net.bridge.bridge-nf-call-* sysctls.
 */
export async function readModule(name: string, procDir: string, sysDir: string, modulesDir: string, release: string | undefined): Promise<ModuleFact> {
  const provided = await moduleProvided(name, procDir, sysDir);
  if (provided !== undefined) return { state: 'loaded', detail: provided };
  if (release === undefined) return { state: 'missing', detail: 'not loaded, and the kernel release is not known' };
  const dir = path.join(modulesDir, release);
  const ko = new RegExp(`(^|/)${name}\\.ko(\\.[a-z]+)?(:|$)`, 'm');
  if (ko.test((await readTrimmed(path.join(dir, 'modules.builtin'))) ?? '')) return { state: 'builtin', detail: `built into the kernel (${dir}/modules.builtin)` };
  if (ko.test((await readTrimmed(path.join(dir, 'modules.dep'))) ?? '')) return { state: 'loadable', detail: `not loaded; ${dir}/modules.dep has it, so modprobe can load it` };
  return { state: 'missing', detail: (await exists(dir)) ? `not loaded, and ${dir} does not have it` : `not loaded, and there is no ${dir} to load it from` };
}

/** /proc/swaps: a header, then one line per active swap area (size in KiB in the third column). */
export async function readSwap(procDir: string): Promise<Array<{ name: string; sizeKiB: number }> | undefined> {
  const text = await readTrimmed(path.join(procDir, 'swaps'));
  if (text === undefined) return undefined;
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3 && f[0])
    .map((f) => ({ name: f[0]!, sizeKiB: Number(f[2]) || 0 }));
}

async function readOsRelease(root: string): Promise<Facts['os']> {
  const text = (await readTrimmed(inRoot(root, '/etc/os-release'))) ?? (await readTrimmed(inRoot(root, '/usr/lib/os-release')));
  if (text === undefined) return undefined;
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1]?.replace(/^["']|["']$/g, '');
  return { prettyName: get('PRETTY_NAME'), id: get('ID'), versionId: get('VERSION_ID') };
}

/** The containerd binary node-prep's own manifest records, if it installed one here. */
async function containerdToJudge(root: string): Promise<Facts['containerdVersion']> {
  const installed = (await readManifest(root).catch(() => undefined))?.components.containerd?.version;
  return installed ? { version: installed, source: 'installed' } : { version: DEFAULT_VERSIONS.containerd, source: 'default' };
}

/** Whether node-prep's record has this component; undefined without a record (nothing installed yet). */
async function nodePrepInstalled(root: string, component: 'cni'): Promise<boolean | undefined> {
  const m = await readManifest(root).catch(() => undefined);
  return m === undefined ? undefined : m.components[component] !== undefined;
}

async function nodePrepContainerd(root: string): Promise<string | undefined> {
  const m = await readManifest(root).catch(() => undefined);
  if (!m) return undefined;
  return Object.keys(m.files).find((p) => p.endsWith('/bin/containerd'));
}

async function readDisk(root: string, nodePath: string, stat: NonNullable<FactSources['statfs']>): Promise<DiskFact> {
  // Measure the nearest directory that exists: /usr/local may not exist yet in an image root.
  let dir = inRoot(root, nodePath);
  while (!(await exists(dir)) && dir !== path.dirname(dir)) dir = path.dirname(dir);
  try {
    const s = await stat(dir);
    return { path: nodePath, measured: dir, freeBytes: Number(s.bavail) * Number(s.bsize) };
  } catch (err) {
    return { path: nodePath, measured: dir, freeBytes: undefined, error: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}
