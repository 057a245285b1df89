/**
 * Download, verify, then keep: stream an artifact to a temp file beside the cache while hashing it,
 * resume a broken transfer with a Range request, retry what is worth retrying, and move the file into
 * the cache only when its sha256 matches. Nothing is ever held whole in memory. One deadline covers
 * the whole download, retries and the second fetch after a mismatch included: a server that trickles
 * bytes just fast enough to beat the idle timeout is cut off there.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ChecksumMismatchError, DeadlineError, explainSystemError, HttpError, NetworkError, NoAssetError, NodePrepError } from '../errors.ts';
import { Deadline, header, isRetryableStatus, readBody, type Http } from '../net/http.ts';
import { redactUrl } from '../net/redact.ts';
import { bytesMoved } from '../util/buffer-churn.ts';
import type { FetchEvent } from '../events.ts';
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


export interface FetchResult {
  target: FetchTarget;
  path: string;
  bytes: number;
  source: 'cache' | 'network';
}

const PROGRESS_EVERY_MS = 100;

/**
 * GitHub's CDN serves each connection at its own rate (often ~20 MB/s), so one big asset on one
 * connection takes seconds the network as a whole does not need. When a transfer, 150 ms in, is slow
 * per connection (under 50 MB/s) and its rest would still take over 400 ms, the rest is split: this
 * connection keeps the first part and stops there, three more fetch the others with Range requests
 * into the same temp file. Fast connections (a mirror, a LAN, loopback) are never split.
 */
const SPLIT = { afterMs: 150, maxBytesPerSecond: 50e6, minRestMs: 400, minRestBytes: 4 * 1024 * 1024, parts: 4, maxExtraConnections: 8 };
/** Range connections open right now, across all downloads of this process. */
let extraConnections = 0;

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
  const deadlineMs = http.config.downloadDeadlineMs;
  const deadline = new Deadline(deadlineMs, () => new DeadlineError(redactUrl(target.url), deadlineMs, 'download'));
  const temp = await cache.tempPath(target.sha256);
  try {
    for (;;) {
      const state: TransferState = { offset: 0, hash: createHash('sha256'), total: undefined, parts: [], partBytes: 0, deadline };
      const fh = await open(temp, 'w+', 0o644);
      try {
        // One full body: keep resuming while transfers break and retries remain.
        for (;;) {
          try {
            await transfer(http, target, fh, state, emit);
            break;
          } catch (err) {
            deadline.check();
            if (!(err instanceof TransferError) || !err.retryable || retries >= delays.length) throw toPublicError(err, target);
            emit({ type: 'download:retry', artifact: target.name, attempt: retries + 1, reason: err.reason, resumeFrom: state.offset });
            await deadline.sleep(delays[retries]!);
            retries++;
          }
        }
        await fh.sync();
      } finally {
        await settleParts(state);
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
    deadline.clear();
    await rm(temp, { force: true });
  }
}

interface TransferState {
  /** Bytes [0, offset) are written and hashed. */
  offset: number;
  hash: Hash;
  total: number | undefined;
  /** After a split: this connection's share ends here; [stopAt, total) comes from `parts`. */
  stopAt?: number | undefined;
  parts: Promise<void>[];
  partBytes: number;
  abort?: AbortController | undefined;
  splitTried?: boolean;
  /** The whole download's deadline: its signal ends every request of it. */
  deadline: Deadline;
}

/** Stop and wait for the split parts still running (a failed or finished transfer). */
async function settleParts(state: TransferState): Promise<void> {
  if (state.parts.length === 0) return;
  state.abort?.abort();
  await Promise.allSettled(state.parts);
  state.parts = [];
}

/** One split part: bytes [from, to) by a Range request, written at their offset. */
async function fetchPart(http: Http, target: FetchTarget, fh: FileHandle, from: number, to: number, state: TransferState, signal: AbortSignal): Promise<void> {
  const res = await http.open(target.url, { headers: { range: `bytes=${from}-${to - 1}` }, signal });
  if (res.status !== 206 || rangeStart(header(res.headers, 'content-range')) !== from) {
    await res.body.dump().catch(() => undefined);
    throw new Error(`the range ${from}-${to - 1} was answered with ${res.status}`);
  }
  let at = from;
  for await (const chunk of res.body) {
    const buf = chunk as Buffer;
    const n = Math.min(buf.length, to - at);
    await fh.write(buf, 0, n, at);
    at += n;
    state.partBytes += n;
    bytesMoved(n);
    if (at >= to) break;
  }
  if (at < to) throw new Error(`the range ${from}-${to - 1} was cut short at ${at}`);
}

/** Hash [from, to) of the temp file in order, through one reused buffer. */
async function hashFromFile(fh: FileHandle, hash: Hash, from: number, to: number): Promise<void> {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  for (let at = from; at < to; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - at), at);
    if (bytesRead === 0) throw new TransferError(`the temp file ended at ${at} of ${to} bytes`, true);
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
}

/** One request: from state.offset (Range) to the end, appending to fh and the running hash. */
async function transfer(http: Http, target: FetchTarget, fh: FileHandle, state: TransferState, emit: (e: FetchEvent) => void): Promise<void> {
  const end = state.stopAt !== undefined ? String(state.stopAt - 1) : '';
  const headers: Record<string, string> = state.offset > 0 ? { range: `bytes=${state.offset}-${end}` } : {};
  let res;
  try {
    res = target.url.startsWith('file:') ? await openLocal(target, state.offset) : await http.open(target.url, { headers, signal: state.deadline.signal });
  } catch (err) {
    if (err instanceof NetworkError) throw new TransferError(String(err.fields.reason ?? err.message), true, err);
    throw err;
  }
  if (res.status === 206 && state.offset > 0 && rangeStart(header(res.headers, 'content-range')) === state.offset) {
    // resuming: keep the bytes and the hash we have
  } else if (res.status === 200) {
    if (state.offset > 0) {
      // The server ignored the Range: start over, on this connection alone.
      await settleParts(state);
      state.stopAt = undefined;
      state.offset = 0;
      state.hash = createHash('sha256');
      await fh.truncate(0);
    }
  } else {
    const text = await readBody(res.body, 16 * 1024).then((b) => b.text, () => '');
    if (res.status === 404) throw new NoAssetError(target.component, target.version, target.arch, redactUrl(target.url));
    const err = http.statusError(target.url, res, text);
    throw new TransferError(err.message, isRetryableStatus(res.status) && !(err instanceof NodePrepError && err.code === 'RATE_LIMIT'), err);
  }
  const length = Number(header(res.headers, 'content-length'));
  const whole = res.status === 206 ? Number(/\/(\d+)$/.exec(header(res.headers, 'content-range') ?? '')?.[1]) : NaN;
  if (Number.isFinite(whole)) state.total = whole;
  else if (Number.isFinite(length) && state.stopAt === undefined) state.total = state.offset + length;
  const splittable = !target.url.startsWith('file:') && header(res.headers, 'accept-ranges') === 'bytes';
  const started = Date.now();
  const startOffset = state.offset;
  let lastEmit = 0;
  try {
    for await (const chunk of res.body) {
      let buf = chunk as Buffer;
      if (state.stopAt !== undefined && state.offset + buf.length > state.stopAt) buf = buf.subarray(0, state.stopAt - state.offset);
      state.hash.update(buf);
      // fh.write from the current end: the file is written strictly in order, so offset is exact.
      await writeLocal(fh, buf, state.offset, target);
      state.offset += buf.length;
      bytesMoved(buf.length);
      if (state.stopAt !== undefined && state.offset >= state.stopAt) break; // the rest is the parts': close this body
      const now = Date.now();
      if (splittable && !state.splitTried && state.total !== undefined && now - started >= SPLIT.afterMs) maybeSplit(http, target, fh, state, (state.offset - startOffset) / (now - started));
      if (now - lastEmit >= PROGRESS_EVERY_MS) {
        lastEmit = now;
        emit({ type: 'download:progress', artifact: target.name, bytes: state.offset + state.partBytes, total: state.total });
      }
    }
  } catch (err) {
    if (err instanceof LocalWriteError) throw err;
    state.deadline.check();
    throw new TransferError(`transfer broke after ${state.offset} bytes (${describe(err)})`, true, err);
  }
  const mine = state.stopAt ?? state.total;
  if (mine !== undefined && state.offset < mine) {
    throw new TransferError(`body cut short at ${state.offset} of ${mine} bytes`, true);
  }
  if (state.stopAt !== undefined) {
    const settled = await Promise.allSettled(state.parts);
    state.parts = [];
    const broken = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (broken) {
      // Go on from where this connection stopped, on one connection, like any resume.
      state.stopAt = undefined;
      throw new TransferError(`a parallel range broke (${describe(broken.reason)})`, true, broken.reason);
    }
    await hashFromFile(fh, state.hash, state.stopAt, state.total!);
    state.offset = state.total!;
    state.stopAt = undefined;
  }
  emit({ type: 'download:progress', artifact: target.name, bytes: state.offset, total: state.total ?? state.offset });
}

/** Split the rest of a slow transfer into parallel Range requests (see SPLIT). */
function maybeSplit(http: Http, target: FetchTarget, fh: FileHandle, state: TransferState, bytesPerMs: number): void {
  const rest = state.total! - state.offset;
  if (rest < SPLIT.minRestBytes || bytesPerMs * 1000 >= SPLIT.maxBytesPerSecond || rest / bytesPerMs < SPLIT.minRestMs) return;
  const extra = Math.min(SPLIT.parts - 1, SPLIT.maxExtraConnections - extraConnections);
  if (extra < 1) return; // tried again at the next chunk, when another download's parts may be done
  state.splitTried = true;
  const part = Math.ceil(rest / (extra + 1));
  state.stopAt = state.offset + part;
  state.abort = new AbortController();
  for (let from = state.stopAt; from < state.total!; from += part) {
    extraConnections++;
    const signal = AbortSignal.any([state.abort.signal, state.deadline.signal]);
    const p = fetchPart(http, target, fh, from, Math.min(state.total!, from + part), state, signal).finally(() => extraConnections--);
    p.catch(() => undefined); // collected when this connection reaches stopAt
    state.parts.push(p);
  }
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

/**
 * A failure to write the download is this machine's, not the network's: a full disk, a quota or a
 * read-only file system is said as such and not retried (a retry would only fill the disk again).
 */
class LocalWriteError extends Error {
  constructor(readonly error: unknown) {
    super('local write failed');
  }
}

async function writeLocal(fh: FileHandle, buf: Buffer, offset: number, target: FetchTarget): Promise<void> {
  try {
    await fh.write(buf, 0, buf.length, offset);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    e.path ??= `the download of ${target.name}`;
    throw new LocalWriteError(explainSystemError(e));
  }
}

function toPublicError(err: unknown, target: FetchTarget): Error {
  if (err instanceof LocalWriteError) return err.error as Error;
  if (err instanceof TransferError) {
    const inner = err.cause0;
    if (inner instanceof HttpError || inner instanceof NodePrepError) return inner;
    return new NetworkError(redactUrl(target.url), err.reason);
  }
  return err as Error;
}
