/**
 * Leave the host as it was: processes started from our scratch dir (a temporary containerd's shims
 * survive it, as in production), container processes in our cgroups, mounts under the scratch dir,
 * the scratch dir, our cgroup dirs, and what containerd puts in /run/containerd even when root,
 * state and socket are elsewhere (before 2.3 the shim socket dir is hardcoded: /run/containerd/s).
 */
import { createHash } from 'node:crypto';
import { rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_SHIM_SOCKET_DIR } from '../config/layout.ts';
import type { Exec } from '../exec/exec.ts';
import { SMOKE_NAMESPACE } from './container.ts';
import { cgroupProcs, findProcesses, isDirectory, killAndWait, removeCgroupDirs, unmountUnder } from './host.ts';

export const CONTAINERD_RUN_DIR = '/run/containerd';

export interface CleanupInputs {
  scratchDir: string;
  containerIds: string[];
  /**
   * Temporary mode: the temporary daemon's socket, where its shims put their sockets, and whether
   * /run/containerd existed before it started.
   */
  temporary?: { socket: string; runDirExisted: boolean; shimSocketDir: string } | undefined;
}

export interface CleanupResult {
  done: string[];
  problems: string[];
}

/** The shim's socket for a container (containerd runtime/v2/shim SocketAddress, 1.6 and 2.x). */
export function shimSocketPath(containerdSocket: string, namespace: string, id: string, socketDir = DEFAULT_SHIM_SOCKET_DIR): string {
  const digest = createHash('sha256').update(path.join(containerdSocket, namespace, id)).digest('hex');
  return path.join(socketDir, digest);
}

export async function cleanupHost(exec: Exec, inputs: CleanupInputs): Promise<CleanupResult> {
  const done: string[] = [];
  const problems: string[] = [];
  const { scratchDir } = inputs;

  // A shim's argv names the socket it reports to (-address <scratch>/containerd.sock).
  const fromScratch = await findProcesses((argv) => argv.some((a) => a.includes(`${scratchDir}/`)));
  if (fromScratch.length > 0) {
    const names = fromScratch.map((p) => `${path.basename(p.argv[0] ?? '?')}[${p.pid}]`).join(', ');
    const left = await killAndWait(fromScratch.map((p) => p.pid));
    done.push(`killed leftover ${names}`);
    if (left.length > 0) problems.push(`processes still running after SIGKILL: ${left.join(', ')}`);
  }
  for (const id of inputs.containerIds) {
    const pids = await cgroupProcs(path.join(SMOKE_NAMESPACE, id));
    if (pids.length === 0) continue;
    const left = await killAndWait(pids);
    done.push(`killed ${pids.length} process(es) left in the cgroup of container ${id}`);
    if (left.length > 0) problems.push(`container processes still running: ${left.join(', ')}`);
  }

  const { unmounted, left: stillMounted } = await unmountUnder(exec, scratchDir);
  if (unmounted.length > 0) done.push(`unmounted ${unmounted.join(', ')}`);
  if (stillMounted.length > 0) problems.push(`still mounted: ${stillMounted.join(', ')}`);
  if (stillMounted.length === 0) {
    try {
      await rm(scratchDir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
    } catch (err) {
      problems.push(`cannot remove ${scratchDir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if (await isDirectory(scratchDir)) problems.push(`${scratchDir} remains`);
  else done.push(`removed ${scratchDir}`);

  // rmdir removes only empty cgroups; one still in use by a concurrent smoke run stays.
  const cgroups = await removeCgroupDirs([...inputs.containerIds.map((id) => path.join(SMOKE_NAMESPACE, id)), SMOKE_NAMESPACE]);
  if (cgroups.removed.length > 0) done.push(`removed ${cgroups.removed.length} cgroup dirs (${SMOKE_NAMESPACE})`);
  const ours = cgroups.left.filter((d) => inputs.containerIds.some((id) => d.includes(`/${SMOKE_NAMESPACE}/${id} `)));
  if (ours.length > 0) problems.push(`cgroup dirs left: ${ours.join(', ')}`);

  if (inputs.temporary !== undefined) {
    // A shim killed above could not remove its socket; a shim that exited normally did.
    for (const id of inputs.containerIds) {
      const socket = shimSocketPath(inputs.temporary.socket, SMOKE_NAMESPACE, id, inputs.temporary.shimSocketDir);
      if (await unlink(socket).then(() => true, () => false)) done.push(`removed the shim socket ${socket}`);
    }
    if (!inputs.temporary.runDirExisted) {
      // Empty dirs only: a concurrent run (or a real containerd started meanwhile) keeps its files.
      for (const dir of [path.join(CONTAINERD_RUN_DIR, 's'), CONTAINERD_RUN_DIR]) await rmdir(dir).catch(() => undefined);
      if (!(await isDirectory(CONTAINERD_RUN_DIR))) done.push(`removed ${CONTAINERD_RUN_DIR} (created by the temporary containerd)`);
    }
  }
  return { done, problems };
}
