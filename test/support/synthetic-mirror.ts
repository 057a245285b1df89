/**
 * The setup most CLI tests share: the test release server with the synthetic catalog, a work folder,
 * and a --checksums file pinning every asset the server holds (the synthetic bytes are not upstream's,
 * so the built-in pins would refuse them).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { containerdRelease, defaultCatalogReleases, type TestSigner } from './fixtures.ts';
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

/**
 * The catalog server plus a containerd 2.2.5 that has no built-in pin (its digest comes from the
 * checksum file the server serves), each test starting with no faults and no recorded requests.
 * Call at the top of a test file.
 */
export function useUnpinnedMirror(prefix: string): { gh: ReleaseServer; work: string } {
  // Filled in before the first test runs.
  const m = {} as { gh: ReleaseServer; work: string };
  beforeAll(async () => {
    m.gh = await startReleaseServer({ repos: await defaultCatalogReleases({ signer: null }) });
    m.gh.addRelease('containerd/containerd', await containerdRelease('2.2.5', ['amd64']));
    m.work = await mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterAll(async () => {
    await m.gh.close();
    await rm(m.work, { recursive: true, force: true });
  });
  beforeEach(() => {
    m.gh.clearFaults();
    m.gh.requests.length = 0;
  });
  return m;
}
