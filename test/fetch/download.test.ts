/**
 * Fault tests for the download layer against the test release server: real HTTP on loopback, real
 * bytes, faults switched on per test.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChecksumMismatchError, DeadlineError, DocumentTooLargeError, NetworkError, NoAssetError } from '../../src/errors.ts';
import { ArtifactCache } from '../../src/fetch/cache.ts';
import { fetchVerified, type FetchTarget } from '../../src/fetch/download.ts';
import { type FetchEvent } from '../../src/events.ts';
import { fetchAll } from '../../src/fetch/fetch-all.ts';
import { DEFAULT_HTTP, Http, MAX_DOCUMENT_BYTES } from '../../src/net/http.ts';
import { sha256 } from '../support/fixtures.ts';
import { startProxy } from '../support/proxy.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';

const BIG = randomBytes(3 * 1024 * 1024);
const SMALL = randomBytes(64 * 1024);
let gh: ReleaseServer;
let http: Http;
let cache: ArtifactCache;

const makeHttp = (extra: Partial<ConstructorParameters<typeof Http>[0]> = {}) =>
  new Http({ ...DEFAULT_HTTP, userAgent: 'node-prep-test', apiBase: gh.apiUrl, proxy: {}, retryDelaysMs: [0, 0, 0], idleTimeoutMs: 5_000, ...extra });

function target(name: string, body: Buffer, over: Partial<FetchTarget> = {}): FetchTarget {
  return {
    component: 'containerd',
    version: '2.9.0',
    arch: 'amd64',
    name,
    url: `${gh.url}/containerd/containerd/releases/download/v2.9.0/${name}`,
    sha256: sha256(body),
    expectedFrom: 'pinned (built in)',
    ...over,
  };
}

beforeAll(async () => {
  gh = await startReleaseServer({
    repos: { 'containerd/containerd': [{ tag: 'v2.9.0', assets: { 'big.tar.gz': BIG, 'small.tar.gz': SMALL, 'other.tar.gz': randomBytes(1000) } }] },
  });
});
afterAll(() => gh.close());
beforeEach(async () => {
  gh.clearFaults();
  gh.requests.length = 0;
  http = makeHttp();
  cache = new ArtifactCache(await mkdtemp(path.join(os.tmpdir(), 'np-cache-')));
});
afterEach(() => http.close());

const collect = () => {
  const events: FetchEvent[] = [];
  return { events, emit: (e: FetchEvent) => events.push(e) };
};

describe('fetchVerified', () => {
  it('streams, verifies and caches; a second fetch downloads nothing', async () => {
    const t = target('big.tar.gz', BIG);
    const first = await fetchVerified(http, cache, t);
    expect(first.source).toBe('network');
    expect(await readFile(first.path)).toEqual(BIG);
    gh.requests.length = 0;
    const second = await fetchVerified(http, cache, t);
    expect(second).toMatchObject({ source: 'cache', path: first.path });
    expect(gh.requests).toEqual([]);
  });

  it('retries 500s, then succeeds', async () => {
    gh.setFault({ match: 'small.tar.gz', status: 500, times: 2 });
    const { events, emit } = collect();
    const r = await fetchVerified(http, cache, target('small.tar.gz', SMALL), emit);
    expect(r.source).toBe('network');
    expect(events.filter((e) => e.type === 'download:retry')).toHaveLength(2);
  });

  it('gives up after the configured retries and names the URL', async () => {
    gh.setFault({ match: 'small.tar.gz', status: 503 });
    await expect(fetchVerified(http, cache, target('small.tar.gz', SMALL))).rejects.toThrow(/small\.tar\.gz answered 503/);
    expect(gh.requests.filter((q) => q.path.endsWith('small.tar.gz'))).toHaveLength(4);
  });

  it('does not retry a 404, and says which arch has no asset', async () => {
    await expect(fetchVerified(http, cache, target('missing.tar.gz', SMALL, { arch: 'arm64' }))).rejects.toThrow(NoAssetError);
    await expect(fetchVerified(http, cache, target('missing.tar.gz', SMALL, { arch: 'arm64' }))).rejects.toThrow('containerd 2.9.0 publishes no linux/arm64 asset');
    expect(gh.requests.filter((q) => q.path.endsWith('missing.tar.gz'))).toHaveLength(2);
  });

  it('resumes with a Range request after a connection reset mid-body', async () => {
    gh.setFault({ match: 'big.tar.gz', resetAt: 1024 * 1024, times: 1 });
    const { events, emit } = collect();
    const r = await fetchVerified(http, cache, target('big.tar.gz', BIG), emit);
    expect(await readFile(r.path)).toEqual(BIG);
    const retry = events.find((e) => e.type === 'download:retry');
    expect(retry).toMatchObject({ type: 'download:retry' });
    const ranges = gh.requests.filter((q) => q.headers.range).map((q) => q.headers.range);
    expect(ranges).toHaveLength(1);
    expect(Number(/bytes=(\d+)-/.exec(ranges[0]!)![1])).toBeGreaterThan(0);
  });

  it('resumes a body cut short', async () => {
    gh.setFault({ match: 'big.tar.gz', truncateAt: 200_000, times: 1 });
    const r = await fetchVerified(http, cache, target('big.tar.gz', BIG));
    expect(await readFile(r.path)).toEqual(BIG);
    const resumedAt = gh.requests.map((q) => Number(/bytes=(\d+)-/.exec(q.headers.range ?? '')?.[1])).filter((n) => n > 0);
    expect(resumedAt).toHaveLength(1);
    expect(resumedAt[0]).toBeLessThanOrEqual(200_000);
  });

  it('fetches a body with wrong bytes once more, then succeeds', async () => {
    gh.setFault({ match: 'small.tar.gz', corrupt: true, times: 1 });
    const r = await fetchVerified(http, cache, target('small.tar.gz', SMALL));
    expect(await readFile(r.path)).toEqual(SMALL);
  });

  it('refuses wrong bytes for good: names expected, actual and sources, and caches nothing', async () => {
    gh.setFault({ match: 'small.tar.gz', corrupt: true });
    const err = await fetchVerified(http, cache, target('small.tar.gz', SMALL)).catch((e) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect(err.fields).toMatchObject({ artifact: 'small.tar.gz', expected: sha256(SMALL), expectedFrom: 'pinned (built in)' });
    expect(err.fields.actual).not.toBe(sha256(SMALL));
    expect(err.message).toContain(`expected ${sha256(SMALL)} (pinned (built in))`);
    expect(await readdir(path.join(cache.dir, 'tmp'))).toEqual([]);
    await expect(readdir(path.join(cache.dir, 'sha256'))).rejects.toThrow();
  });

  it('times out a server slower than the timeout, retries, then fails with a network error', async () => {
    const slow = makeHttp({ idleTimeoutMs: 300, connectTimeoutMs: 300, retryDelaysMs: [0] });
    // undici checks its timeouts on a coarse (about one second) clock, so the delay is much longer.
    gh.setFault({ match: 'small.tar.gz', delayMs: 8_000 });
    const started = Date.now();
    const err = await fetchVerified(slow, cache, target('small.tar.gz', SMALL)).catch((e) => e);
    await slow.close();
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.message).toContain('no data within the idle timeout');
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it('resumes a body that stalls past the idle timeout', async () => {
    const impatient = makeHttp({ idleTimeoutMs: 300 });
    gh.setFault({ match: 'big.tar.gz', stallAfter: 500_000, times: 1 });
    const r = await fetchVerified(impatient, cache, target('big.tar.gz', BIG));
    await impatient.close();
    expect(await readFile(r.path)).toEqual(BIG);
    expect(gh.requests.some((q) => /bytes=[1-9]\d*-/.test(q.headers.range ?? ''))).toBe(true);
  });

  it('follows a redirect to the CDN host without sending the token there', async () => {
    const cdn = await startReleaseServer({ repos: { 'containerd/containerd': [{ tag: 'v2.9.0', assets: { 'small.tar.gz': SMALL } }] }, cdnRedirect: true });
    const withToken = new Http({ ...DEFAULT_HTTP, userAgent: 't', apiBase: cdn.url, githubToken: 'tok-abcdef', proxy: {}, retryDelaysMs: [] });
    try {
      const url = `${cdn.url}/containerd/containerd/releases/download/v2.9.0/small.tar.gz`;
      const r = await fetchVerified(withToken, cache, target('small.tar.gz', SMALL, { url }));
      expect(r.source).toBe('network');
      const toCdn = cdn.requests.filter((q) => q.server === 'cdn');
      expect(toCdn).toHaveLength(1);
      expect(toCdn[0]!.headers.authorization).toBeUndefined();
    } finally {
      await withToken.close();
      await cdn.close();
    }
  });

  it('uses the proxy from HTTP_PROXY when the target is not in NO_PROXY', async () => {
    const proxy = await startProxy();
    const proxied = makeHttp({ proxy: { http: proxy.url, https: proxy.url, no: '' } });
    try {
      await fetchVerified(proxied, cache, target('small.tar.gz', SMALL));
      expect(proxy.requests.some((r) => r.includes('small.tar.gz'))).toBe(true);
    } finally {
      await proxied.close();
      await proxy.close();
    }
  });

  it('says when a failed connection went through the proxy', async () => {
    const proxied = makeHttp({ proxy: { http: 'http://127.0.0.1:9', https: 'http://127.0.0.1:9', no: '' }, retryDelaysMs: [] });
    const err = await fetchVerified(proxied, cache, target('small.tar.gz', SMALL)).catch((e) => e);
    await proxied.close();
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.message).toContain('through the proxy http://127.0.0.1:9');
    expect(err.hint).toContain('NO_PROXY');
  });

  it('never counts a partial file: a leftover temp file is ignored', async () => {
    const t = target('small.tar.gz', SMALL);
    const tmp = await cache.tempPath(t.sha256);
    await import('node:fs/promises').then((fs) => fs.writeFile(tmp, SMALL.subarray(0, 100)));
    const r = await fetchVerified(http, cache, t);
    expect(r.source).toBe('network');
  });

  it('drops a damaged cache entry instead of trusting it', async () => {
    const t = target('small.tar.gz', SMALL);
    const first = await fetchVerified(http, cache, t);
    await import('node:fs/promises').then((fs) => fs.writeFile(first.path, 'tampered'));
    const again = await fetchVerified(http, cache, t);
    expect(again.source).toBe('network');
    expect(await readFile(again.path)).toEqual(SMALL);
  });

  it('two fetches of the same artifact at once both succeed with one cache entry', async () => {
    const t = target('big.tar.gz', BIG);
    const [a, b] = await Promise.all([fetchVerified(http, cache, t), fetchVerified(makeHttp(), new ArtifactCache(cache.dir), t)]);
    expect(a.path).toBe(b.path);
    expect(await readFile(a.path)).toEqual(BIG);
    expect(await readdir(path.join(cache.dir, 'sha256'))).toEqual([sha256(BIG)]);
  });
});

describe('a slow connection is split into parallel ranges', () => {
  it('fetches the rest of a throttled download over several connections and still verifies it', async () => {
    const body = randomBytes(12 * 1024 * 1024);
    const slow = await startReleaseServer({ repos: { 'containerd/containerd': [{ tag: 'v2.9.0', assets: { 'slow.tar.gz': body } }] }, bytesPerSecond: 4_000_000 });
    const client = makeHttp({ apiBase: slow.apiUrl });
    try {
      const url = `${slow.url}/containerd/containerd/releases/download/v2.9.0/slow.tar.gz`;
      const r = await fetchVerified(client, cache, target('slow.tar.gz', body, { url }));
      expect((await readFile(r.path)).equals(body)).toBe(true);
      // The first connection asks for everything; after the split, bounded ranges fetch the rest.
      const ranges = slow.requests.map((q) => q.headers.range).filter((x): x is string => x !== undefined);
      expect(ranges.filter((x) => /^bytes=\d+-\d+$/.test(x)).length).toBeGreaterThanOrEqual(2);
    } finally {
      await client.close();
      await slow.close();
    }
  });

  it('never splits a fast connection', async () => {
    const r = await fetchVerified(http, cache, target('big.tar.gz', BIG));
    expect(r.source).toBe('network');
    expect(gh.requests.some((q) => q.headers.range !== undefined)).toBe(false);
  });
});

describe('fetchAll', () => {
  it('downloads concurrently: every download starts before the first one ends', async () => {
    gh.setFault({ match: /\.tar\.gz$/, delayMs: 300 });
    const { events, emit } = collect();
    const other = gh.repos['containerd/containerd']![0]!.assets['other.tar.gz'] as Buffer;
    const results = await fetchAll(http, cache, [target('big.tar.gz', BIG), target('small.tar.gz', SMALL), target('other.tar.gz', other)], { emit });
    expect(results.map((r) => r.source)).toEqual(['network', 'network', 'network']);
    const order = events.filter((e) => e.type === 'download:start' || e.type === 'download:done').map((e) => e.type);
    expect(order.slice(0, 3)).toEqual(['download:start', 'download:start', 'download:start']);
  });

  it('with concurrency 1 they run one after another', async () => {
    const { events, emit } = collect();
    await fetchAll(http, cache, [target('big.tar.gz', BIG), target('small.tar.gz', SMALL)], { emit, concurrency: 1 });
    const order = events.filter((e) => e.type === 'download:start' || e.type === 'download:done').map((e) => e.type);
    expect(order).toEqual(['download:start', 'download:done', 'download:start', 'download:done']);
  });
});

describe('faults of this machine, not the network', () => {
  // A real full disk: the cache on a 1 MiB tmpfs, a 3 MiB artifact.
  it.skipIf(process.getuid?.() !== 0)('a full disk is said as such and not retried', async () => {
    const { execa } = await import('execa');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'np-full-'));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', dir]);
    try {
      const full = new ArtifactCache(dir);
      const err = await fetchVerified(http, full, target('big.tar.gz', BIG)).catch((e) => e);
      expect(err.code).toBe('NO_SPACE');
      expect(err.message).toBe('No space left on the device holding the download of big.tar.gz.');
      expect(gh.requests.filter((r) => r.path.endsWith('/big.tar.gz'))).toHaveLength(1);
      // The partial download is gone again.
      expect(await readdir(path.join(dir, 'tmp')).catch(() => [])).toEqual([]);
    } finally {
      await execa('umount', [dir]);
    }
  });
});

describe('small documents (checksum files, API pages)', () => {
  it('a body that stalls is retried like an artifact, and the error names its URL', async () => {
    const impatient = makeHttp({ idleTimeoutMs: 300, retryDelaysMs: [0] });
    const url = `${gh.url}/containerd/containerd/releases/download/v2.9.0/small.tar.gz`;
    try {
      gh.setFault({ match: 'small.tar.gz', stallAfter: 1_000, times: 1 });
      expect((await impatient.getText(url)).text.length).toBe(SMALL.toString('utf8').length);
      expect(gh.requests.filter((r) => r.path.endsWith('/small.tar.gz'))).toHaveLength(2);
      gh.setFault({ match: 'small.tar.gz', stallAfter: 1_000 });
      const err = await impatient.getText(url).catch((e) => e);
      expect(err).toBeInstanceOf(NetworkError);
      expect(err.message).toBe(`GET ${url} failed: no data within the idle timeout`);
    } finally {
      await impatient.close();
    }
  });
  it('refuses a document longer than 1 MiB that says so in its Content-Length, at once and without a retry', async () => {
    const url = `${gh.url}/containerd/containerd/releases/download/v2.9.0/huge.sha256sum`;
    gh.setFault({ match: 'huge.sha256sum', status: 200, body: `${'0'.repeat(64)}  huge.tar.gz\n`.repeat(20_000) });
    const err = await http.getText(url).catch((e) => e);
    expect(err).toBeInstanceOf(DocumentTooLargeError);
    expect(err.code).toBe('DOCUMENT_TOO_LARGE');
    expect(err.message).toBe(`${url} is larger than 1 MiB, the most node-prep reads of a checksum file, signature or API page.`);
    expect(gh.requests.filter((r) => r.path.endsWith('/huge.sha256sum'))).toHaveLength(1);
  });

  it('cuts an endless document off at 1 MiB: no Content-Length, bytes for ever', async () => {
    const url = `${gh.url}/containerd/containerd/releases/download/v2.9.0/endless.sha256sum`;
    gh.setFault({ match: 'endless.sha256sum', status: 200, body: `${'0'.repeat(64)}  endless.tar.gz\n`, endless: true });
    const before = process.memoryUsage().rss;
    const err = await http.getText(url).catch((e) => e);
    expect(err).toBeInstanceOf(DocumentTooLargeError);
    expect(err.fields).toEqual({ url, limitBytes: MAX_DOCUMENT_BYTES });
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    expect(gh.requests.filter((r) => r.path.endsWith('/endless.sha256sum'))).toHaveLength(1);
  });

  it('an API page may be larger than a checksum file, up to its own cap', async () => {
    const url = `${gh.apiUrl}/repos/containerd/containerd/releases?per_page=100`;
    const page = JSON.stringify([{ tag_name: 'v2.9.0', draft: false, prerelease: false, body: 'x'.repeat(3 * 1024 * 1024) }]);
    gh.setFault({ match: '/releases?per_page=100', status: 200, body: page, times: 1 });
    const { data } = await http.getJson<Array<{ tag_name: string }>>(url);
    expect(data[0]!.tag_name).toBe('v2.9.0');
  });

  it('a document that trickles in faster than the idle timeout ends at its deadline, naming the URL', async () => {
    const patient = makeHttp({ idleTimeoutMs: 2_000, documentDeadlineMs: 800 });
    const url = `${gh.url}/containerd/containerd/releases/download/v2.9.0/small.tar.gz`;
    try {
      gh.setFault({ match: 'small.tar.gz', trickleMs: 50 });
      const t0 = Date.now();
      const err = await patient.getText(url).catch((e) => e);
      expect(err).toBeInstanceOf(DeadlineError);
      expect(err.code).toBe('DEADLINE');
      expect(err.message).toBe(`GET ${url} did not finish within 0.8 s, the deadline for a checksum file, signature or API page, retries included.`);
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      await patient.close();
    }
  });

  it('retries of a stalling document stop at the deadline', async () => {
    const patient = makeHttp({ idleTimeoutMs: 200, documentDeadlineMs: 1_000, retryDelaysMs: Array(100).fill(0) });
    const url = `${gh.url}/containerd/containerd/releases/download/v2.9.0/small.tar.gz`;
    try {
      gh.setFault({ match: 'small.tar.gz', stallAfter: 10 });
      const t0 = Date.now();
      const err = await patient.getText(url).catch((e) => e);
      expect(err).toBeInstanceOf(DeadlineError);
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      await patient.close();
    }
  });
});

describe('the download deadline', () => {
  it('ends a download that trickles in faster than the idle timeout, names the URL, and caches nothing', async () => {
    const patient = makeHttp({ idleTimeoutMs: 2_000, downloadDeadlineMs: 800 });
    const t = target('small.tar.gz', SMALL);
    try {
      gh.setFault({ match: 'small.tar.gz', trickleMs: 20 });
      const t0 = Date.now();
      const err = await fetchVerified(patient, cache, t).catch((e) => e);
      expect(err).toBeInstanceOf(DeadlineError);
      expect(err.message).toBe(`GET ${t.url} did not finish within 0.8 s, the deadline for one download, retries included.`);
      expect(err.hint).toContain('--deadline SECONDS');
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(await cache.lookup(t.sha256)).toBeUndefined();
    } finally {
      await patient.close();
    }
  });

  it('retries and resumes stop at the deadline, however many retries are left', async () => {
    const patient = makeHttp({ idleTimeoutMs: 200, downloadDeadlineMs: 1_000, retryDelaysMs: Array(100).fill(0) });
    const t = target('small.tar.gz', SMALL);
    try {
      gh.setFault({ match: 'small.tar.gz', stallAfter: 10 });
      const { events, emit } = collect();
      const t0 = Date.now();
      const err = await fetchVerified(patient, cache, t, emit).catch((e) => e);
      expect(err).toBeInstanceOf(DeadlineError);
      expect(Date.now() - t0).toBeLessThan(3_000);
      const retries = events.filter((e) => e.type === 'download:retry').length;
      expect(retries).toBeGreaterThan(0);
      expect(retries).toBeLessThan(100);
    } finally {
      await patient.close();
    }
  });

  it('a backoff longer than what is left of the deadline is cut short', async () => {
    const patient = makeHttp({ idleTimeoutMs: 5_000, downloadDeadlineMs: 500, retryDelaysMs: [60_000] });
    const t = target('small.tar.gz', SMALL);
    try {
      gh.setFault({ match: 'small.tar.gz', status: 503 });
      const t0 = Date.now();
      const err = await fetchVerified(patient, cache, t).catch((e) => e);
      expect(err).toBeInstanceOf(DeadlineError);
      expect(Date.now() - t0).toBeLessThan(2_000);
    } finally {
      await patient.close();
    }
  });
});
