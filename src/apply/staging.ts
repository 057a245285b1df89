/**
 * The private staging folder of a run (<root>/var/lib/node-prep/staging-*, 0700, reached with no link
 * on the way): the expected members of each verified artifact are extracted there, as soon as its
 * download is verified, and copied into place by the transaction through the folder's descriptor.
 * Removed when the run ends; a crashed run's folders go with the next run (apply/journal.ts).
 */
import { randomBytes } from 'node:crypto';
import { extractMembers, stageBareBinary, type StagedMember } from '../install/extract.ts';
import { RootFs, type Dir } from '../install/root-fs.ts';
import type { ComponentName, PlannedArtifact } from '../plan/types.ts';
import { openStateDir } from '../state/manifest.ts';

/** How errors name an artifact: its asset and component, never the cache path. */
export const artifactLabel = (a: PlannedArtifact) => `${a.name} (${a.component} ${a.version})`;

export class Staging {
  readonly #root: string;
  #dir: Promise<{ fs: RootFs; state: Dir; dir: Dir }> | undefined;
  readonly #jobs = new Map<ComponentName, Promise<StagedMember[]>>();
  readonly #subdirs: Dir[] = [];

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
      const fs = await RootFs.open(this.#root, { create: true });
      const state = (await openStateDir(fs, { create: true }))!;
      const dir = (await state.sub(`staging-${randomBytes(6).toString('hex')}`, { create: true, mode: 0o700 }))!;
      return { fs, state, dir };
    })();
    const { dir: top } = await this.#dir;
    const dir = (await top.sub(artifact.component, { create: true, mode: 0o700 }))!;
    this.#subdirs.push(dir);
    const input = { file: archive, sha256: artifact.sha256, label: artifactLabel(artifact) };
    const limits = { maxMemberBytes: artifact.limits.memberBytes, maxUnpackedBytes: artifact.limits.unpackedBytes };
    const entries = artifact.install.map((e) => ({ member: e.member, name: e.path.slice(e.path.lastIndexOf('/') + 1), mode: e.mode, required: e.required }));
    return artifact.kind === 'binary' ? [await stageBareBinary(input, entries[0]!, dir, limits)] : extractMembers(input, entries, dir, limits);
  }

  /** Let extractions still running end, then remove the folder. */
  async close(): Promise<void> {
    await Promise.allSettled([this.#dir, ...this.#jobs.values()]);
    const opened = await this.#dir?.catch(() => undefined);
    for (const d of this.#subdirs.splice(0)) await d.close();
    if (!opened) return;
    const name = opened.dir.nodePath.slice(opened.dir.nodePath.lastIndexOf('/') + 1);
    await opened.dir.close();
    await opened.state.removeTree(name).catch(() => undefined);
    await opened.state.close();
    await opened.fs.close();
    this.#dir = undefined;
  }
}
