/**
 * Replace one file so that readers see the old or the new content, never a mix, and a crash leaves one
 * of the two. The new content goes to a temp file beside the destination (same folder = same file
 * system, so rename(2) is atomic), created with O_EXCL|O_NOFOLLOW in the opened folder (root-fs.ts),
 * given its owner, then its mode (chown clears set-id bits, so it comes first), fsynced, then renamed
 * over the destination; the folder is fsynced so the rename itself survives a power cut.
 *
 * The existing file is never opened for writing: a running containerd keeps executing its old inode
 * while the name points at the new one, so there is no ETXTBSY ("text file busy"). A symlink at the
 * destination is replaced, not followed.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { NodePrepError } from '../errors.ts';
import type { Dir } from './root-fs.ts';

/** The bytes about to be written are not the ones that were verified: nothing is put in place. */
export class ContentChangedError extends NodePrepError {
  constructor(dest: string, expected: string, actual: string) {
    super('CONTENT_CHANGED', `Refusing to write ${dest}: its source changed after it was verified (sha256 ${actual}, verified ${expected}).`, {
      hint: 'Nothing was put in place. Something changed node-prep\'s files while it ran; find out what, then run again.',
      fields: { path: dest, expected, actual },
    });
    this.name = 'ContentChangedError';
  }
}

/** A file inside a folder node-prep opened: its staging copy, or a backup. */
export interface DirFile {
  dir: Dir;
  name: string;
}

export type AtomicSource = { data: string | Buffer } | { from: DirFile };

/** What a replaced file keeps of the one it restores: owner, set-id bits and times. */
export interface KeepMetadata {
  uid: number;
  gid: number;
  atime: Date;
  mtime: Date;
}

/** `.containerd.node-prep-1a2b3c4d5e6f` next to `containerd`: hidden, and recognisably ours if a crash leaves it. */
export function tempNameFor(name: string): string {
  return `.${name}.node-prep-${randomBytes(6).toString('hex')}`;
}

export const TEMP_NAME = /^\..+\.node-prep-[0-9a-f]{12}$/;

const COPY_CHUNK = 1024 * 1024;

/** Copy every byte of `src` (from offset 0) to `dst`, returning the sha256 of exactly what was copied. */
export async function copyHandle(src: FileHandle, dst: FileHandle): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(COPY_CHUNK);
  let pos = 0;
  for (;;) {
    const { bytesRead } = await src.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    const chunk = buf.subarray(0, bytesRead);
    hash.update(chunk);
    let written = 0;
    while (written < bytesRead) written += (await dst.write(chunk, written, bytesRead - written, pos + written)).bytesWritten;
    pos += bytesRead;
  }
  return { sha256: hash.digest('hex'), size: pos };
}

/**
 * At most `maxBytes` of an opened file, as text; undefined when it holds more. Read by hand: the
 * size fstat reported may have grown by the time a whole-file read gets there.
 */
export async function readBounded(fh: FileHandle, maxBytes: number): Promise<string | undefined> {
  const buf = Buffer.alloc(Math.min(maxBytes, 1024 * 1024) + 1);
  const chunks: Buffer[] = [];
  let total = 0;
  for (let pos = 0; ; ) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > maxBytes) return undefined;
    chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
    pos += bytesRead;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** sha256 of an opened file, read from offset 0. */
export async function sha256Handle(fh: FileHandle): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(COPY_CHUNK);
  for (let pos = 0; ; ) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest('hex');
}

/**
 * Write `from` to `dir/name` atomically with exactly `mode`. Returns the sha256 of the bytes written
 * (for a `from` file: of what was read from its descriptor, which is what the caller compares with
 * what it verified).
 */
export async function writeAtomic(dir: Dir, name: string, from: AtomicSource, mode: number, opts: { keep?: KeepMetadata; expectSha256?: string } = {}): Promise<string> {
  const keep = opts.keep;
  const tmp = tempNameFor(name);
  let renamed = false;
  try {
    const fh = await dir.createExclusive(tmp, 0o600);
    let sha256: string;
    try {
      if ('data' in from) {
        await fh.writeFile(from.data);
        sha256 = createHash('sha256').update(from.data).digest('hex');
      } else {
        const src = await from.from.dir.openRegular(from.from.name);
        if (!src) throw Object.assign(new Error(`ENOENT: ${from.from.dir.hostPathOf(from.from.name)} is gone`), { code: 'ENOENT' });
        try {
          sha256 = (await copyHandle(src.fh, fh)).sha256;
        } finally {
          await src.fh.close();
        }
      }
      if (opts.expectSha256 !== undefined && sha256 !== opts.expectSha256) {
        throw new ContentChangedError(dir.hostPathOf(name), opts.expectSha256, sha256);
      }
      if (keep) await fh.chown(keep.uid, keep.gid).catch(() => undefined); // only root may; content and mode matter most
      await fh.chmod(mode); // fchmod after fchown: exact mode and set-id bits, whatever the umask
      if (keep) await fh.utimes(keep.atime, keep.mtime);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await dir.rename(tmp, dir, name);
    renamed = true;
    await dir.sync();
    return sha256;
  } finally {
    if (!renamed) await dir.unlinkIfPresent(tmp).catch(() => undefined);
  }
}
