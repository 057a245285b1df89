/**
 * Read a file that should be small and regular, from a tree someone else may control: a FIFO does
 * not block (O_NONBLOCK, then fstat of the opened descriptor), a device or directory is refused, a
 * symlink is not followed unless asked, and no more than `maxBytes` are read.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export type RegularRead = { kind: 'text'; text: string } | { kind: 'refused'; why: string };

export async function readRegularFile(file: string, opts: { maxBytes: number; followLinks?: boolean }): Promise<RegularRead> {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | (opts.followLinks ? 0 : constants.O_NOFOLLOW);
  let fh;
  try {
    fh = await open(file, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { kind: 'refused', why: code === 'ELOOP' ? 'it is a symbolic link' : (code ?? String(err)) };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { kind: 'refused', why: 'it is not a regular file' };
    if (st.size > opts.maxBytes) return { kind: 'refused', why: `it is larger than ${opts.maxBytes} bytes` };
    const buf = Buffer.alloc(Math.min(st.size, opts.maxBytes) + 1);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got > opts.maxBytes) return { kind: 'refused', why: `it is larger than ${opts.maxBytes} bytes` };
    return { kind: 'text', text: buf.subarray(0, got).toString('utf8') };
  } finally {
    await fh.close();
  }
}
