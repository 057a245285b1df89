/**
 * Download, verify, then keep: stream an artifact to a temp file beside the cache while hashing it,
 * resume a broken transfer with a Range request, retry what is worth retrying, and move the file into
 * the cache only when its sha256 matches. Nothing is ever held whole in memory.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ChecksumMismatchError, HttpError, NetworkError, NoAssetError, NodePrepError } from '../errors.ts';
import { header, isRetryableStatus, sleep, type Http } from '../net/http.ts';
import { redactUrl } from '../net/redact.ts';
import type { ArtifactCache } from './cache.ts';

export interface FetchTarget {
  component: string;
  version: string;
  arch: string;
  /** The asset file name. */
  name: string;
  url: string;
  sha256: string;
  /** Where the expected digest came from, for the mismatch message. */
  expectedFrom: string;
}

export type FetchEvent =
  | { type: 'download:start'; artifact: string; url: string }
  | { type: 'download:progress'; artifact: string; bytes: number; total: number | undefined }
  | { type: 'download:retry'; artifact: string; attempt: number; reason: string; resumeFrom: number }
  | { type: 'download:done'; artifact: string; bytes: number; source: 'cache' | 'network'; path: string };

export interface FetchResult {
  target: FetchTarget;
  path: string;
  bytes: number;
  source: 'cache' | 'network';
}

const PROGRESS_EVERY_MS = 100;

/** Errors that end the download at once: the server said no, or the bytes are wrong. */
class TransferError extends Error {
  constructor(
    readonly reason: string,
    readonly retryable: boolean,
    readonly cause0?: unknown,
  ) {
    super(reason);
  }
}

export async function fetchVerified(
  http: Http,
  cache: ArtifactCache,
  target: FetchTarget,
  emit: (e: FetchEvent) => void = () => {},
): Promise<FetchResult> {
  const cached = await cache.lookup(target.sha256);
  if (cached) {
    emit({ type: 'download:done', artifact: target.name, bytes: 0, source: 'cache', path: cached });
    return { target, path: cached, bytes: 0, source: 'cache' };
  }
  emit({ type: 'download:start', artifact: target.name, url: redactUrl(target.url) });
  const delays = http.config.retryDelaysMs;
  let mismatches = 0;
  let retries = 0;
  const temp = await cache.tempPath(target.sha256);
  try {
    for (;;) {
      const state = { offset: 0, hash: createHash('sha256'), total: undefined as number | undefined };
      const fh = await open(temp, 'w', 0o644);
      try {
        // One full body: keep resuming while transfers break and retries remain.
        for (;;) {
          try {
            await transfer(http, target, fh, state, emit);
            break;
          } catch (err) {
            if (!(err instanceof TransferError) || !err.retryable || retries >= delays.length) throw toPublicError(err, target);
            emit({ type: 'download:retry', artifact: target.name, attempt: retries + 1, reason: err.reason, resumeFrom: state.offset });
            await sleep(delays[retries]!);
            retries++;
          }
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const actual = state.hash.digest('hex');
      if (actual === target.sha256) {
        const path = await cache.commit(temp, target.sha256);
        emit({ type: 'download:done', artifact: target.name, bytes: state.offset, source: 'network', path });
        return { target, path, bytes: state.offset, source: 'network' };
      }
      // A whole body with the wrong digest may be a proxy or CDN hiccup: fetch it once more, then fail.
      if (++mismatches > 1) {
        throw new ChecksumMismatchError({
          artifact: target.name,
          url: redactUrl(target.url),
          expected: target.sha256,
          actual,
          expectedFrom: target.expectedFrom,
        });
      }
      emit({ type: 'download:retry', artifact: target.name, attempt: retries + 1, reason: 'sha256 mismatch, fetching once more', resumeFrom: 0 });
    }
  } finally {
    await rm(temp, { force: true });
  }
}

interface TransferState {
  offset: number;
  hash: Hash;
  total: number | undefined;
}

/** One request: from state.offset (Range) to the end, appending to fh and the running hash. */
async function transfer(http: Http, target: FetchTarget, fh: FileHandle, state: TransferState, emit: (e: FetchEvent) => void): Promise<void> {
  const headers: Record<string, string> = state.offset > 0 ? { range: `bytes=${state.offset}-` } : {};
  let res;
  try {
    res = target.url.startsWith('file:') ? await openLocal(target, state.offset) : await http.open(target.url, { headers });
  } catch (err) {
    if (err instanceof NetworkError) throw new TransferError(String(err.fields.reason ?? err.message), true, err);
    throw err;
  }
  if (res.status === 206 && state.offset > 0 && rangeStart(header(res.headers, 'content-range')) === state.offset) {
    // resuming: keep the bytes and the hash we have
  } else if (res.status === 200) {
    if (state.offset > 0) {
      // The server ignored the Range: start over.
      state.offset = 0;
      state.hash = createHash('sha256');
      await fh.truncate(0);
    }
  } else {
    const text = await res.body.text().catch(() => '');
    if (res.status === 404) throw new NoAssetError(target.component, target.version, target.arch, redactUrl(target.url));
    const err = http.statusError(target.url, res, text);
    throw new TransferError(err.message, isRetryableStatus(res.status) && !(err instanceof NodePrepError && err.code === 'RATE_LIMIT'), err);
  }
  const length = Number(header(res.headers, 'content-length'));
  if (Number.isFinite(length)) state.total = state.offset + length;
  let lastEmit = 0;
  try {
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      state.hash.update(buf);
      // fh.write from the current end: the file is written strictly in order, so offset is exact.
      await fh.write(buf, 0, buf.length, state.offset);
      state.offset += buf.length;
      const now = Date.now();
      if (now - lastEmit >= PROGRESS_EVERY_MS) {
        lastEmit = now;
        emit({ type: 'download:progress', artifact: target.name, bytes: state.offset, total: state.total });
      }
    }
  } catch (err) {
    throw new TransferError(`transfer broke after ${state.offset} bytes (${describe(err)})`, true, err);
  }
  if (state.total !== undefined && state.offset < state.total) {
    throw new TransferError(`body cut short at ${state.offset} of ${state.total} bytes`, true);
  }
  emit({ type: 'download:progress', artifact: target.name, bytes: state.offset, total: state.total ?? state.offset });
}

/** A bundle's file, answered the way a server would: 200 from the start, 206 from an offset. */
async function openLocal(target: FetchTarget, offset: number) {
  const file = fileURLToPath(target.url);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw new NoAssetError(target.component, target.version, target.arch, file);
  }
  const body = createReadStream(file, { start: offset, highWaterMark: 1 << 20 });
  return {
    status: offset > 0 ? 206 : 200,
    headers: { 'content-length': String(size - offset), 'content-range': offset > 0 ? `bytes ${offset}-${size - 1}/${size}` : undefined },
    body: Object.assign(body, { text: async () => '' }),
  };
}

function rangeStart(contentRange: string | undefined): number | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange ?? '');
  return m ? Number(m[1]) : undefined;
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e?.code ?? e?.message ?? String(err);
}

function toPublicError(err: unknown, target: FetchTarget): Error {
  if (err instanceof TransferError) {
    const inner = err.cause0;
    if (inner instanceof HttpError || inner instanceof NodePrepError) return inner;
    return new NetworkError(redactUrl(target.url), err.reason);
  }
  return err as Error;
}
