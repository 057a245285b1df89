/**
 * The private staging folder of a run (<root>/var/lib/node-prep/staging-*): the expected members of
 * each verified artifact are extracted there, as soon as its download is verified, and renamed into
 * place by the transaction. Removed when the run ends; a crashed run's folders go with the next run.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { ensureDir } from '../install/atomic.ts';
import { extractMembers, stageBareBinary, type StagedMember } from '../install/extract.ts';
import { NODE_PATHS, inRoot } from '../node/paths.ts';
import type { ComponentName, PlannedArtifact } from '../plan/types.ts';

/** Staging folders a crashed run left behind; call with the lock held, when no other run uses them. */
export async function removeStaleStaging(root: string): Promise<void> {
  const stateDir = inRoot(root, NODE_PATHS.stateDir);
  for (const name of await readdir(stateDir).catch(() => [] as string[])) {
    if (name.startsWith('staging-')) await rm(path.join(stateDir, name), { recursive: true, force: true });
  }
}

export class Staging {
  readonly #root: string;
  #dir: Promise<string> | undefined;
  readonly #jobs = new Map<ComponentName, Promise<StagedMember[]>>();

  constructor(root: string) {
    this.#root = root;
  }

  /** Extract `artifact` (verified, at `archive`) once; later calls get the same result. */
  start(artifact: PlannedArtifact, archive: string): Promise<StagedMember[]> {
    let job = this.#jobs.get(artifact.component);
    if (!job) {
      job = this.#stage(artifact, archive);
      job.catch(() => undefined); // awaited by the commit, or settled by close() after a failed download
      this.#jobs.set(artifact.component, job);
    }
    return job;
  }

  async #stage(artifact: PlannedArtifact, archive: string): Promise<StagedMember[]> {
    this.#dir ??= (async () => {
      const stateDir = inRoot(this.#root, NODE_PATHS.stateDir);
      await ensureDir(stateDir);
      return mkdtemp(path.join(stateDir, 'staging-'));
    })();
    const dir = path.join(await this.#dir, artifact.component);
    await mkdir(dir, { recursive: true });
    const entries = artifact.install.map((e) => ({ member: e.member, name: path.posix.basename(e.path), mode: e.mode, required: e.required }));
    return artifact.kind === 'binary' ? [await stageBareBinary(archive, entries[0]!, dir)] : extractMembers(archive, entries, dir);
  }

  /** Let extractions still running end, then remove the folder. */
  async close(): Promise<void> {
    await Promise.allSettled([this.#dir, ...this.#jobs.values()]);
    const dir = await this.#dir?.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}
