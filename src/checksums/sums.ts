/**
 * Parsers for the checksum files the upstream projects publish. All are pure: text in, data out.
 */

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Parse coreutils `sha256sum` output: `<hex>  <name>` or `<hex> *<name>` per line. Lines that are not
 * digest lines (blank lines, comments, the armor of runc's clear-signed file) are skipped, so the same
 * parser reads SHA256SUMS, containerd's `.sha256sum`, CNI's `.sha256` and runc's clear-signed file.
 * Returns name -> lower-case hex. A name listed twice with different digests is refused.
 */
export function parseSha256Sums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S.*?)\s*$/.exec(raw.trim());
    if (!m) continue;
    const hex = m[1]!.toLowerCase();
    const name = m[2]!.replace(/^\.\//, '');
    const seen = out.get(name);
    if (seen !== undefined && seen !== hex) throw new Error(`conflicting digests for ${name}`);
    out.set(name, hex);
  }
  return out;
}

/** crictl's `.sha256` holds only the hex digest. */
export function parseBareHex(text: string): string | undefined {
  const first = text.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  return HEX64.test(first) ? first : undefined;
}

/**
 * The signed body of an OpenPGP clear-signed message, undoing dash-escaping (RFC 4880 section 7.1).
 * Used only to read digests; the signature itself is checked by the verify step.
 */
export function clearsignedBody(text: string): string {
  const begin = text.indexOf('-----BEGIN PGP SIGNED MESSAGE-----');
  if (begin < 0) return text;
  const afterHeaders = text.indexOf('\n\n', begin);
  const sig = text.indexOf('-----BEGIN PGP SIGNATURE-----');
  if (afterHeaders < 0 || sig < 0) return text;
  return text
    .slice(afterHeaders + 2, sig)
    .split('\n')
    .map((l) => (l.startsWith('- ') ? l.slice(2) : l))
    .join('\n');
}

export function isSha256Hex(s: string): boolean {
  return HEX64.test(s);
}
