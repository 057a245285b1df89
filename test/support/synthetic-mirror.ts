/**
 * The setup most CLI tests share: the test release server with the synthetic catalog, a work folder,
 * and a --checksums file pinning every asset the server holds (the synthetic bytes are not upstream's,
 * so the built-in pins would refuse them).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultCatalogReleases, type TestSigner } from './fixtures.ts';
import { checksumsFor } from './layout.ts';
import { startReleaseServer, type ReleaseServer } from './release-server.ts';

export interface SyntheticMirror {
  gh: ReleaseServer;
  work: string;
  sums: string;
  close(): Promise<void>;
}

export async function startSyntheticMirror(prefix: string, opts: { signer?: TestSigner | null; bytesPerSecond?: number } = {}): Promise<SyntheticMirror> {
  const gh = await startReleaseServer({
    repos: await defaultCatalogReleases({ signer: opts.signer ?? null }),
    ...(opts.bytesPerSecond ? { bytesPerSecond: opts.bytesPerSecond } : {}),
  });
  const work = await mkdtemp(path.join(os.tmpdir(), prefix));
  const sums = path.join(work, 'SHA256SUMS');
  await writeFile(sums, checksumsFor(gh.repos));
  return {
    gh,
    work,
    sums,
    async close() {
      await gh.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}
