// Test helper: build protobuf messages by hand, independent of the encoder under test.
/** A message from fields: strings/bytes (wire type 2) or booleans/numbers (varint). */
export function message(...fields: Array<[number, string | Uint8Array | boolean | number]>): Uint8Array {
  const parts: number[] = [];
  const varint = (n: number) => {
    do {
      let b = n & 0x7f;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      parts.push(b);
    } while (n > 0);
  };
  for (const [field, value] of fields) {
    if (typeof value === 'boolean' || typeof value === 'number') {
      varint(field * 8);
      varint(Number(value));
    } else {
      const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
      varint(field * 8 + 2);
      varint(bytes.length);
      parts.push(...bytes);
    }
  }
  return Uint8Array.from(parts);
}
