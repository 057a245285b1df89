// A loopback stand-in for github.com + api.github.com + GitHub's asset CDN.
// It reproduces the behaviours RELEASES.md §6 documents (latest redirect, list
// pagination with Link headers, draft visibility, asset digests, rate-limit
// headers, cross-host signed download redirects) and lets tests inject faults.
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { assetDigest, downloadUrl, enc, linkHeader, pickLatest, releaseJson, sortNewestFirst } from './github-model.ts';
import type { DatedRelease, FakeAsset, FakeRelease, ReposMap } from './github-model.ts';
import { bufferSource, fileSource, pipeBody } from './http-body.ts';
import type { BodySource } from './http-body.ts';

export type { FakeAsset, FakeRelease, ReposMap } from './github-model.ts';

export interface FaultRule {
  /** Substring of, or RegExp tested against, the request path including its query. */
  match: string | RegExp;
  times?: number;
  /** When set (or `body` is), the normal answer is replaced by this one. */
  status?: number;
  /** Extra headers; merged into the normal answer when no status/body is given. */
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
  truncateAt?: number;
  resetAt?: number;
  corrupt?: boolean;
  stallAfter?: number;
  /** The body over and over, without a Content-Length, until the client hangs up. */
  endless?: boolean;
  /** One byte every `trickleMs` ms: beats any idle timeout longer than that, and takes for ever. */
  trickleMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path with query, as sent on the wire. */
  path: string;
  /** Host header, e.g. `127.0.0.2:41234` for the CDN. */
  host: string;
  server: 'github' | 'cdn';
  headers: { authorization?: string; range?: string; 'user-agent'?: string; accept?: string };
}

export interface ReleaseServerOptions {
  repos?: ReposMap;
  /** repo → tag that `/releases/latest` points at (mimics `make_latest`). */
  latest?: Record<string, string>;
  /** Downloads answer 302 to a second host, like GitHub's signed CDN URLs. */
  cdnRedirect?: boolean;
  /** `false`: every asset's `digest` is null (assets uploaded before June 2025). */
  assetDigests?: boolean;
  /** Per-connection body throttle. */
  bytesPerSecond?: number;
  /** Cap on per_page (GitHub's is 100), so tests can make pagination happen with a few releases. */
  maxPerPage?: number;
  /**
   * The addresses clients reach the two servers at, where that is not where they listen (a VM's
   * forwards): what redirects and the API's URLs name. The server itself listens on loopback.
   */
  advertise?: { url: string; cdnUrl: string };
}

export interface ReleaseServer {
  url: string;
  apiUrl: string;
  cdnUrl: string;
  requests: RecordedRequest[];
  /** The live model; tests may mutate it. */
  repos: ReposMap;
  setFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Adds a release, replacing one with the same tag. */
  addRelease(repo: string, release: FakeRelease): void;
  setLatest(repo: string, tag: string | undefined): void;
  close(): Promise<void>;
}

/** A rule answering API calls with GitHub's primary-rate-limit 403. */
export function rateLimitFault(resetEpochSeconds: number, times?: number): FaultRule {
  return {
    match: /^\/api\//,
    ...(times !== undefined ? { times } : {}),
    status: 403,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'x-ratelimit-limit': '60',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-used': '60',
      'x-ratelimit-reset': String(resetEpochSeconds),
      'x-ratelimit-resource': 'core',
    },
    body: JSON.stringify({
      message: 'API rate limit exceeded for 127.0.0.1. (But here\'s the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)',
      documentation_url: 'https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting',
    }),
  };
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body?: BodySource;
  /** Byte range of `body` to send; defaults to all of it. */
  range?: [number, number];
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function sourceOf(asset: FakeAsset): BodySource {
  return Buffer.isBuffer(asset) ? bufferSource(asset) : fileSource(asset.path);
}

export async function startReleaseServer(opts: ReleaseServerOptions = {}): Promise<ReleaseServer> {
  const repos: ReposMap = {};
  for (const [repo, list] of Object.entries(opts.repos ?? {})) repos[repo] = [...list];
  const latestOverride: Record<string, string> = { ...opts.latest };
  const requests: RecordedRequest[] = [];
  const faults: { rule: FaultRule; left: number }[] = [];
  const secret = randomBytes(16);
  const ids = new WeakMap<FakeRelease, number>();
  let nextId = 100_000;
  let apiUsed = 0;
  const rateReset = Math.floor(Date.now() / 1000) + 3600;

  const github = http.createServer();
  const cdn = http.createServer();
  const port = await listen(github, '127.0.0.1');
  // 127.0.0.2 makes the CDN a different host, so clients must drop Authorization
  // on the redirect. Where that address is not routable (macOS), `localhost`
  // is still a different origin.
  let cdnHost = '127.0.0.2';
  let cdnPort: number;
  try {
    cdnPort = await listen(cdn, cdnHost);
  } catch {
    cdnHost = 'localhost';
    cdnPort = await listen(cdn, '127.0.0.1');
  }
  const listenUrl = `http://127.0.0.1:${port}`;
  const listenCdnUrl = `http://${cdnHost}:${cdnPort}`;
  const url = opts.advertise?.url ?? listenUrl;
  const apiUrl = `${url}/api`;
  const cdnUrl = opts.advertise?.cdnUrl ?? listenCdnUrl;

  const findRepo = (owner: string, name: string): [string, FakeRelease[]] | undefined => {
    // GitHub treats owner/name case-insensitively.
    const want = `${owner}/${name}`.toLowerCase();
    const key = Object.keys(repos).find((k) => k.toLowerCase() === want);
    return key ? [key, repos[key]!] : undefined;
  };
  const idOf = (r: FakeRelease) => {
    let id = ids.get(r);
    if (id === undefined) ids.set(r, (id = nextId++));
    return id;
  };

  const toJson = (repo: string, d: DatedRelease) =>
    releaseJson({ url, apiUrl, id: idOf(d.rel), digest: async (a) => (opts.assetDigests === false ? null : assetDigest(a)) }, repo, d);

  const text = (status: number, body: string, type = 'text/plain; charset=utf-8'): Reply => ({
    status,
    headers: { 'content-type': type },
    body: bufferSource(Buffer.from(body)),
  });
  const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => {
    const r = text(status, JSON.stringify(value), 'application/json; charset=utf-8');
    Object.assign(r.headers, headers);
    return r;
  };
  const redirect = (location: string): Reply => ({ status: 302, headers: { location }, body: bufferSource(Buffer.alloc(0)) });

  /** Serves asset bytes honouring `Range: bytes=N-` / `bytes=N-M`. */
  const assetReply = (req: IncomingMessage, asset: FakeAsset): Reply => {
    const body = sourceOf(asset);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!req.headers.range || !m) return { status: 200, headers, body };
    const first = Number(m[1]);
    const last = m[2] ? Math.min(Number(m[2]), body.size - 1) : body.size - 1;
    if (first >= body.size || last < first) {
      return { status: 416, headers: { 'content-range': `bytes */${body.size}` }, body: bufferSource(Buffer.alloc(0)) };
    }
    headers['content-range'] = `bytes ${first}-${last}/${body.size}`;
    return { status: 206, headers, body, range: [first, last + 1] };
  };

  const apiRoute = async (req: IncomingMessage, u: URL, s: string[]): Promise<Reply> => {
    const authed = !!req.headers.authorization;
    const limit = authed ? 5000 : 60;
    apiUsed++;
    // Never reports 0 on its own, so clients that pre-emptively wait on an
    // exhausted budget don't stall the suite; use rateLimitFault() for that.
    const rate = {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(1, limit - apiUsed)),
      'x-ratelimit-used': String(Math.min(apiUsed, limit - 1)),
      'x-ratelimit-reset': String(rateReset),
      'x-ratelimit-resource': 'core',
    };
    const notFound = json(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' }, rate);
    if (s[1] === 'rate_limit' && s.length === 2) {
      const core = { limit, remaining: Math.max(1, limit - apiUsed), reset: rateReset, used: apiUsed };
      return json(200, { resources: { core }, rate: core }, rate);
    }
    if (s[1] !== 'repos' || s[4] !== 'releases' || s.length < 5) return notFound;
    const found = findRepo(s[2]!, s[3]!);
    if (!found) return notFound;
    const [repo, list] = found;
    const all = sortNewestFirst(list);
    if (s.length === 5) {
      const visible = all.filter((d) => authed || !d.rel.draft);
      const perRaw = Number(u.searchParams.get('per_page') ?? 30);
      const per = Number.isInteger(perRaw) && perRaw >= 1 ? Math.min(perRaw, opts.maxPerPage ?? 100) : Math.min(30, opts.maxPerPage ?? 100);
      const pageRaw = Number(u.searchParams.get('page') ?? 1);
      const page = Number.isInteger(pageRaw) && pageRaw >= 1 ? pageRaw : 1;
      const lastPage = Math.max(1, Math.ceil(visible.length / per));
      const pageItems = visible.slice((page - 1) * per, page * per);
      const body = await Promise.all(pageItems.map((d) => toJson(repo, d)));
      const headers: Record<string, string> = { ...rate };
      const link = linkHeader(`${apiUrl}/repos/${repo}/releases`, per, page, lastPage);
      if (link) headers.link = link;
      return json(200, body, headers);
    }
    let hit: DatedRelease | undefined;
    if (s[5] === 'latest' && s.length === 6) {
      const rel = pickLatest(list, latestOverride[repo]);
      hit = all.find((d) => d.rel === rel);
    } else if (s[5] === 'tags' && s.length >= 7) {
      // Drafts have no tag yet on GitHub, so they are never found by tag.
      const tag = s.slice(6).join('/');
      hit = all.find((d) => d.rel.tag === tag && !d.rel.draft);
    } else if (/^\d+$/.test(s[5]!) && s.length === 6) {
      hit = all.find((d) => idOf(d.rel) === Number(s[5]) && (authed || !d.rel.draft));
    }
    return hit ? json(200, await toJson(repo, hit), rate) : notFound;
  };

  const cdnPath = (repo: string, tag: string, asset: string) => `/cdn/${repo}/${encodeURIComponent(tag)}/${encodeURIComponent(asset)}`;
  // Azure-SAS-like query. The percent-escapes are deliberate: a client that
  // decodes or re-encodes the Location instead of following it verbatim gets 403.
  const cdnQuery = (path: string) => {
    const sig = createHmac('sha256', secret).update(path).digest('base64');
    const name = decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
    return `sp=r&sv=2018-11-09&sr=b&spr=https&se=2099-01-01T00%3A00%3A00Z&rscd=attachment%3B%20filename%3D${encodeURIComponent(name)}&rsct=application%2Foctet-stream&sig=${encodeURIComponent(sig)}`;
  };

  const githubRoute = async (req: IncomingMessage, u: URL, s: string[]): Promise<Reply> => {
    if (s[0] === 'api') return apiRoute(req, u, s);
    const notFound = text(404, 'Not Found');
    if (s[2] !== 'releases' || s.length < 3) return notFound;
    const found = findRepo(s[0]!, s[1]!);
    if (!found) return notFound;
    const [repo, list] = found;
    const html = (title: string) => text(200, `<!DOCTYPE html><html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>\n`, 'text/html; charset=utf-8');
    if (s.length === 3) return html(`Releases · ${repo}`);
    if (s[3] === 'latest') {
      const rel = pickLatest(list, latestOverride[repo]);
      // Like GitHub: with no release to point at, /releases/latest lands on /releases.
      if (s.length === 4) return redirect(rel ? `${url}/${repo}/releases/tag/${enc(rel.tag)}` : `${url}/${repo}/releases`);
      if (s[4] === 'download' && s.length === 6 && rel) return redirect(downloadUrl(url, repo, rel.tag, s[5]!));
      return notFound;
    }
    if (s[3] === 'tag' && s.length >= 5) {
      const tag = s.slice(4).join('/');
      const rel = list.find((r) => r.tag === tag && !r.draft);
      return rel ? html(`Release ${rel.name ?? rel.tag} · ${repo}`) : notFound;
    }
    if (s[3] === 'download' && s.length >= 6) {
      const tag = s.slice(4, -1).join('/');
      const name = s[s.length - 1]!;
      const rel = list.find((r) => r.tag === tag && !r.draft);
      const asset = rel?.assets[name];
      if (!asset) return notFound;
      if (!opts.cdnRedirect) return assetReply(req, asset);
      const path = cdnPath(repo, tag, name);
      return redirect(`${cdnUrl}${path}?${cdnQuery(path)}`);
    }
    return notFound;
  };

  const cdnRoute = (req: IncomingMessage, _u: URL, s: string[]): Reply => {
    // /cdn/{owner}/{repo}/{tag}/{asset}, tag and asset percent-encoded as one segment each.
    if (s[0] !== 'cdn' || s.length !== 5) return text(404, 'The specified blob does not exist.');
    // A presigned URL plus an Authorization header is rejected by real blob stores too.
    if (req.headers.authorization) return text(400, 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified');
    const rawPath = (req.url ?? '').split('?')[0]!;
    if ((req.url ?? '').slice(rawPath.length + 1) !== cdnQuery(rawPath)) return text(403, 'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.');
    const rel = repos[`${s[1]}/${s[2]}`]?.find((r) => r.tag === s[3]);
    const asset = rel?.assets[s[4]!];
    return asset ? assetReply(req, asset) : text(404, 'The specified blob does not exist.');
  };

  const takeFault = (path: string): FaultRule | undefined => {
    const i = faults.findIndex(({ rule: { match } }) => (typeof match === 'string' ? path.includes(match) : path.search(match) !== -1));
    if (i < 0) return undefined;
    const f = faults[i]!;
    if (--f.left <= 0) faults.splice(i, 1);
    return f.rule;
  };

  const handle = async (kind: 'github' | 'cdn', req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const h = req.headers;
    requests.push({
      method: req.method ?? 'GET',
      path,
      host: h.host ?? '',
      server: kind,
      headers: {
        ...(h.authorization !== undefined ? { authorization: h.authorization } : {}),
        ...(h.range !== undefined ? { range: h.range } : {}),
        ...(h['user-agent'] !== undefined ? { 'user-agent': h['user-agent'] } : {}),
        ...(h.accept !== undefined ? { accept: h.accept } : {}),
      },
    });
    const fault = takeFault(path);
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (res.destroyed) return;

    let reply: Reply;
    if (fault && (fault.status !== undefined || fault.body !== undefined)) {
      const body = fault.body ?? JSON.stringify({ message: http.STATUS_CODES[fault.status ?? 200] ?? 'Error' });
      reply = { status: fault.status ?? 200, headers: { 'content-type': body.startsWith('{') ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8' }, body: bufferSource(Buffer.from(body)) };
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply = text(405, 'Method Not Allowed');
    } else {
      const u = new URL(path, 'http://placeholder');
      let segs: string[];
      try {
        segs = u.pathname.split('/').slice(1).filter((x, i, a) => x !== '' || i < a.length - 1).map(decodeURIComponent);
      } catch {
        segs = [];
      }
      reply = kind === 'cdn' ? cdnRoute(req, u, segs) : await githubRoute(req, u, segs);
    }
    Object.assign(reply.headers, fault?.headers);
    const body = reply.body ?? bufferSource(Buffer.alloc(0));
    const [start, end] = reply.range ?? [0, body.size];
    res.writeHead(reply.status, fault?.endless ? reply.headers : { ...reply.headers, 'content-length': String(end - start) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // Node would hold the head back until the first body write; a stalled or
    // throttled body must still show its status and headers promptly.
    res.flushHeaders();
    await pipeBody(res, body, start, end, fault, opts.bytesPerSecond);
  };

  const sockets = new Set<Socket>();
  for (const [kind, server] of [['github', github], ['cdn', cdn]] as const) {
    server.on('connection', (sock: Socket) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    server.on('request', (req, res) => {
      handle(kind, req, res).catch((err: unknown) => {
        // A bug in a test helper should surface loudly, not as a hung request.
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`release-server error: ${String(err)}`);
      });
    });
  }

  return {
    url: listenUrl,
    apiUrl: `${listenUrl}/api`,
    cdnUrl: listenCdnUrl,
    requests,
    repos,
    setFault(rule) {
      faults.push({ rule, left: rule.times ?? Infinity });
    },
    clearFaults() {
      faults.length = 0;
    },
    addRelease(repo, release) {
      const list = (repos[repo] ??= []);
      const i = list.findIndex((r) => r.tag === release.tag);
      if (i >= 0) list[i] = release;
      else list.push(release);
    },
    setLatest(repo, tag) {
      if (tag === undefined) delete latestOverride[repo];
      else latestOverride[repo] = tag;
    },
    async close() {
      const closed = [github, cdn].map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      // Stalled and keep-alive sockets would otherwise keep close() waiting forever.
      for (const server of [github, cdn]) server.closeAllConnections();
      for (const sock of sockets) sock.destroy();
      await Promise.all(closed);
    },
  };
}
