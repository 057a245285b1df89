// Tests of the fake GitHub itself: if these lie, every other test lies with them.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultCatalogReleases, REPOS } from '../support/fixtures.ts';
import { rateLimitFault, startReleaseServer } from '../support/release-server.ts';
import type { FakeRelease, ReleaseServer } from '../support/release-server.ts';
import { startProxy } from '../support/proxy.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const CTR = 'containerd-2.3.4-linux-amd64.tar.gz';
const CTR_PATH = `/containerd/containerd/releases/download/v2.3.4/${CTR}`;

interface RawResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** How the exchange ended: cleanly, by an error (code), or by our own timeout. */
  ending: 'end' | 'timeout' | string;
}

/** Low-level GET that reports exactly how the body ended, which fetch hides. */
function raw(url: string, opts: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const finish = (ending: string) => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ending });
      };
      const timer = setTimeout(() => {
        req.destroy();
        finish('timeout');
      }, opts.timeoutMs ?? 5000);
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish('end'));
      res.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    });
    // An error before any response (e.g. a reset) is a result to assert on, not a failure.
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, headers: {}, body: Buffer.concat(chunks), ending: e.code ?? e.message }));
    req.end();
  });
}

let catalog: Awaited<ReturnType<typeof defaultCatalogReleases>>;
let srv: ReleaseServer;
beforeAll(async () => {
  catalog = await defaultCatalogReleases();
  srv = await startReleaseServer({ repos: catalog });
});
afterAll(() => srv.close());
afterEach(() => srv.clearFaults());

const ctrBytes = () => catalog[REPOS.containerd]!.find((r) => r.tag === 'v2.3.4')!.assets[CTR] as Buffer;

describe('downloads', () => {
  it('serves asset bytes whose sha256 matches the .sha256sum file and the API digest', async () => {
    const res = await fetch(srv.url + CTR_PATH);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(res.headers.get('content-length')).toBe(String(body.length));
    const sumFile = await (await fetch(`${srv.url}${CTR_PATH}.sha256sum`)).text();
    expect(sumFile).toBe(`${sha(body)}  ${CTR}\n`);
    const rel = (await (await fetch(`${srv.apiUrl}/repos/containerd/containerd/releases/tags/v2.3.4`)).json()) as { assets: { name: string; digest: string; browser_download_url: string }[] };
    const asset = rel.assets.find((a) => a.name === CTR)!;
    expect(asset.digest).toBe(`sha256:${sha(body)}`);
    expect(asset.browser_download_url).toBe(srv.url + CTR_PATH);
  });

  it('resumes with Range: bytes=N- (206 + Content-Range) and answers HEAD', async () => {
    const full = ctrBytes();
    const res = await request(srv.url + CTR_PATH, { headers: { range: 'bytes=100-' } });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 100-${full.length - 1}/${full.length}`);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(full.subarray(100))).toBe(true);
    const head = await request(srv.url + CTR_PATH, { method: 'HEAD' });
    expect(head.headers['content-length']).toBe(String(full.length));
    const past = await raw(srv.url + CTR_PATH, { headers: { range: `bytes=${full.length}-` } });
    expect(past.status).toBe(416);
    expect((await fetch(`${srv.url}/containerd/containerd/releases/download/v2.3.4/nope.tar.gz`)).status).toBe(404);
  });

  it('streams {path} assets from disk', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'np-srv-')), 'big.bin');
    fs.writeFileSync(file, Buffer.alloc(300_000, 7));
    const s = await startReleaseServer({ repos: { 'o/r': [{ tag: 'v1.0.0', assets: { 'big.bin': { path: file } } }] } });
    try {
      const body = Buffer.from(await (await fetch(`${s.url}/o/r/releases/download/v1.0.0/big.bin`)).arrayBuffer());
      expect(sha(body)).toBe(sha(fs.readFileSync(file)));
      const r = await raw(`${s.url}/o/r/releases/download/v1.0.0/big.bin`, { headers: { range: 'bytes=299990-' } });
      expect(r.body.length).toBe(10);
    } finally {
      await s.close();
    }
  });
});

describe('latest and tags', () => {
  it('redirects /releases/latest to the newest stable vX.Y.Z tag, ignoring draft, beta and api/ tags', async () => {
    const res = await fetch(`${srv.url}/containerd/containerd/releases/latest`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`${srv.url}/containerd/containerd/releases/tag/v2.3.4`);
    expect((await fetch(res.headers.get('location')!)).status).toBe(200);
    expect((await fetch(`${srv.url}/containerd/containerd/releases/tag/v9.9.9`)).status).toBe(404);
    const api = (await (await fetch(`${srv.apiUrl}/repos/containerd/containerd/releases/latest`)).json()) as { tag_name: string };
    expect(api.tag_name).toBe('v2.3.4');
  });

  it('honours the latest override (make_latest)', async () => {
    const s = await startReleaseServer({ repos: catalog, latest: { [REPOS.containerd]: 'v2.2.7' } });
    try {
      const res = await fetch(`${s.url}/containerd/containerd/releases/latest`, { redirect: 'manual' });
      expect(res.headers.get('location')).toMatch(/\/releases\/tag\/v2\.2\.7$/);
    } finally {
      await s.close();
    }
  });
});

describe('API', () => {
  const six: FakeRelease[] = ['1.0.0', '1.1.0', '1.2.0', '2.0.0', '2.1.0', '2.2.0'].map((v) => ({ tag: `v${v}`, assets: { 'a.txt': Buffer.from(v) } }));

  it('paginates newest first with GitHub-style Link headers', async () => {
    const s = await startReleaseServer({ repos: { 'o/r': six } });
    try {
      const tags: string[] = [];
      const links: string[] = [];
      let next: string | undefined = `${s.apiUrl}/repos/o/r/releases?per_page=2`;
      while (next) {
        const res = await fetch(next);
        const link = res.headers.get('link') ?? '';
        links.push(link);
        expect(res.headers.get('x-ratelimit-limit')).toBe('60');
        expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
        tags.push(...((await res.json()) as { tag_name: string }[]).map((r) => r.tag_name));
        next = /<([^>]+)>; rel="next"/.exec(link)?.[1];
      }
      expect(tags).toEqual(['v2.2.0', 'v2.1.0', 'v2.0.0', 'v1.2.0', 'v1.1.0', 'v1.0.0']);
      expect(links).toHaveLength(3);
      expect(links[0]).toBe(`<${s.apiUrl}/repos/o/r/releases?per_page=2&page=2>; rel="next", <${s.apiUrl}/repos/o/r/releases?per_page=2&page=3>; rel="last"`);
      expect(links[1]).toMatch(/page=1>; rel="prev".*page=3>; rel="next".*page=3>; rel="last".*page=1>; rel="first"/);
      expect(links[2]).not.toContain('rel="next"');
      expect((await fetch(`${s.apiUrl}/repos/o/r/releases`)).headers.get('link')).toBeNull();
    } finally {
      await s.close();
    }
  });

  it('lists drafts only to authenticated callers, and 404s unknown things with JSON', async () => {
    const list = async (headers: Record<string, string>) =>
      ((await (await fetch(`${srv.apiUrl}/repos/containerd/containerd/releases`, { headers })).json()) as { tag_name: string; draft: boolean }[]).map((r) => r.tag_name);
    expect(await list({})).not.toContain('v2.4.0');
    expect(await list({})).toContain('api/v1.9.0');
    expect(await list({ authorization: 'Bearer t' })).toContain('v2.4.0');
    const miss = await fetch(`${srv.apiUrl}/repos/containerd/containerd/releases/tags/v2.4.0`);
    expect(miss.status).toBe(404);
    expect(await miss.json()).toMatchObject({ message: 'Not Found' });
    expect((await fetch(`${srv.apiUrl}/repos/nobody/nothing/releases`)).status).toBe(404);
  });

  it('reports digest null when assetDigests is false', async () => {
    const s = await startReleaseServer({ repos: { 'o/r': six }, assetDigests: false });
    try {
      const [rel] = (await (await fetch(`${s.apiUrl}/repos/o/r/releases?per_page=1`)).json()) as { assets: { digest: unknown }[] }[];
      expect(rel!.assets[0]!.digest).toBeNull();
    } finally {
      await s.close();
    }
  });
});

describe('faults', () => {
  const url = () => srv.url + CTR_PATH;

  it('status/body/headers rules are consumed `times` times, in order', async () => {
    srv.setFault({ match: CTR, times: 1, status: 502, body: 'bad gateway' });
    srv.setFault({ match: /tar\.gz$/, times: 1, headers: { 'x-extra': 'yes' } });
    const first = await raw(url());
    expect([first.status, first.body.toString()]).toEqual([502, 'bad gateway']);
    const second = await raw(url());
    expect([second.status, second.headers['x-extra']]).toEqual([200, 'yes']);
    expect((await raw(url())).headers['x-extra']).toBeUndefined();
  });

  it('rateLimitFault answers 403 with exhausted rate-limit headers', async () => {
    srv.setFault(rateLimitFault(1_900_000_000, 1));
    const r = await raw(`${srv.apiUrl}/repos/containerd/containerd/releases/latest`);
    expect(r.status).toBe(403);
    expect(r.headers['x-ratelimit-remaining']).toBe('0');
    expect(r.headers['x-ratelimit-reset']).toBe('1900000000');
    expect((await raw(`${srv.apiUrl}/repos/containerd/containerd/releases/latest`)).status).toBe(200);
  });

  it('delayMs holds back the headers', async () => {
    srv.setFault({ match: CTR, times: 1, delayMs: 200 });
    const t0 = Date.now();
    await raw(url());
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('truncateAt announces the full length but closes early', async () => {
    srv.setFault({ match: CTR, times: 1, truncateAt: 100 });
    const r = await raw(url());
    expect(r.headers['content-length']).toBe(String(ctrBytes().length));
    expect(r.body.length).toBe(100);
    expect(r.ending).not.toBe('end');
  });

  it('resetAt resets the connection after N bytes', async () => {
    srv.setFault({ match: CTR, times: 1, resetAt: 50 });
    const r = await raw(url());
    expect(r.body.length).toBeLessThanOrEqual(50);
    expect(r.ending).toMatch(/ECONNRESET|aborted/);
  });

  it('corrupt keeps the length but changes the bytes', async () => {
    srv.setFault({ match: CTR, times: 1, corrupt: true });
    const r = await raw(url());
    expect(r.body.length).toBe(ctrBytes().length);
    expect(sha(r.body)).not.toBe(sha(ctrBytes()));
  });

  it('stallAfter sends N bytes and then goes silent without closing', async () => {
    srv.setFault({ match: CTR, times: 1, stallAfter: 64 });
    const r = await raw(url(), { timeoutMs: 300 });
    expect([r.body.length, r.ending]).toEqual([64, 'timeout']);
  });
});

describe('CDN redirect', () => {
  it('302s downloads to another host, which serves the bytes and never sees Authorization', async () => {
    const s = await startReleaseServer({ repos: catalog, cdnRedirect: true });
    try {
      const hop = await fetch(s.url + CTR_PATH, { redirect: 'manual' });
      expect(hop.status).toBe(302);
      const loc = new URL(hop.headers.get('location')!);
      expect(loc.hostname).toBe('127.0.0.2');
      expect(loc.pathname).toBe(`/cdn/containerd/containerd/v2.3.4/${CTR}`);
      expect(loc.search).toContain('sig=');

      const res = await fetch(s.url + CTR_PATH, { headers: { authorization: 'Bearer secret' } });
      expect(res.status).toBe(200);
      expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(ctrBytes()));
      const cdnReqs = s.requests.filter((r) => r.server === 'cdn');
      expect(cdnReqs.at(-1)!.host).toMatch(/^127\.0\.0\.2:/);
      expect(cdnReqs.at(-1)!.headers.authorization).toBeUndefined();
      expect(s.requests.filter((r) => r.server === 'github').at(-1)!.headers.authorization).toBe('Bearer secret');

      // A tampered signature and a forwarded Authorization header are both refused.
      expect((await raw(loc.href.replace('sig=', 'sig=x'))).status).toBe(403);
      expect((await raw(loc.href, { headers: { authorization: 'Bearer secret' } })).status).toBe(400);

      s.setFault({ match: '/cdn/', times: 1, status: 500 });
      expect((await raw(loc.href)).status).toBe(500);
    } finally {
      await s.close();
    }
  });
});

describe('throttle, close, proxy', () => {
  it('bytesPerSecond limits the transfer rate', async () => {
    const s = await startReleaseServer({ repos: { 'o/r': [{ tag: 'v1.0.0', assets: { f: Buffer.alloc(40_000, 1) } }] }, bytesPerSecond: 100_000 });
    try {
      const t0 = Date.now();
      const r = await raw(`${s.url}/o/r/releases/download/v1.0.0/f`);
      expect(r.body.length).toBe(40_000);
      // 40 kB at 100 kB/s: never faster than 400 ms.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    } finally {
      await s.close();
    }
  });

  it('close() does not hang on a stalled download', async () => {
    const s = await startReleaseServer({ repos: catalog });
    s.setFault({ match: CTR, stallAfter: 10 });
    const pending = raw(s.url + CTR_PATH, { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect((await pending).ending).not.toBe('timeout');
  });

  it('proxy records absolute-URI requests and CONNECT tunnels', async () => {
    const proxy = await startProxy();
    try {
      const forward = new ProxyAgent({ uri: proxy.url });
      const viaForward = await request(srv.url + CTR_PATH, { dispatcher: forward });
      expect(sha(Buffer.from(await viaForward.body.arrayBuffer()))).toBe(sha(ctrBytes()));
      expect(proxy.requests).toContain(srv.url + CTR_PATH);

      const tunnel = new ProxyAgent({ uri: proxy.url, proxyTunnel: true });
      const viaTunnel = await request(`${srv.apiUrl}/repos/containerd/containerd/releases/latest`, { dispatcher: tunnel });
      expect(viaTunnel.statusCode).toBe(200);
      await viaTunnel.body.dump();
      expect(proxy.entries).toContainEqual({ method: 'CONNECT', target: new URL(srv.url).host });
      await Promise.all([forward.close(), tunnel.close()]);
    } finally {
      await proxy.close();
    }
  });
});
