/**
 * Bounded input, end to end: the built CLI against the test release server serving an oversized or
 * endless checksum file, and answers that trickle in just fast enough to beat the idle timeout.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { containerdRelease, defaultCatalogReleases } from '../support/fixtures.ts';
import { checksumsFor } from '../support/layout.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';

let gh: ReleaseServer;
let work: string;
const mirror = () => ['--mirror', gh.url, '--github-api', gh.apiUrl];
const SUMS = '/containerd/containerd/releases/download/v2.2.5/containerd-2.2.5-linux-amd64.tar.gz.sha256sum';

beforeAll(async () => {
  gh = await startReleaseServer({ repos: await defaultCatalogReleases({ signer: null }) });
  // No built-in pin: its digest comes from the checksum file the mirror serves.
  gh.addRelease('containerd/containerd', await containerdRelease('2.2.5', ['amd64']));
  work = await mkdtemp(path.join(os.tmpdir(), 'np-bounds-'));
});
afterAll(async () => {
  await gh.close();
  await rm(work, { recursive: true, force: true });
});
beforeEach(() => {
  gh.clearFaults();
  gh.requests.length = 0;
});

describe('small documents are bounded', () => {
  it('an endless checksum file is cut off at 1 MiB: DOCUMENT_TOO_LARGE names the URL, exit 1, one request', async () => {
    gh.setFault({ match: SUMS, status: 200, body: `${'0'.repeat(64)}  containerd-2.2.5-linux-amd64.tar.gz\n`, endless: true });
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', '--json', ...mirror()], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(1);
    const { error } = JSON.parse(r.stdout);
    expect(error).toMatchObject({ code: 'DOCUMENT_TOO_LARGE', url: `${gh.url}${SUMS}`, limitBytes: 1024 * 1024 });
    expect(r.stderr).toContain(`node-prep: ${gh.url}${SUMS} is larger than 1 MiB`);
    expect(gh.requests.filter((q) => q.path === SUMS)).toHaveLength(1);
  });

  it('a checksum file that trickles in ends at the deadline (--deadline, shorter than 2 minutes), naming the URL', async () => {
    gh.setFault({ match: SUMS, trickleMs: 100 });
    const t0 = Date.now();
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', '--timeout', '3', '--deadline', '1.5', ...mirror()], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`node-prep: GET ${gh.url}${SUMS} did not finish within 1.5 s, the deadline for a checksum file, signature or API page, retries included.`);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('the download deadline', () => {
  it('an artifact that trickles in faster than --timeout ends at --deadline (NODE_PREP_DEADLINE too), naming the URL', async () => {
    const sums = path.join(work, 'SHA256SUMS');
    await writeFile(sums, checksumsFor(gh.repos));
    const asset = '/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz';
    gh.setFault({ match: asset, trickleMs: 200 });
    const t0 = Date.now();
    const r = await runCli(
      ['download', '--bundle', path.join(work, 'bundle'), '--cache-dir', path.join(work, 'cache'), '--arch', 'amd64', '--checksums', sums, '--timeout', '3', '--json', ...mirror()],
      { env: { NODE_PREP_DEADLINE: '2' }, timeoutMs: 30_000 },
    );
    expect(r.code, r.stderr).toBe(1);
    const { error } = JSON.parse(r.stdout);
    expect(error).toMatchObject({ code: 'DEADLINE', url: `${gh.url}${asset}`, deadlineMs: 2000 });
    expect(error.message).toBe(`GET ${gh.url}${asset} did not finish within 2 s, the deadline for one download, retries included.`);
    expect(error.hint).toContain('--deadline SECONDS (NODE_PREP_DEADLINE)');
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});
