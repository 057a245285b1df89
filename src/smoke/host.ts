/**
 * What the smoke test looks at and cleans on this host: processes (by argv), mounts and cgroup dirs.
 * Read from /proc directly; every function here is best effort and says what it did.
 */
import { readFileSync } from 'node:fs';
import { lstat, readdir, readFile, rmdir, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Exec } from '../exec/exec.ts';

export interface HostProcess {
  pid: number;
  argv: string[];
}

/** Live processes whose argv satisfies `match` (zombies have an empty cmdline and are skipped). */
export async function findProcesses(match: (argv: string[]) => boolean): Promise<HostProcess[]> {
  const out: HostProcess[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let raw: string;
    try {
      raw = await readFile(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const argv = raw.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
    if (argv.length > 0 && match(argv)) out.push({ pid: Number(entry), argv });
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILL each pid, wait (up to waitMs) until they are gone; returns those still alive. */
export async function killAndWait(pids: number[], waitMs = 3_000): Promise<number[]> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + waitMs;
  const running = (pid: number) => isAlive(pid) && !isZombie(pid);
  let alive = pids.filter(running);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(50);
    alive = alive.filter(running);
  }
  return alive;
}

/** A killed process that is not our child stays a zombie until its parent reaps it: it is gone. */
function isZombie(pid: number): boolean {
  try {
    // /proc/PID/stat: "pid (comm) S ..."; comm may contain spaces and parentheses.
    const line = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return line.charAt(line.lastIndexOf(')') + 2) === 'Z';
  } catch {
    return true;
  }
}

interface MountInfo {
  mountPoint: string;
  fsType: string;
}

/** /proc/self/mountinfo: field 5 is the mount point (octal-escaped), the fs type follows " - ". */
export async function readMounts(): Promise<MountInfo[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').filter(Boolean).map((line) => {
    const [left = '', right = ''] = line.split(' - ');
    const mountPoint = unescapeMount(left.split(' ')[4] ?? '');
    return { mountPoint, fsType: right.split(' ')[0] ?? '' };
  });
}

const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));

const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** Mount points at or below `dir`, deepest first (the order to unmount them). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const points = (await readMounts()).map((m) => m.mountPoint).filter((p) => under(p, dir));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmount everything at or below `dir`; returns what is still mounted afterwards. */
export async function unmountUnder(exec: Exec, dir: string): Promise<{ unmounted: string[]; left: string[] }> {
  const unmounted: string[] = [];
  for (const point of await mountsUnder(dir)) {
    const plain = await exec.run('umount', [point], { timeoutMs: 10_000 });
    // A busy mount (a process still inside) is detached lazily rather than left behind.
    const ok = !plain.failed || !(await exec.run('umount', ['-l', point], { timeoutMs: 10_000 })).failed;
    if (ok) unmounted.push(point);
  }
  return { unmounted, left: await mountsUnder(dir) };
}

/** The cgroup hierarchies mounted here (v1 controllers, the v1 name=systemd tree, v2 unified). */
export async function cgroupMounts(): Promise<string[]> {
  const mounts = await readMounts();
  return [...new Set(mounts.filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2').map((m) => m.mountPoint))];
}

/** Processes still in `<mount>/<relative>` in any hierarchy (container processes whose shim died). */
export async function cgroupProcs(relative: string): Promise<number[]> {
  const pids = new Set<number>();
  for (const mount of await cgroupMounts()) {
    try {
      const text = await readFile(path.join(mount, relative, 'cgroup.procs'), 'utf8');
      for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
    } catch {
      // not in this hierarchy
    }
  }
  return [...pids];
}

/**
 * rmdir `<mount>/<dir>` for each relative dir (deepest given first) in every hierarchy. rmdir only
 * removes an empty cgroup, so a cgroup someone else still uses is left alone.
 */
export async function removeCgroupDirs(relatives: string[]): Promise<{ removed: string[]; left: string[] }> {
  const removed: string[] = [];
  const left: string[] = [];
  for (const mount of await cgroupMounts()) {
    for (const rel of relatives) {
      const dir = path.join(mount, rel);
      try {
        await rmdir(dir);
        removed.push(dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') left.push(`${dir} (${code})`);
      }
    }
  }
  return { removed, left };
}

/** Whether anything is at `p` on this host (a dangling link too); an error other than ENOENT counts as something. */
export async function hostHas(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** runc's own test for "systemd runs this host" (go-systemd util.IsRunningSystemd). */
export const systemdRunning = () => isDirectory('/run/systemd/system');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A deadline for Promise.race: unref'd, so a race that is won early does not hold the process open. */
export const deadline = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Whether a unix socket accepts a connection. */
export function connects(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path: socket });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
