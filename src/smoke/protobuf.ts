/**
 * Just enough of the protobuf wire format for the two CRI calls the smoke test makes
 * (https://protobuf.dev/programming-guides/encoding/): a generated client for two messages would
 * pull in protobufjs/grpc-js and the CRI .proto files; the replies are three strings and a list.
 */

export type ProtoValue = { wire: 'varint'; value: bigint } | { wire: 'bytes'; value: Uint8Array } | { wire: 'fixed'; bytes: number };

export interface ProtoField {
  field: number;
  value: ProtoValue;
}

export class ProtobufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtobufError';
  }
}

/** Split a message into its fields, in wire order. Unknown fields are kept; malformed input throws. */
export function decodeFields(buf: Uint8Array): ProtoField[] {
  const out: ProtoField[] = [];
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new ProtobufError(`truncated varint at byte ${i}`);
      if (shift > 63n) throw new ProtobufError(`varint longer than 10 bytes at byte ${i}`);
      const b = buf[i++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new ProtobufError(`field number 0 at byte ${i}`);
    switch (wire) {
      case 0:
        out.push({ field, value: { wire: 'varint', value: varint() } });
        break;
      case 2: {
        const len = Number(varint());
        if (i + len > buf.length) throw new ProtobufError(`field ${field}: ${len} bytes announced, ${buf.length - i} left`);
        out.push({ field, value: { wire: 'bytes', value: buf.subarray(i, i + len) } });
        i += len;
        break;
      }
      case 1:
      case 5: {
        const bytes = wire === 1 ? 8 : 4;
        if (i + bytes > buf.length) throw new ProtobufError(`field ${field}: truncated fixed${bytes * 8}`);
        out.push({ field, value: { wire: 'fixed', bytes } });
        i += bytes;
        break;
      }
      default:
        throw new ProtobufError(`field ${field}: unsupported wire type ${wire}`);
    }
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** The last value of a string field (proto3: the last one wins), '' when absent. */
export function stringField(fields: ProtoField[], field: number): string {
  const bytes = bytesField(fields, field);
  return bytes === undefined ? '' : utf8.decode(bytes);
}

export function bytesField(fields: ProtoField[], field: number): Uint8Array | undefined {
  let found: Uint8Array | undefined;
  for (const f of fields) if (f.field === field && f.value.wire === 'bytes') found = f.value.value;
  return found;
}

export function boolField(fields: ProtoField[], field: number): boolean {
  let found = false;
  for (const f of fields) if (f.field === field && f.value.wire === 'varint') found = f.value.value !== 0n;
  return found;
}

export function repeatedBytes(fields: ProtoField[], field: number): Uint8Array[] {
  return fields.flatMap((f) => (f.field === field && f.value.wire === 'bytes' ? [f.value.value] : []));
}

/** Encode one string field. */
export function encodeString(field: number, value: string): Uint8Array {
  return encodeBytes(field, new TextEncoder().encode(value));
}

/** Encode one length-delimited field: bytes, or an embedded message. */
export function encodeBytes(field: number, data: Uint8Array): Uint8Array {
  return Uint8Array.from([...encodeVarint(BigInt((field << 3) | 2)), ...encodeVarint(BigInt(data.length)), ...data]);
}

function encodeVarint(n: bigint): number[] {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return out;
}

// --- The CRI messages (k8s.io/cri-api/pkg/apis/runtime/v1/api.proto) -----------------------------

export interface CriVersion {
  /** The CRI API version the runtime speaks (e.g. 0.1.0). */
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface CriCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** VersionResponse {1 version, 2 runtime_name, 3 runtime_version, 4 runtime_api_version}. */
export function decodeVersionResponse(buf: Uint8Array): CriVersion {
  const f = decodeFields(buf);
  return { version: stringField(f, 1), runtimeName: stringField(f, 2), runtimeVersion: stringField(f, 3), runtimeApiVersion: stringField(f, 4) };
}

/**
 * StatusResponse {1 RuntimeStatus status {1 repeated RuntimeCondition conditions}, 2 map info}.
 * RuntimeCondition {1 type, 2 status (bool), 3 reason, 4 message}.
 */
export function decodeStatusResponse(buf: Uint8Array): CriCondition[] {
  const status = bytesField(decodeFields(buf), 1);
  if (status === undefined) return [];
  return repeatedBytes(decodeFields(status), 1).map((c) => {
    const cf = decodeFields(c);
    return { type: stringField(cf, 1), status: boolField(cf, 2), reason: stringField(cf, 3), message: stringField(cf, 4) };
  });
}

/** VersionRequest {1 version}: the kubelet sends the CRI API version it speaks. */
export function encodeVersionRequest(version: string): Uint8Array {
  return encodeString(1, version);
}

/** PullImageRequest {1 ImageSpec image {1 image}}: no auth (the node's hosts.toml carries it) and no sandbox config. */
export function encodePullImageRequest(image: string): Uint8Array {
  return encodeBytes(1, encodeString(1, image));
}

/** PullImageResponse {1 image_ref}: the image's id as the runtime stores it. */
export function decodePullImageResponse(buf: Uint8Array): string {
  return stringField(decodeFields(buf), 1);
}
