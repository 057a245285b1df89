import { describe, expect, it } from 'vitest';
import { clearsignedBody, parseBareHex, parsePinFile, PinLineError, parseSha256Sums } from '../../src/checksums/sums.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('parseSha256Sums', () => {
  it('reads coreutils lines, text and binary mode, and ./ prefixes', () => {
    const m = parseSha256Sums(`${A}  containerd-2.1.4-linux-amd64.tar.gz\n${B} *runc.amd64\n${A.toUpperCase()}  ./x.tgz\n`);
    expect(Object.fromEntries(m)).toEqual({ 'containerd-2.1.4-linux-amd64.tar.gz': A, 'runc.amd64': B, 'x.tgz': A });
  });

  it('skips the armor of a clear-signed file', () => {
    const text = `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${A}  runc.amd64\n${B}  runc.arm64\n-----BEGIN PGP SIGNATURE-----\n\niHUEARYKAB0WIQ\n=abcd\n-----END PGP SIGNATURE-----\n`;
    expect(parseSha256Sums(text).get('runc.arm64')).toBe(B);
    expect(parseSha256Sums(clearsignedBody(text)).size).toBe(2);
  });

  it('reads only the signed body of a CRLF clear-signed file, not lines after its signature', () => {
    const text = [
      '-----BEGIN PGP SIGNED MESSAGE-----',
      'Hash: SHA512',
      '',
      `${A}  runc.amd64`,
      '- -dash-escaped line',
      `${B}  runc.arm64`,
      '-----BEGIN PGP SIGNATURE-----',
      '',
      'iHUEARYKAB0WIQ',
      '=abcd',
      '-----END PGP SIGNATURE-----',
      `${B}  runc.s390x`,
      '',
    ].join('\r\n');
    expect(clearsignedBody(text)).toBe(`${A}  runc.amd64\n-dash-escaped line\n${B}  runc.arm64`);
    expect([...parseSha256Sums(clearsignedBody(text)).keys()]).toEqual(['runc.amd64', 'runc.arm64']);
    // The same with LF line ends, and text before the message.
    expect(clearsignedBody(`${B}  runc.s390x\n${text.replace(/\r\n/g, '\n')}`)).toBe(`${A}  runc.amd64\n-dash-escaped line\n${B}  runc.arm64`);
  });

  it('returns a text with no complete clear-signed message as it is', () => {
    const plain = `${A}  runc.amd64\n`;
    expect(clearsignedBody(plain)).toBe(plain);
    const truncated = `-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\n${A}  runc.amd64\r\n`;
    expect(clearsignedBody(truncated)).toBe(truncated);
  });

  it('refuses a name listed twice with different digests', () => {
    expect(() => parseSha256Sums(`${A}  x\n${B}  x\n`)).toThrow('lists two different digests for "x"');
  });
});

describe('parseBareHex', () => {
  it.each([
    [`${A}\n`, A],
    [`${A.toUpperCase()}`, A],
    ['not hex\n', undefined],
    [`${A.slice(1)}\n`, undefined],
  ])('%j -> %s', (text, hex) => {
    expect(parseBareHex(text)).toBe(hex);
  });
});

describe('parsePinFile (--checksums)', () => {
  it('reads sha256sum lines, blank lines and # comments, CRLF too', () => {
    const m = parsePinFile(`# pins for the image\r\n${A}  containerd-2.1.4-linux-amd64.tar.gz\r\n\r\n${B} *v1.1.5/runc.amd64\n  \n${A.toUpperCase()}  ./x.tgz`);
    expect(Object.fromEntries(m)).toEqual({ 'containerd-2.1.4-linux-amd64.tar.gz': A, 'v1.1.5/runc.amd64': B, 'x.tgz': A });
  });

  it.each([
    [`${A}  ok.tgz\n${'a'.repeat(63)}  short.tgz\n`, 2, 'the digest has 63 hex digits, not 64'],
    [`${'a'.repeat(65)}  long.tgz\n`, 1, 'the digest has 65 hex digits, not 64'],
    [`${A}  ok.tgz\n\n${A.slice(0, 30)}g${A.slice(31)}  typo.tgz\n`, 3, 'not `<sha256>  <file name>`'],
    [`${A}\n`, 1, 'a digest without a file name'],
    [`${A}  a.tgz\nsha256:${A}  b.tgz\n`, 2, 'not `<sha256>  <file name>`'],
    [`-----BEGIN PGP SIGNED MESSAGE-----\n${A}  runc.amd64\n`, 1, 'not `<sha256>  <file name>`'],
    [`${A}  a.tgz\n${B}  a.tgz\n`, 2, 'a second, different digest for a.tgz'],
  ])('refuses %j at line %i: %s', (text, line, why) => {
    let err: unknown;
    try {
      parsePinFile(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PinLineError);
    expect(err).toMatchObject({ line, why });
  });
});
