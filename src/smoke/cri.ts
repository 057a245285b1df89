/**
 * A CRI client for the two calls the kubelet makes first (runtime.v1 RuntimeService Version and
 * Status) and the image pull it makes for every pod: unary gRPC over HTTP/2 on containerd's unix
 * socket. No crictl is needed (none is packaged in Debian, and the one installed may be the thing
 * under test); the gRPC framing is a 5-byte prefix per message (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
 */
import http2 from 'node:http2';
import net from 'node:net';
import { NodePrepError } from '../errors.ts';
import { decodePullImageResponse, decodeStatusResponse, decodeVersionResponse, encodePullImageRequest, encodeVersionRequest, type CriCondition, type CriVersion } from './protobuf.ts';

export type { CriCondition, CriVersion } from './protobuf.ts';

/** The CRI API version the kubelet announces in VersionRequest. */
export const KUBELET_CRI_VERSION = '0.1.0';

const GRPC_CODES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

export class CriError extends NodePrepError {
  readonly socket: string;
  readonly method: string;
  /** The gRPC status code when the runtime answered with one. */
  readonly grpcStatus: number | undefined;

  constructor(socket: string, method: string, reason: string, grpcStatus?: number, cause?: unknown) {
    super('CRI', `CRI ${method} on ${socket}: ${reason}`, {
      hint: grpcStatus === 12
        ? 'containerd answers but not the CRI runtime.v1 API: check that the cri plugin is not in disabled_plugins (`ctr plugins ls`).'
        : 'Check that containerd runs and listens on this socket (`ctr --address SOCKET version`).',
      fields: { socket, method, ...(grpcStatus === undefined ? {} : { grpcStatus }) },
      cause,
    });
    this.name = 'CriError';
    this.socket = socket;
    this.method = method;
    this.grpcStatus = grpcStatus;
  }
}

export interface CriCallOptions {
  timeoutMs?: number;
}

/** One unary gRPC call; resolves to the response message (without the 5-byte frame prefix). */
export function grpcUnary(socket: string, method: string, request: Uint8Array, opts: CriCallOptions = {}): Promise<Uint8Array> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const path = socket.replace(/^unix:\/\//, '');
  return new Promise((resolve, reject) => {
    let settled = false;
    const client = http2.connect('http://localhost', { createConnection: () => net.connect({ path }) });
    const finish = (err: CriError | undefined, body?: Uint8Array) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.destroy();
      if (err !== undefined) reject(err);
      else resolve(body!);
    };
    const timer = setTimeout(() => finish(new CriError(socket, method, `no answer within ${timeoutMs} ms`, 4)), timeoutMs);
    client.on('error', (err: NodeJS.ErrnoException) => finish(new CriError(socket, method, connectReason(err), undefined, err)));

    const frame = Buffer.alloc(5 + request.length);
    frame.writeUInt32BE(request.length, 1);
    frame.set(request, 5);
    const req = client.request({
      ':method': 'POST',
      ':path': method,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${timeoutMs}m`,
      'user-agent': 'node-prep-smoke',
    });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (err: NodeJS.ErrnoException) => finish(new CriError(socket, method, connectReason(err), undefined, err)));
    req.on('end', () => {
      const httpStatus = headers[':status'];
      // A trailers-only response (e.g. UNIMPLEMENTED) carries grpc-status in the headers.
      const rawStatus = trailers['grpc-status'] ?? headers['grpc-status'];
      if (rawStatus === undefined) {
        finish(new CriError(socket, method, `not a gRPC answer (HTTP status ${String(httpStatus)}, no grpc-status)`));
        return;
      }
      const status = Number(rawStatus);
      if (status !== 0) {
        const message = grpcMessage(trailers['grpc-message'] ?? headers['grpc-message']);
        finish(new CriError(socket, method, `grpc-status ${status} (${GRPC_CODES[status] ?? 'unknown code'})${message ? `: ${message}` : ''}`, status));
        return;
      }
      try {
        finish(undefined, unframe(Buffer.concat(chunks)));
      } catch (err) {
        finish(new CriError(socket, method, (err as Error).message, undefined, err));
      }
    });
    req.end(frame);
  });
}

/** The single message of a unary response. */
function unframe(body: Buffer): Uint8Array {
  if (body.length < 5) throw new Error(`response body has ${body.length} bytes, less than a gRPC frame header`);
  if (body[0] !== 0) throw new Error('response message is compressed; none was asked for');
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) throw new Error(`response message announces ${length} bytes, ${body.length - 5} arrived`);
  return body.subarray(5, 5 + length);
}

function grpcMessage(raw: string | string[] | undefined): string {
  const text = Array.isArray(raw) ? raw.join(' ') : raw ?? '';
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function connectReason(outer: NodeJS.ErrnoException): string {
  // A connect failure may surface first as the stream's ERR_HTTP2_STREAM_CANCEL, caused by it.
  let err = outer;
  while (err.cause instanceof Error && (err.code === undefined || err.code.startsWith('ERR_HTTP2'))) err = err.cause as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT':
      return 'the socket does not exist (ENOENT)';
    case 'ECONNREFUSED':
      return 'nothing listens on the socket (ECONNREFUSED)';
    case 'EACCES':
      return 'permission denied (EACCES): run as root';
    default:
      return err.code ? `${err.code}: ${err.message}` : err.message;
  }
}

/** runtime.v1 RuntimeService/Version, asked as the kubelet asks. */
export async function criVersion(socket: string, opts: CriCallOptions = {}): Promise<CriVersion> {
  const method = '/runtime.v1.RuntimeService/Version';
  const body = await grpcUnary(socket, method, encodeVersionRequest(KUBELET_CRI_VERSION), opts);
  return decode(socket, method, () => decodeVersionResponse(body));
}

/** runtime.v1 RuntimeService/Status (verbose false): the runtime's conditions. */
export async function criStatus(socket: string, opts: CriCallOptions = {}): Promise<CriCondition[]> {
  const method = '/runtime.v1.RuntimeService/Status';
  const body = await grpcUnary(socket, method, new Uint8Array(0), opts);
  return decode(socket, method, () => decodeStatusResponse(body));
}

/**
 * runtime.v1 ImageService/PullImage, as the kubelet pulls an image with no pull secret: the
 * runtime's registry hosts (certs.d) decide where from and with which credentials. The image ref.
 */
export async function criPullImage(socket: string, image: string, opts: CriCallOptions = {}): Promise<string> {
  const method = '/runtime.v1.ImageService/PullImage';
  const body = await grpcUnary(socket, method, encodePullImageRequest(image), { timeoutMs: opts.timeoutMs ?? 60_000 });
  return decode(socket, method, () => decodePullImageResponse(body));
}

function decode<T>(socket: string, method: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new CriError(socket, method, `malformed response: ${(err as Error).message}`, undefined, err);
  }
}
