// The CRI client against a fake runtime: a plain HTTP/2 server on a unix socket speaking gRPC framing.
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criStatus, criVersion, CriError, grpcUnary } from '../../src/smoke/cri.ts';
import { decodeFields, stringField } from '../../src/smoke/protobuf.ts';
import { message } from './proto-message.ts';

type Handler = (stream: http2.ServerHttp2Stream, path: string, body: Buffer) => void;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-cri-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function fakeRuntime(handler: Handler): Promise<{ socket: string; seen: Array<{ path: string; body: Buffer; headers: http2.IncomingHttpHeaders }>; close: () => Promise<void> }> {
  const socket = path.join(dir, `cri-${n++}.sock`);
  const seen: Array<{ path: string; body: Buffer; headers: http2.IncomingHttpHeaders }> = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ path: String(headers[':path']), body, headers });
      handler(stream, String(headers[':path']), body);
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, seen, close: () => new Promise((r) => server.close(() => r())) };
}

const frame = (msg: Uint8Array) => {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
};

function ok(msg: Uint8Array, split = false): Handler {
  return (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    const body = frame(msg);
    if (split) {
      stream.write(body.subarray(0, 3));
      stream.end(body.subarray(3));
    } else stream.end(body);
  };
}

describe('CRI client', () => {
  it('asks Version as the kubelet does and decodes the answer, even split across DATA frames', async () => {
    const rt = await fakeRuntime(ok(message([1, '0.1.0'], [2, 'containerd'], [3, '2.1.9+unknown'], [4, 'v1']), true));
    try {
      expect(await criVersion(rt.socket)).toEqual({ version: '0.1.0', runtimeName: 'containerd', runtimeVersion: '2.1.9+unknown', runtimeApiVersion: 'v1' });
      const req = rt.seen[0]!;
      expect(req.path).toBe('/runtime.v1.RuntimeService/Version');
      expect(req.headers['content-type']).toBe('application/grpc');
      expect(req.body[0]).toBe(0);
      expect(req.body.readUInt32BE(1)).toBe(req.body.length - 5);
      expect(stringField(decodeFields(req.body.subarray(5)), 1)).toBe('0.1.0');
    } finally {
      await rt.close();
    }
  });

  it('decodes Status conditions', async () => {
    const cond = (type: string, status: boolean, reason = '') => message([1, type], [2, status], [3, reason]);
    const rt = await fakeRuntime(ok(message([1, message([1, cond('RuntimeReady', true)], [1, cond('NetworkReady', false, 'NetworkPluginNotReady')])])));
    try {
      expect(await criStatus(`unix://${rt.socket}`)).toEqual([
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: '' },
      ]);
      expect(rt.seen[0]!.path).toBe('/runtime.v1.RuntimeService/Status');
    } finally {
      await rt.close();
    }
  });

  it('names the socket and the gRPC status of a trailers-only error (UNIMPLEMENTED)', async () => {
    const rt = await fakeRuntime((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown%20service%20runtime.v1.RuntimeService' }, { endStream: true });
    });
    try {
      const err = await criVersion(rt.socket).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CriError);
      expect((err as CriError).message).toBe(`CRI /runtime.v1.RuntimeService/Version on ${rt.socket}: grpc-status 12 (UNIMPLEMENTED): unknown service runtime.v1.RuntimeService`);
      expect((err as CriError).grpcStatus).toBe(12);
      expect((err as CriError).hint).toMatch(/disabled_plugins/);
    } finally {
      await rt.close();
    }
  });

  it('times out on a runtime that never answers', async () => {
    const rt = await fakeRuntime(() => undefined);
    try {
      await expect(grpcUnary(rt.socket, '/runtime.v1.RuntimeService/Status', new Uint8Array(0), { timeoutMs: 200 })).rejects.toThrow(
        `CRI /runtime.v1.RuntimeService/Status on ${rt.socket}: no answer within 200 ms`,
      );
    } finally {
      await rt.close();
    }
  });

  it('says the socket does not exist', async () => {
    const socket = path.join(dir, 'missing.sock');
    await expect(criStatus(socket)).rejects.toThrow(`CRI /runtime.v1.RuntimeService/Status on ${socket}: the socket does not exist (ENOENT)`);
  });

  it('rejects a truncated response message', async () => {
    const rt = await fakeRuntime((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame(message([2, 'containerd'])).subarray(0, 8));
    });
    try {
      await expect(criVersion(rt.socket)).rejects.toThrow(/response message announces 12 bytes, 3 arrived/);
    } finally {
      await rt.close();
    }
  });

  it('rejects an answer that is not gRPC', async () => {
    const rt = await fakeRuntime((stream) => {
      stream.respond({ ':status': 404 });
      stream.end('not found');
    });
    try {
      await expect(criVersion(rt.socket)).rejects.toThrow(/not a gRPC answer \(HTTP status 404/);
    } finally {
      await rt.close();
    }
  });
});
