import { execa } from 'execa';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRegularFile } from '../../src/util/read-regular.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-read-'));
  await writeFile(path.join(dir, 'small.toml'), 'version = 3\n');
  await writeFile(path.join(dir, 'big'), Buffer.alloc(2048, 'a'));
  await symlink(path.join(dir, 'small.toml'), path.join(dir, 'link.toml'));
  await execa('mkfifo', [path.join(dir, 'fifo.toml')]);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('readRegularFile', () => {
  it.each<[string, { followLinks?: boolean }, unknown]>([
    ['small.toml', {}, { kind: 'text', text: 'version = 3\n' }],
    ['link.toml', {}, { kind: 'refused', why: 'it is a symbolic link' }],
    ['link.toml', { followLinks: true }, { kind: 'text', text: 'version = 3\n' }],
    ['fifo.toml', {}, { kind: 'refused', why: 'it is not a regular file' }],
    ['big', {}, { kind: 'refused', why: 'it is larger than 1024 bytes' }],
    ['missing', {}, { kind: 'refused', why: 'ENOENT' }],
  ])('%s %j', async (name, opts, want) => {
    expect(await readRegularFile(path.join(dir, name), { maxBytes: 1024, ...opts })).toEqual(want);
  });
});
