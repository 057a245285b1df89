import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, readBundleLock } from '../../src/bundle/lock.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'np-lock-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe('readBundleLock is bounded', () => {
  it('refuses a lock larger than 16 MiB without reading it', async () => {
    const dir = path.join(work, 'huge');
    await mkdir(dir);
    await writeFile(path.join(dir, LOCK_FILE), '');
    await truncate(path.join(dir, LOCK_FILE), 17 * 1024 * 1024);
    await expect(readBundleLock(dir)).rejects.toMatchObject({ code: 'BUNDLE', message: `${dir} is not a node-prep bundle: cannot read ${LOCK_FILE} (it is larger than 16777216 bytes).` });
  });

  it('refuses a lock that is not a regular file', async () => {
    const dir = path.join(work, 'folder');
    await mkdir(path.join(dir, LOCK_FILE), { recursive: true });
    await expect(readBundleLock(dir)).rejects.toMatchObject({ code: 'BUNDLE', message: expect.stringContaining('(it is not a regular file)') });
  });

  it('a missing lock says the folder is not a bundle', async () => {
    await expect(readBundleLock(path.join(work, 'none'))).rejects.toMatchObject({ code: 'BUNDLE', message: expect.stringContaining('(ENOENT)') });
  });
});
