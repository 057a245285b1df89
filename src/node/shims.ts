/**
 * Running containerd shims, read from /proc: each runs one container's (or pod's) tasks, as a child
 * of nothing (it is re-parented to init), from the shim binary containerd was installed with. An
 * uninstall that removed that binary would leave them running a deleted file, unseen.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface RunningShim {
  pid: number;
  /** The shim binary, as the kernel names it (` (deleted)` stripped). */
  exe: string;
  namespace: string | undefined;
  id: string | undefined;
}

/** Processes whose executable is one of `binaries` (host paths), with the container they run. */
export async function runningShims(binaries: string[], proc = '/proc'): Promise<RunningShim[]> {
  const wanted = new Set(binaries);
  const out: RunningShim[] = [];
  for (const entry of await readdir(proc).catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const exe = (await readlink(`${proc}/${entry}/exe`).catch(() => '')).replace(/ \(deleted\)$/, '');
    if (!wanted.has(exe)) continue;
    const argv = (await readFile(`${proc}/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const flag = (name: string) => {
      const i = argv.indexOf(name);
      return i >= 0 ? argv[i + 1] : undefined;
    };
    out.push({ pid: Number(entry), exe, namespace: flag('-namespace'), id: flag('-id') });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** The pids of every descendant of `pid` (children first found, deepest last), from /proc/PID/stat. */
export async function descendants(pid: number, proc = '/proc'): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir(proc).catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`${proc}/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!Number.isInteger(ppid)) continue;
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
  }
  const out: number[] = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = queue.shift()!;
    for (const child of parents.get(next) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** Mount points at or below one of `prefixes`, deepest first (to unmount in that order). */
export async function mountsBelow(prefixes: string[], mountinfo = '/proc/self/mountinfo'): Promise<string[]> {
  const text = await readFile(mountinfo, 'utf8').catch(() => '');
  const points = text.split('\n').map((l) => l.split(' ')[4]).filter((p): p is string => p !== undefined)
    // mountinfo escapes space, tab, newline and backslash as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  return [...new Set(points.filter((p) => prefixes.some((x) => p === x || p.startsWith(`${x}/`))))].sort((a, b) => b.length - a.length);
}
