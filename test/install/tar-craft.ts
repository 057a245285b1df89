// Raw ustar headers written by hand, so tests can build the archives node-tar's own writer would
// refuse or normalise away (`..`, absolute paths, devices, size claims the data does not back).
import { gzipSync } from 'node:zlib';

export interface RawEntry {
  path: string;
  /** ustar typeflag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'x' pax, 'L' GNU long name. */
  type?: string;
  data?: string | Buffer;
  linkpath?: string;
  mode?: number;
  /** Size written into the header; defaults to the data length (set it higher to lie). */
  size?: number;
  /** Corrupt the header checksum. */
  badChecksum?: boolean;
}

function field(buf: Buffer, offset: number, length: number, value: string): void {
  const b = Buffer.from(value, 'utf8');
  if (b.length > length) throw new Error(`tar-craft: ${JSON.stringify(value)} does not fit in ${length} bytes`);
  b.copy(buf, offset);
}

const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;

export function header(e: RawEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  field(h, 0, 100, e.path);
  field(h, 100, 8, octal(e.mode ?? 0o644, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, octal(size, 12));
  field(h, 136, 12, octal(1_767_225_600, 12));
  h.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  field(h, 156, 1, e.type ?? '0');
  if (e.linkpath !== undefined) field(h, 157, 100, e.linkpath);
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 265, 32, 'root');
  field(h, 297, 32, 'root');
  let sum = 0;
  for (const byte of h) sum += byte;
  if (e.badChecksum) sum += 1;
  field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

export function entry(e: RawEntry): Buffer {
  const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
  const size = e.size ?? data.length;
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([header(e, size), data, Buffer.alloc(pad)]);
}

/** A pax extended header ('x') carrying `records` for the next entry. */
export function pax(records: Record<string, string>): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    // "<len> <key>=<value>\n" where len counts itself.
    const rest = ` ${k}=${v}\n`;
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
    body += `${len}${rest}`;
  }
  return entry({ path: 'PaxHeader', type: 'x', data: body });
}

/** A GNU long-name header ('L') giving the next entry's path. */
export function gnuLongName(name: string): Buffer {
  return entry({ path: '././@LongLink', type: 'L', data: `${name}\0` });
}

/** tar.gz of raw blocks; `end: false` leaves out the two zero blocks (a truncated stream). */
export function tarGz(blocks: Buffer[], opts: { end?: boolean } = {}): Buffer {
  const end = opts.end === false ? [] : [Buffer.alloc(1024)];
  return gzipSync(Buffer.concat([...blocks, ...end]));
}

export const file = (path: string, data: string, mode = 0o755): Buffer => entry({ path, data, mode });
export const dir = (path: string): Buffer => entry({ path, type: '5', mode: 0o755 });
