// Streaming of response bodies for the fake release server, with the fault
// injections (truncate / reset / stall / corrupt / endless / trickle) and per-connection throttling
// applied on the way out. Kept apart from the routing so each file stays small.
import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** A body that can be streamed in pieces without being loaded whole (file assets can be GBs). */
export interface BodySource {
  size: number;
  /** Yields bytes [start, end) of the body. */
  chunks(start: number, end: number): AsyncIterable<Buffer>;
}

const CHUNK = 64 * 1024;

export function bufferSource(buf: Buffer): BodySource {
  return {
    size: buf.length,
    async *chunks(start, end) {
      for (let at = start; at < end; at += CHUNK) yield buf.subarray(at, Math.min(end, at + CHUNK));
    },
  };
}

export function fileSource(path: string): BodySource {
  return {
    size: fs.statSync(path).size,
    async *chunks(start, end) {
      if (end <= start) return;
      // `end` of createReadStream is inclusive.
      yield* fs.createReadStream(path, { start, end: end - 1, highWaterMark: CHUNK }) as AsyncIterable<Buffer>;
    },
  };
}

/** The subset of a fault rule that changes how the body bytes go out. */
export interface BodyFault {
  truncateAt?: number;
  resetAt?: number;
  stallAfter?: number;
  corrupt?: boolean;
  /** The body again and again, sent without a Content-Length, until the client hangs up. */
  endless?: boolean;
  /** One byte every `trickleMs`: never silent for long, never done soon. */
  trickleMs?: number;
}

/** Resolves on 'drain' or when the response dies, so an aborted client cannot wedge us. */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function writeAndFlush(res: ServerResponse, chunk: Buffer): Promise<boolean> {
  // Resolves once the chunk has been handed to the kernel (or failed), which
  // matters before we deliberately kill the socket: otherwise the client may
  // see fewer than the promised N bytes.
  return new Promise((resolve) => {
    const ok = res.write(chunk, () => resolve(ok));
    if (res.destroyed) resolve(false);
  });
}

/**
 * Writes `src[start, end)` to `res` (head already written). Honours backpressure,
 * throttles to `bytesPerSecond`, and applies `fault`.
 */
export async function pipeBody(
  res: ServerResponse,
  src: BodySource,
  start: number,
  end: number,
  fault: BodyFault | undefined,
  bytesPerSecond: number | undefined,
): Promise<void> {
  if (fault?.endless || fault?.trickleMs !== undefined) return pipeSlowOrEndless(res, src, start, end, fault);
  const cutoffs = [fault?.truncateAt, fault?.resetAt, fault?.stallAfter].filter((n): n is number => n !== undefined);
  const cutoff = cutoffs.length ? Math.min(...cutoffs) : Infinity;
  // Throttled bodies go out in small slices so pacing is smooth even for tiny bodies.
  const slice = bytesPerSecond ? Math.max(512, Math.min(CHUNK, Math.floor(bytesPerSecond / 20))) : Infinity;
  const t0 = Date.now();
  let sent = 0;
  let cut = false;

  outer: for await (const piece of src.chunks(start, end)) {
    for (let off = 0; off < piece.length; off += slice === Infinity ? piece.length : slice) {
      if (res.destroyed) break outer;
      let chunk = piece.subarray(off, slice === Infinity ? piece.length : off + slice);
      if (sent + chunk.length >= cutoff) {
        chunk = chunk.subarray(0, cutoff - sent);
        cut = true;
      }
      if (fault?.corrupt && chunk.length) {
        // Copy first: the source Buffer is shared with the release model.
        chunk = Buffer.from(chunk);
        // Flip the first byte of the response and every 512th after it: same
        // length, always detectable by a checksum, deterministic.
        for (let i = (512 - (sent % 512)) % 512; i < chunk.length; i += 512) chunk[i] = chunk[i]! ^ 0xff;
      }
      if (bytesPerSecond) {
        // Wait before writing, so that even the last slice cannot arrive early:
        // N bytes never take less than N / bytesPerSecond seconds.
        const wait = t0 + ((sent + chunk.length) * 1000) / bytesPerSecond - Date.now();
        if (wait > 0) await sleep(wait);
        if (res.destroyed) break outer;
      }
      if (chunk.length) {
        if (cut && (fault?.truncateAt === cutoff || fault?.resetAt === cutoff)) await writeAndFlush(res, chunk);
        else if (!res.write(chunk)) await drainOrClose(res);
        sent += chunk.length;
      }
      if (cut) break outer;
    }
  }

  if (res.destroyed) return;
  if (cut) {
    const socket = res.socket;
    if (fault?.resetAt === cutoff) {
      // RST: the client sees ECONNRESET rather than a clean EOF. Linux drops
      // unread received data on RST, so give the client a moment to read the
      // N bytes first; under load it may still see the reset before them.
      await sleep(20);
      if (socket && !socket.destroyed) socket.resetAndDestroy();
    } else if (fault?.truncateAt === cutoff) {
      // FIN after fewer bytes than Content-Length announced: "premature close".
      socket?.end();
      socket?.destroySoon();
    }
    // stallAfter: do nothing at all; the socket stays open until the client
    // gives up or the server is closed.
    return;
  }
  res.end();
}

/** The `endless` and `trickle` faults: bytes until the client gives up (or, trickled, the body's end). */
async function pipeSlowOrEndless(res: ServerResponse, src: BodySource, start: number, end: number, fault: BodyFault): Promise<void> {
  do {
    for await (const piece of src.chunks(start, end)) {
      if (fault.trickleMs === undefined) {
        if (res.destroyed) return;
        if (!res.write(piece)) await drainOrClose(res);
        continue;
      }
      for (let i = 0; i < piece.length; i++) {
        if (res.destroyed) return;
        res.write(piece.subarray(i, i + 1));
        await sleep(fault.trickleMs);
      }
    }
  } while (fault.endless && !res.destroyed && end > start);
  if (!res.destroyed) res.end();
}
