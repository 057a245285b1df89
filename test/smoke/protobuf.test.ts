import { describe, expect, it } from 'vitest';
import {
  decodeFields,
  decodeStatusResponse,
  decodeVersionResponse,
  encodeString,
  encodeVersionRequest,
  ProtobufError,
} from '../../src/smoke/protobuf.ts';
import { message } from './proto-message.ts';

describe('decodeFields', () => {
  it('reads varints, bytes, and skips fixed32/fixed64', () => {
    const buf = Uint8Array.from([
      0x08, 0x96, 0x01, // field 1 varint 150
      0x12, 0x02, 0x68, 0x69, // field 2 "hi"
      0x1d, 1, 2, 3, 4, // field 3 fixed32
      0x21, 1, 2, 3, 4, 5, 6, 7, 8, // field 4 fixed64
    ]);
    expect(decodeFields(buf)).toEqual([
      { field: 1, value: { wire: 'varint', value: 150n } },
      { field: 2, value: { wire: 'bytes', value: Uint8Array.from([0x68, 0x69]) } },
      { field: 3, value: { wire: 'fixed', bytes: 4 } },
      { field: 4, value: { wire: 'fixed', bytes: 8 } },
    ]);
  });

  it('reads a 64-bit varint without losing bits', () => {
    const buf = Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(decodeFields(buf)[0]!.value).toEqual({ wire: 'varint', value: 2n ** 64n - 1n });
  });

  it('reads multi-byte field numbers', () => {
    expect(decodeFields(message([300, 'x']))[0]!.field).toBe(300);
  });

  it.each([
    ['a truncated varint', [0x08, 0x96]],
    ['a length past the end', [0x12, 0x05, 0x68]],
    ['a truncated fixed32', [0x1d, 1, 2]],
    ['a group (wire type 3)', [0x0b]],
    ['field number 0', [0x02, 0x00]],
    ['a varint over 10 bytes', [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ])('throws on %s', (_name, bytes) => {
    expect(() => decodeFields(Uint8Array.from(bytes))).toThrow(ProtobufError);
  });

  it('decodes an empty message', () => {
    expect(decodeFields(new Uint8Array(0))).toEqual([]);
  });
});

describe('CRI messages', () => {
  it('decodes VersionResponse as containerd 1.6 (Debian) sends it', () => {
    const buf = message([1, '0.1.0'], [2, 'containerd'], [3, '1.6.20~ds1'], [4, 'v1']);
    expect(decodeVersionResponse(buf)).toEqual({ version: '0.1.0', runtimeName: 'containerd', runtimeVersion: '1.6.20~ds1', runtimeApiVersion: 'v1' });
  });

  it('ignores unknown fields and takes the last value of a repeated scalar (proto3)', () => {
    const buf = message([2, 'old'], [9, 'future field'], [2, 'containerd'], [7, 42]);
    expect(decodeVersionResponse(buf).runtimeName).toBe('containerd');
    expect(decodeVersionResponse(buf).runtimeVersion).toBe('');
  });

  it('decodes StatusResponse conditions; a false bool is absent on the wire', () => {
    const runtimeReady = message([1, 'RuntimeReady'], [2, true]);
    const networkReady = message([1, 'NetworkReady'], [3, 'NetworkPluginNotReady'], [4, 'cni plugin not initialized']);
    // field 2: the verbose info map, which must not confuse the decoder
    const buf = message([1, message([1, runtimeReady], [1, networkReady])], [2, message([1, 'config'], [2, '{}'])]);
    expect(decodeStatusResponse(buf)).toEqual([
      { type: 'RuntimeReady', status: true, reason: '', message: '' },
      { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: 'cni plugin not initialized' },
    ]);
  });

  it('decodes a StatusResponse without status as no conditions', () => {
    expect(decodeStatusResponse(new Uint8Array(0))).toEqual([]);
  });

  it('encodes VersionRequest{version} as the kubelet does', () => {
    expect(Array.from(encodeVersionRequest('0.1.0'))).toEqual([0x0a, 0x05, ...Buffer.from('0.1.0')]);
    expect(decodeFields(encodeString(20, 'é'))).toEqual([{ field: 20, value: { wire: 'bytes', value: Uint8Array.from([0xc3, 0xa9]) } }]);
  });
});
