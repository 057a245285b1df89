/**
 * Version strings as the binaries print them. Distribution builds add suffixes upstream does not
 * (Debian: `1.6.20~ds1`, `2.1.9+unknown`, `1.1.5+ds1`), so only the x.y.z core is compared.
 */

const CORE = /(?:^|[^\w.])v?(\d+)\.(\d+)\.(\d+)/;

/** The first x.y.z in a text (an optional leading `v` dropped), or undefined. */
export function versionCore(text: string): string | undefined {
  const m = CORE.exec(text);
  return m === null ? undefined : `${Number(m[1])}.${Number(m[2])}.${Number(m[3])}`;
}

export type VersionMatch =
  | { kind: 'match'; found: string; raw: string }
  | { kind: 'mismatch'; found: string; raw: string; expected: string }
  | { kind: 'unreadable'; raw: string };

/**
 * Does `output` (what `--version` printed) report `expected`? Compares x.y.z only, so `v2.2.0`,
 * `2.2.0`, `2.2.0-rc.1` and Debian's `2.2.0+ds1` all match 2.2.0. `raw` is the token the version
 * came from, for messages.
 */
export function matchVersion(expected: string, output: string): VersionMatch {
  const want = versionCore(expected) ?? expected.replace(/^v/, '');
  const line = output.split('\n').find((l) => versionCore(l) !== undefined);
  if (line === undefined) return { kind: 'unreadable', raw: firstLine(output) };
  const found = versionCore(line)!;
  const raw = rawToken(line) ?? found;
  return found === want ? { kind: 'match', found, raw } : { kind: 'mismatch', found, raw, expected: want };
}

/** The whole token holding the version, suffix included (`1.6.20~ds1`), for the report. */
function rawToken(line: string): string | undefined {
  return line.split(/\s+/).find((token) => versionCore(token) !== undefined);
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 120 ? `${line.slice(0, 117)}...` : line.trim();
}
