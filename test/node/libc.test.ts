import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDotted, containerdAssetFlavor, parseGlibcBanner, parseLddVersion, readLibc, scanForBanner } from '../../src/node/libc.ts';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'node-prep-libc-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('containerdAssetFlavor', () => {
  it.each<[string | undefined, 'dynamic' | 'static']>([
    ['2.35', 'dynamic'],
    ['2.36', 'dynamic'],
    ['2.39', 'dynamic'],
    ['3.0', 'dynamic'],
    ['2.34', 'static'],
    ['2.31', 'static'],
    ['2.9', 'static'],
    ['2.17', 'static'],
    [undefined, 'static'],
    ['', 'static'],
  ])('glibc %s → %s', (glibc, flavor) => {
    expect(containerdAssetFlavor(glibc)).toBe(flavor);
  });

  it('compares versions as numbers', () => {
    expect(compareDotted('2.9', '2.35')).toBeLessThan(0);
    expect(compareDotted('2.35', '2.35.0')).toBe(0);
    expect(compareDotted('2.36.1', '2.36')).toBeGreaterThan(0);
  });
});

describe('parsing versions', () => {
  it.each<[string, string | undefined]>([
    ['GNU C Library (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36.', '2.36'],
    ['GNU C Library (Ubuntu GLIBC 2.35-0ubuntu3.8) stable release version 2.35.', '2.35'],
    ['GNU C Library (GNU libc) stable release version 2.34.', '2.34'],
    ['GNU C Library (GNU libc) development release version 2.41.9000.', '2.41.9000'],
    ['\0\0junk GNU C Library (GNU libc) release release version 2.28, by Roland McGrath et al.', '2.28'],
    ['nothing here', undefined],
  ])('banner %j → %s', (text, v) => {
    expect(parseGlibcBanner(text)).toBe(v);
  });

  it.each<[string, unknown]>([
    ['ldd (Debian GLIBC 2.36-9+deb12u14) 2.36\nCopyright (C) 2022 Free Software Foundation, Inc.', { kind: 'glibc', version: '2.36', source: 'ldd --version' }],
    ['ldd (GNU libc) 2.28\nCopyright', { kind: 'glibc', version: '2.28', source: 'ldd --version' }],
    ['musl libc (x86_64)\nVersion 1.2.5\nDynamic Program Loader', { kind: 'musl', version: '1.2.5', source: 'ldd --version' }],
    ['something else', undefined],
  ])('ldd %j', (out, fact) => {
    expect(parseLddVersion(out)).toEqual(fact);
  });
});

describe('readLibc from files', () => {
  let n = 0;
  async function root(files: Record<string, string | Buffer | { link: string }>): Promise<string> {
    const dir = path.join(tmp, `root-${n++}`);
    for (const [p, content] of Object.entries(files)) {
      const at = path.join(dir, p);
      await mkdir(path.dirname(at), { recursive: true });
      if (typeof content === 'string' || Buffer.isBuffer(content)) await writeFile(at, content);
      else await symlink(content.link, at);
    }
    await mkdir(dir, { recursive: true });
    return dir;
  }

  it('takes the version from the pre-2.34 file name libc.so.6 links to', async () => {
    const r = await root({ 'lib/x86_64-linux-gnu/libc-2.31.so': '\x7fELF', 'lib/x86_64-linux-gnu/libc.so.6': { link: 'libc-2.31.so' } });
    expect(await readLibc(r, 'amd64')).toEqual({ kind: 'glibc', version: '2.31', source: '/lib/x86_64-linux-gnu/libc.so.6 -> /lib/x86_64-linux-gnu/libc-2.31.so' });
  });

  it('finds the banner inside libc.so.6, across a chunk boundary, through a usr-merge link', async () => {
    const banner = 'GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.';
    // Put the banner across the 1 MiB read boundary.
    const before = Buffer.alloc(1024 * 1024 - 20, 0x41);
    const r = await root({ 'usr/lib/aarch64-linux-gnu/libc.so.6': Buffer.concat([before, Buffer.from(banner), Buffer.alloc(100)]), lib: { link: 'usr/lib' } });
    expect(await readLibc(r, 'arm64')).toMatchObject({ kind: 'glibc', version: '2.36' });
  });

  it('stops scanning at the bound', async () => {
    const file = path.join(tmp, 'big');
    await writeFile(file, Buffer.concat([Buffer.alloc(3 * 1024 * 1024), Buffer.from('GNU C Library (x) stable release version 2.40.')]));
    expect(await scanForBanner(file, 2 * 1024 * 1024)).toBeUndefined();
    expect(await scanForBanner(file)).toBe('2.40');
  });

  it('recognises musl by its loader', async () => {
    const r = await root({ 'lib/ld-musl-x86_64.so.1': '\x7fELF' });
    expect(await readLibc(r, 'amd64')).toEqual({ kind: 'musl', source: '/lib/ld-musl-x86_64.so.1' });
  });

  it('says when there is no C library (a static busybox image)', async () => {
    const r = await root({ 'bin/busybox': '\x7fELF' });
    expect(await readLibc(r, 'amd64')).toMatchObject({ kind: 'unknown', detail: expect.stringMatching(/no libc\.so\.6/) });
  });

  it('never follows an absolute link out of the image', async () => {
    // /lib/x86_64-linux-gnu/libc.so.6 -> /lib/x86_64-linux-gnu/libc-2.36.so must resolve inside the root.
    const r = await root({ 'lib/x86_64-linux-gnu/libc.so.6': { link: '/lib/x86_64-linux-gnu/libc-9.99.so' } });
    expect(await readLibc(r, 'amd64')).toMatchObject({ kind: 'unknown' });
  });
});
