/**
 * The container check: a real container from a rootfs holding one static busybox, run by the
 * installed containerd, shim and runc, offline (no image, no pull). `ctr run --rootfs` mounts
 * nothing on the host; its runc state and IO fifos are put in the scratch dir rather than under
 * /run/containerd (see the cleanup module for what containerd still leaves there).
 */
import { constants } from 'node:fs';
import { access, chmod, copyFile, mkdir, open, symlink } from 'node:fs/promises';
import path from 'node:path';
import { inRoot } from '../node/paths.ts';
import type { Exec } from '../exec/exec.ts';
import { runTool } from './exec.ts';
import { fail, pass, type CheckOutcome } from './types.ts';

/** The namespace of the test container: never k8s.io, so the kubelet's containers are not touched. */
export const SMOKE_NAMESPACE = 'node-prep-smoke';

export type ElfKind = { kind: 'static' } | { kind: 'dynamic'; interpreter: string } | { kind: 'not-elf' };

/** Whether an ELF file needs a program interpreter (the dynamic loader) that an empty rootfs lacks. */
export async function elfKind(file: string): Promise<ElfKind> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    if (bytesRead < 52 || head.readUInt32BE(0) !== 0x7f454c46) return { kind: 'not-elf' };
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const word = (b: Buffer, o: number) => (is64 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : u32(b, o));
    const phoff = word(head, is64 ? 32 : 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    const table = Buffer.alloc(phentsize * phnum);
    await fh.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const ph = table.subarray(i * phentsize, (i + 1) * phentsize);
      if (u32(ph, 0) !== 3) continue; // PT_INTERP
      const offset = word(ph, is64 ? 8 : 4);
      const size = word(ph, is64 ? 32 : 16);
      const interp = Buffer.alloc(Math.min(size, 4096));
      await fh.read(interp, 0, interp.length, offset);
      return { kind: 'dynamic', interpreter: interp.toString('utf8').replace(/\0.*$/s, '') };
    }
    return { kind: 'static' };
  } finally {
    await fh.close();
  }
}

export type BusyboxSearch = { kind: 'found'; path: string } | { kind: 'missing'; detail: string };

/**
 * What the test container runs: a static busybox (`sh -c`), or, where none can be found, the
 * installed runc itself (upstream's runc is a static binary) printing its version.
 */
export type Payload = { kind: 'busybox'; path: string } | { kind: 'runc'; path: string };

export async function findPayload(candidates: string[], runc: string): Promise<Payload | { kind: 'missing'; detail: string }> {
  const busybox = await findStaticBusybox(candidates);
  if (busybox.kind === 'found') return { kind: 'busybox', path: busybox.path };
  const kind = await elfKind(runc).catch(() => ({ kind: 'not-elf' }) as const);
  if (kind.kind === 'static') return { kind: 'runc', path: runc };
  return { kind: 'missing', detail: `${busybox.detail}; the installed runc (${runc}) is not a static binary either, so it cannot run alone in a container` };
}

/** Where a static busybox may be: the one given, else the image root's, else this host's. */
export function busyboxCandidates(root: string, given: string | undefined): string[] {
  if (given !== undefined) return [given];
  const inImage = root === '/' ? [] : ['/bin/busybox', '/usr/bin/busybox'].map((p) => inRoot(root, p));
  return [...inImage, '/bin/busybox', '/usr/bin/busybox', '/usr/local/bin/busybox'];
}

export async function findStaticBusybox(candidates: string[]): Promise<BusyboxSearch> {
  const notes: string[] = [];
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.R_OK);
    } catch (err) {
      notes.push(`${candidate}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
      continue;
    }
    const kind = await elfKind(candidate).catch(() => ({ kind: 'not-elf' }) as const);
    if (kind.kind === 'static') return { kind: 'found', path: candidate };
    notes.push(kind.kind === 'dynamic' ? `${candidate}: dynamically linked (${kind.interpreter})` : `${candidate}: not an ELF binary`);
  }
  return {
    kind: 'missing',
    detail: `no static busybox for the test container's rootfs (${notes.join('; ')}); install busybox-static or pass its path`,
  };
}

/** The mount points runc's default spec expects, and the payload: bin/busybox + bin/sh, or /runc. */
export async function prepareRootfs(rootfs: string, payload: Payload): Promise<void> {
  for (const dir of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc']) await mkdir(path.join(rootfs, dir), { recursive: true });
  const dest = payload.kind === 'busybox' ? path.join(rootfs, 'bin/busybox') : path.join(rootfs, 'runc');
  await copyFile(payload.path, dest);
  await chmod(dest, 0o755);
  if (payload.kind === 'busybox') await symlink('busybox', path.join(rootfs, 'bin/sh'));
}

export interface ContainerRun {
  ctr: string;
  socket: string;
  id: string;
  rootfs: string;
  payload: Payload;
  runc: string;
  /** runc state dir (ctr --runc-root), inside the scratch dir. */
  runcRoot: string;
  fifoDir: string;
  /** Use runc's systemd cgroup driver (only when systemd runs here and the config asks for it). */
  systemdCgroup: boolean;
  timeoutMs: number;
}

export const ctrBase = (socket: string, namespace: string) => ['--address', socket, '--namespace', namespace];

/**
 * `ctr run --rm --rootfs DIR ID /bin/sh -c ...`, and the output read back. Flags must come before the
 * rootfs dir (ctr takes the first positional as the rootfs, the next as the ID), and the command
 * needs an absolute path: with --rootfs there is no image config, hence no PATH in the spec.
 */
export async function runContainer(exec: Exec, run: ContainerRun): Promise<CheckOutcome> {
  const marker = `node-prep-smoke-${run.id}`;
  // busybox computes something only a running shell can; runc's --version proves a process ran.
  const expected = run.payload.kind === 'busybox' ? `${marker}:42` : 'runc version';
  const command = run.payload.kind === 'busybox' ? ['/bin/sh', '-c', `echo ${marker}:$((6*7))`] : ['/runc', '--version'];
  const args = [
    ...ctrBase(run.socket, SMOKE_NAMESPACE), 'run', '--rm',
    '--fifo-dir', run.fifoDir,
    // ctr does not read the CRI runtime options (BinaryName): name the installed runc explicitly.
    '--runc-binary', run.runc,
    '--runc-root', run.runcRoot,
    ...(run.systemdCgroup ? ['--runc-systemd-cgroup', '--cgroup', `system.slice:${SMOKE_NAMESPACE}:${run.id}`] : []),
    '--rootfs', run.rootfs, run.id,
    ...command,
  ];
  const result = await runTool(exec, run.ctr, args, { timeoutMs: run.timeoutMs });
  if (!result.ok) return fail(`the test container did not run: ${result.why}`);
  const out = result.stdout.trim();
  const printed = run.payload.kind === 'busybox' ? out.split('\n').some((l) => l.trim() === expected) : out.split('\n').some((l) => l.startsWith(expected));
  if (!printed) {
    return fail(`the test container ran but printed ${JSON.stringify(out.slice(0, 200))}, not ${JSON.stringify(expected)}`);
  }
  const driver = run.systemdCgroup ? 'systemd' : 'cgroupfs';
  const what = run.payload.kind === 'busybox' ? 'busybox container' : 'container of the static runc binary';
  const said = run.payload.kind === 'busybox' ? expected : out.split('\n')[0]!.trim();
  return pass(`${what} ${run.id} in namespace ${SMOKE_NAMESPACE} printed ${JSON.stringify(said)} (runc ${run.runc}, ${driver} cgroups)`);
}

/**
 * Remove the test container if `ctr run --rm` did not (a timeout, a failed start): kill its task,
 * delete the task, delete the container. Returns what could not be removed.
 */
export async function removeContainer(exec: Exec, ctr: string, socket: string, id: string, timeoutMs: number): Promise<string | undefined> {
  const base = ctrBase(socket, SMOKE_NAMESPACE);
  const list = await runTool(exec, ctr, [...base, 'containers', 'ls', '-q'], { timeoutMs });
  if (!list.ok) return `cannot list containers: ${list.why}`;
  if (!list.stdout.split('\n').map((l) => l.trim()).includes(id)) return undefined;
  await runTool(exec, ctr, [...base, 'tasks', 'kill', '--signal', 'SIGKILL', id], { timeoutMs });
  await runTool(exec, ctr, [...base, 'tasks', 'delete', '--force', id], { timeoutMs });
  const rm = await runTool(exec, ctr, [...base, 'containers', 'delete', id], { timeoutMs });
  return rm.ok ? undefined : `container ${id} not removed: ${rm.why}`;
}
