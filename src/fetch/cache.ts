/**
 * The download cache, content-addressed by sha256: `<dir>/sha256/<hex>` holds only bytes that were
 * verified against that digest; partial downloads live in `<dir>/tmp/` (same filesystem, so the final
 * rename is atomic) and never count. Two runs at once each write their own temp file; the rename of
 * identical content by either is harmless.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256File } from '../install/hash.ts';

export class ArtifactCache {
  constructor(readonly dir: string) {}

  pathFor(sha256: string): string {
    return path.join(this.dir, 'sha256', sha256);
  }

  /** The cached file for this digest, re-hashed so a damaged cache entry is dropped, not trusted. */
  async lookup(sha256: string): Promise<string | undefined> {
    const file = this.pathFor(sha256);
    try {
      if (!(await stat(file)).isFile()) return undefined;
    } catch {
      return undefined;
    }
    if ((await sha256File(file)) === sha256) return file;
    await rm(file, { force: true });
    return undefined;
  }

  async tempPath(sha256: string): Promise<string> {
    const dir = path.join(this.dir, 'tmp');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    return path.join(dir, `${sha256.slice(0, 16)}.${process.pid}.${randomBytes(4).toString('hex')}.partial`);
  }

  /** Move a verified temp file into place. */
  async commit(tempFile: string, sha256: string): Promise<string> {
    const dest = this.pathFor(sha256);
    await mkdir(path.dirname(dest), { recursive: true, mode: 0o755 });
    await rename(tempFile, dest);
    return dest;
  }
}
