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
    if (seen !== undefined && seen !== hex) throw new Error(`lists two different digests for ${JSON.stringify(name)}`);
    out.set(name, hex);
  }
  return out;
}

/** A line of a `--checksums` file that is not a digest line: the file is refused, not half read. */
export class PinLineError extends Error {
  constructor(
    readonly line: number,
    readonly text: string,
    readonly why: string,
  ) {
    super(`line ${line}: ${why}`);
    this.name = 'PinLineError';
  }
}

/**
 * Parse a `--checksums` file strictly: every line is `<64 hex>  <name>` (or `<64 hex> *<name>`), a
 * blank line, or a `#` comment. A short digest or a typo is an error with its line number: skipping
 * the line would let that artifact fall back to the digest its download host serves.
 */
export function parsePinFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S.*?)$/.exec(line);
    if (!m) {
      const hex = /^[0-9a-fA-F]+/.exec(line)?.[0] ?? '';
      const why =
        hex.length > 0 && hex.length !== 64 && /^[0-9a-fA-F]+(\s|$)/.test(line)
          ? `the digest has ${hex.length} hex digits, not 64`
          : /^[0-9a-fA-F]{64}$/.test(line)
            ? 'a digest without a file name'
            : 'not `<sha256>  <file name>`';
      throw new PinLineError(i + 1, raw, why);
    }
    const hex = m[1]!.toLowerCase();
    const name = m[2]!.replace(/^\.\//, '');
    const seen = out.get(name);
    if (seen !== undefined && seen !== hex) throw new PinLineError(i + 1, raw, `a second, different digest for ${name}`);
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
 * The body of an OpenPGP clear-signed message, undoing dash-escaping (RFC 4880 section 7.1): the
 * lines between the blank line after the armor headers and the `-----BEGIN PGP SIGNATURE-----` line,
 * with LF or CRLF line ends. Nothing before the first message or after its signature block is read.
 * This is NOT what the signature vouches for: it is for reading a published digest before signatures
 * are checked. Digests a verified signature vouches for come from `clearsignedText(result)`
 * (src/verify/signatures.ts), the text openpgp checked. A text with no complete clear-signed message
 * is returned as is.
 */
export function clearsignedBody(text: string): string {
  const lines = text.split(/\r?\n/);
  const isLine = (l: string | undefined, marker: string) => l !== undefined && l.replace(/[ \t\r]+$/, '') === marker;
  const begin = lines.findIndex((l) => isLine(l, '-----BEGIN PGP SIGNED MESSAGE-----'));
  if (begin < 0) return text;
  // Armor headers (`Hash: SHA512`) up to the first blank line.
  let blank = begin + 1;
  while (blank < lines.length && !isLine(lines[blank], '')) blank++;
  let end = blank + 1;
  while (end < lines.length && !isLine(lines[end], '-----BEGIN PGP SIGNATURE-----')) end++;
  if (blank >= lines.length || end >= lines.length) return text;
  return lines
    .slice(blank + 1, end)
    .map((l) => (l.startsWith('- ') ? l.slice(2) : l))
    .join('\n');
}
