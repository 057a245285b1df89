/**
 * The container check: a real container from a rootfs holding one static busybox, run by the
 * installed containerd, shim and runc, offline (no image, no pull). `ctr run --rootfs` mounts
 * nothing on the host; its runc state and IO fifos are put in the scratch dir rather than under
 * /run/containerd (see the cleanup module for what containerd still leaves there).
 */
import { constants } from 'node:fs';
import { access, chmod, copyFile, mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { elfKind } from '../node/elf.ts';
import { inRoot } from '../node/paths.ts';
import type { Exec } from '../exec/exec.ts';
import { runTool } from './exec.ts';
import { judgeProof, proofCommand, writeProof, type ContainerProof } from './proof.ts';
import { fail, pass, type CheckOutcome } from './types.ts';

/** The namespace of the test container: never k8s.io, so the kubelet's containers are not touched. */
export const SMOKE_NAMESPACE = 'node-prep-smoke';

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

/**
 * The mount points runc's default spec expects, the payload (bin/busybox + bin/sh, or /runc), and
 * what the container must show it ran there (proof.ts).
 */
export async function prepareRootfs(rootfs: string, payload: Payload): Promise<ContainerProof> {
  for (const dir of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc']) await mkdir(path.join(rootfs, dir), { recursive: true });
  const dest = payload.kind === 'busybox' ? path.join(rootfs, 'bin/busybox') : path.join(rootfs, 'runc');
  await copyFile(payload.path, dest);
  await chmod(dest, 0o755);
  if (payload.kind === 'busybox') await symlink('busybox', path.join(rootfs, 'bin/sh'));
  return writeProof(rootfs, payload.kind);
}

export interface ContainerRun {
  ctr: string;
  socket: string;
  id: string;
  rootfs: string;
  /** What the container must show (from prepareRootfs); its payload kind picks the command. */
  proof: ContainerProof;
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
 * `ctr run --rm --rootfs DIR ID CMD...`, and what it printed and left held to the proof. Flags must
 * come before the rootfs dir (ctr takes the first positional as the rootfs, the next as the ID).
 */
export async function runContainer(exec: Exec, run: ContainerRun): Promise<CheckOutcome> {
  const args = [
    ...ctrBase(run.socket, SMOKE_NAMESPACE), 'run', '--rm',
    '--fifo-dir', run.fifoDir,
    // ctr does not read the CRI runtime options (BinaryName): name the installed runc explicitly.
    '--runc-binary', run.runc,
    '--runc-root', run.runcRoot,
    ...(run.systemdCgroup ? ['--runc-systemd-cgroup', '--cgroup', `system.slice:${SMOKE_NAMESPACE}:${run.id}`] : []),
    '--rootfs', run.rootfs, run.id,
    ...proofCommand(run.proof),
  ];
  const result = await runTool(exec, run.ctr, args, { timeoutMs: run.timeoutMs });
  if (!result.ok) return fail(`the test container did not run: ${result.why}`);
  const judged = await judgeProof(run.proof, result.stdout, run.rootfs);
  if (!judged.ok) return judged;
  const driver = run.systemdCgroup ? 'systemd' : 'cgroupfs';
  const what = run.proof.kind === 'busybox' ? 'busybox container' : 'container of the static runc binary';
  return pass(`${what} ${run.id} in namespace ${SMOKE_NAMESPACE} ${judged.detail} (runc ${run.runc}, ${driver} cgroups)`);
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
