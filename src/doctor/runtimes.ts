/**
 * Container runtimes already on a root: packages from the package databases (read as files for dpkg
 * and apk, so an image root needs none of its own binaries; rpm's database is binary, so the host's
 * `rpm --root` is asked when it exists), the containerd config, masked units, the socket and the
 * processes of a running containerd.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { declaredVersion } from '../config/dropins.ts';
import { criDisabledInText } from '../config/layout.ts';
import type { Exec } from '../exec/exec.ts';
import { readRegularFile } from '../util/read-regular.ts';
import { inRoot, NODE_PATHS } from '../node/paths.ts';
import type { ContainerdConfigFact, PackageFact, SocketFact } from './types.ts';

/** The packages doctor has something to say about. */
export const RUNTIME_PACKAGES = ['containerd', 'containerd.io', 'moby-containerd', 'docker.io', 'docker-ce', 'moby-engine', 'runc', 'podman', 'cri-o', 'musl'] as const;
const WANTED = new Set<string>(RUNTIME_PACKAGES);

/** Stanzas of /var/lib/dpkg/status; only packages whose Status ends in `installed`. */
export function parseDpkgStatus(text: string): PackageFact[] {
  const out: PackageFact[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}: *(.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const name = field('Package');
    if (!name || !WANTED.has(name)) continue;
    // `install ok installed`; not `deinstall ok config-files`, `half-installed`, `not-installed`.
    if ((field('Status') ?? '').split(/\s+/).pop() !== 'installed') continue;
    out.push({ manager: 'dpkg', name, version: field('Version') ?? '' });
  }
  return out;
}

/** Alpine's /lib/apk/db/installed: `P:name` / `V:version` lines, stanzas split by blank lines. */
export function parseApkInstalled(text: string): PackageFact[] {
  const out: PackageFact[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const name = /^P:(.*)$/m.exec(stanza)?.[1]?.trim();
    if (name && WANTED.has(name)) out.push({ manager: 'apk', name, version: /^V:(.*)$/m.exec(stanza)?.[1]?.trim() ?? '' });
  }
  return out;
}

/**
 * The packages that own /opt/cni/bin or files in it, as the root's package database says: dpkg's
 * /var/lib/dpkg/info/<package>[:<arch>].list (every path a package installed), or `rpm --root -qf`.
 * The kubelet's packages from pkgs.k8s.io bring kubernetes-cni, which installs the CNI plugins there.
 */
export async function readCniBinOwners(exec: Exec, root: string, dir = NODE_PATHS.cniBinDir): Promise<Array<{ manager: 'dpkg' | 'rpm'; name: string }>> {
  const owners: Array<{ manager: 'dpkg' | 'rpm'; name: string }> = [];
  const info = '/var/lib/dpkg/info';
  const lists = await readdir(inRoot(root, info)).catch(() => [] as string[]);
  for (const list of lists.filter((n) => n.endsWith('.list')).sort()) {
    const text = await readRootText(root, `${info}/${list}`);
    if (text !== undefined && text.split('\n').some((l) => l === dir || l.startsWith(`${dir}/`))) owners.push({ manager: 'dpkg', name: list.slice(0, -'.list'.length).split(':')[0]! });
  }
  if ((await exists(inRoot(root, '/var/lib/rpm'))) || (await exists(inRoot(root, '/usr/lib/sysimage/rpm')))) {
    // Not owned: "file /opt/cni/bin is not owned by any package", exit 1.
    const r = await exec.run('rpm', ['--root', root, '-qf', '--qf', '%{NAME}\n', dir], { timeoutMs: 20_000 });
    if (r.exitCode === 0) for (const name of r.stdout.split('\n').map((l) => l.trim()).filter((l) => /^[\w.+-]+$/.test(l))) owners.push({ manager: 'rpm', name });
  }
  return owners;
}

async function readText(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch(() => undefined);
}

/** A file of the root: a FIFO or device there does not block doctor, and a huge one is not read. */
async function readRootText(root: string, nodePath: string): Promise<string | undefined> {
  const r = await readRegularFile(inRoot(root, nodePath), { maxBytes: 64 * 1024 * 1024, followLinks: root === '/' });
  return r.kind === 'text' ? r.text : undefined;
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(() => true, () => false);
}

export async function readPackages(exec: Exec, root: string): Promise<PackageFact[]> {
  const found: PackageFact[] = [];
  const dpkg = await readRootText(root, '/var/lib/dpkg/status');
  if (dpkg !== undefined) found.push(...parseDpkgStatus(dpkg));
  const apk = await readRootText(root, '/lib/apk/db/installed');
  if (apk !== undefined) found.push(...parseApkInstalled(apk));
  if ((await exists(inRoot(root, '/var/lib/rpm'))) || (await exists(inRoot(root, '/usr/lib/sysimage/rpm')))) {
    const r = await exec.run('rpm', ['--root', root, '-q', '--qf', '%{NAME}=%{VERSION}-%{RELEASE}\n', ...RUNTIME_PACKAGES], { timeoutMs: 20_000 });
    for (const line of r.stdout.split('\n')) {
      const m = /^([^\s=]+)=(\S+)$/.exec(line.trim());
      if (m && WANTED.has(m[1]!)) found.push({ manager: 'rpm', name: m[1]!, version: m[2]! });
    }
  }
  return found;
}

export async function readContainerdConfig(root: string): Promise<ContainerdConfigFact> {
  const nodePath = '/etc/containerd/config.toml';
  const text = await readRootText(root, nodePath);
  if (text === undefined) return { path: nodePath, exists: false, criDisabled: false };
  // containerd's rule: a file without `version` is version 1.
  const parsed = criDisabledInText(text);
  const version = parsed.parseError === undefined ? (declaredVersion(text) ?? 1) : undefined;
  return { path: nodePath, exists: true, ...parsed, ...(version !== undefined ? { version } : {}) };
}

/** Where a unit can be masked: /etc for good, /run until the next boot. */
const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system'];
const UNITS = ['containerd.service'];

export async function readMaskedUnits(root: string): Promise<string[]> {
  const masked: string[] = [];
  for (const dir of UNIT_DIRS) {
    for (const unit of UNITS) {
      const nodePath = `${dir}/${unit}`;
      const target = await readlink(inRoot(root, nodePath)).catch(() => undefined);
      if (target === '/dev/null') masked.push(nodePath);
    }
  }
  return masked;
}

export const CONTAINERD_BINARY_PATHS = ['/usr/bin/containerd', '/usr/sbin/containerd', '/usr/local/bin/containerd', '/usr/local/sbin/containerd', '/opt/bin/containerd'];

export async function readContainerdBinaries(root: string): Promise<string[]> {
  const present: string[] = [];
  for (const p of CONTAINERD_BINARY_PATHS) if (await exists(inRoot(root, p))) present.push(p);
  return present;
}

/** Connect to the socket: a listening containerd (or Docker's) answers the connect, a stale file refuses. */
export async function probeSocket(socketPath: string, timeoutMs = 1_000): Promise<SocketFact> {
  const st = await lstat(socketPath).catch(() => undefined);
  if (!st) return { path: socketPath, state: 'absent' };
  if (!st.isSocket()) return { path: socketPath, state: 'not-a-socket' };
  const listening = await new Promise<boolean>((resolve) => {
    const sock = net.connect({ path: socketPath });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
  return { path: socketPath, state: listening ? 'listening' : 'stale' };
}

/** Processes whose comm is containerd, with the binary they run (`/proc/PID/exe`). */
export async function readContainerdProcesses(procDir: string): Promise<Array<{ pid: number; exe: string | undefined }>> {
  const entries = await readdir(procDir).catch(() => [] as string[]);
  const out: Array<{ pid: number; exe: string | undefined }> = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const comm = (await readText(path.join(procDir, e, 'comm')))?.trim();
    if (comm !== 'containerd') continue;
    out.push({ pid: Number(e), exe: await readlink(path.join(procDir, e, 'exe')).catch(() => undefined) });
  }
  return out.sort((a, b) => a.pid - b.pid);
}
