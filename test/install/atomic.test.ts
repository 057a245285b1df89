import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempNameFor, writeAtomic, type AtomicSource } from '../../src/install/atomic.ts';
import { RootFs } from '../../src/install/root-fs.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'np-atomic-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The old path-based call, on top of the root-confined one: `dest` is a host path under `root`. */
async function atomicReplace(dest: string, from: { data: string } | { file: string }, mode: number): Promise<void> {
  const fs = await RootFs.open(root);
  try {
    const rel = `/${path.relative(root, dest)}`;
    await fs.withDir(path.posix.dirname(rel), { create: true }, async (dir) => {
      if ('data' in from) return void (await writeAtomic(dir, path.basename(dest), from, mode));
      const src = `/${path.relative(root, from.file)}`;
      await fs.withDir(path.posix.dirname(src), {}, async (srcDir) => {
        const source: AtomicSource = { from: { dir: srcDir, name: path.basename(from.file) } };
        await writeAtomic(dir, path.basename(dest), source, mode);
      });
    });
  } finally {
    await fs.close();
  }
}

const leftovers = async (dir: string) => (await readdir(dir)).filter((n) => n.includes('.node-prep-'));

describe('atomicReplace', () => {
  it('creates the file and its parents, with exact modes whatever the umask', async () => {
    const dest = path.join(root, 'opt/cni/bin/bridge');
    const old = process.umask(0o077);
    try {
      await atomicReplace(dest, { data: 'bridge' }, 0o755);
    } finally {
      process.umask(old);
    }
    expect(await readFile(dest, 'utf8')).toBe('bridge');
    expect((await stat(dest)).mode & 0o7777).toBe(0o755);
    for (const d of ['opt', 'opt/cni', 'opt/cni/bin']) expect((await stat(path.join(root, d))).mode & 0o7777).toBe(0o755);
    expect(await leftovers(path.dirname(dest))).toEqual([]);
  });

  it('replaces an existing file by rename: a new inode, the old one untouched for whoever holds it', async () => {
    const dest = path.join(root, 'config.toml');
    await writeFile(dest, 'old');
    const before = await stat(dest);
    const src = path.join(root, 'staged');
    await writeFile(src, 'new from file');
    await atomicReplace(dest, { file: src }, 0o644);
    const after = await stat(dest);
    expect(await readFile(dest, 'utf8')).toBe('new from file');
    expect(after.ino).not.toBe(before.ino);
    expect(after.mode & 0o7777).toBe(0o644);
    expect(await readFile(src, 'utf8')).toBe('new from file'); // the source stays for the caller
  });

  it('replaces a symlink at dest instead of writing through it', async () => {
    const target = path.join(root, 'target');
    await writeFile(target, 'must stay');
    const dest = path.join(root, 'link');
    await symlink(target, dest);
    await atomicReplace(dest, { data: 'file now' }, 0o644);
    expect((await lstat(dest)).isFile()).toBe(true);
    expect(await readFile(target, 'utf8')).toBe('must stay');
  });

  it('replaces a binary that is executing, without ETXTBSY', async () => {
    const dest = path.join(root, 'usr/local/bin/containerd');
    await mkdir(path.dirname(dest), { recursive: true });
    await copyFile('/bin/sleep', dest);
    execFileSync('chmod', ['0755', dest]);
    const child = spawn(dest, ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    try {
      // Proof that the file really is busy: writing it in place is what fails on most kernels.
      const inPlace = await writeFile(dest, 'x', { flag: 'r+' }).then(() => 'ok', (e: NodeJS.ErrnoException) => e.code);
      expect(['ETXTBSY', 'ok']).toContain(inPlace);

      await atomicReplace(dest, { data: '#!/bin/sh\necho replaced\n' }, 0o755);
      expect(child.exitCode).toBeNull(); // the old containerd keeps running on its old inode
      expect(execFileSync(dest, { encoding: 'utf8' })).toBe('replaced\n');
      const exe = await readlink(`/proc/${child.pid}/exe`);
      expect(exe).toMatch(/\(deleted\)$/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('removes its temp file when the copy fails and leaves dest alone', async () => {
    const dest = path.join(root, 'ctr');
    await writeFile(dest, 'old');
    await expect(atomicReplace(dest, { file: path.join(root, 'does-not-exist') }, 0o755)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(dest, 'utf8')).toBe('old');
    expect(await leftovers(root)).toEqual([]);
  });

  it('fails when a parent is a regular file', async () => {
    await writeFile(path.join(root, 'etc'), 'not a dir');
    await expect(atomicReplace(path.join(root, 'etc/containerd/config.toml'), { data: 'x' }, 0o644)).rejects.toMatchObject({ code: 'INSTALL_TARGET' });
  });

  it('names temp files hidden and recognisable', () => {
    expect(tempNameFor('containerd')).toMatch(/^\.containerd\.node-prep-[0-9a-f]{12}$/);
  });
});

describe('RootFs.dir with create', () => {
  it('returns only the directories it created, outermost first', async () => {
    await mkdir(path.join(root, 'a'));
    const fs = await RootFs.open(root);
    try {
      expect(await fs.withDir('/a/b/c', { create: true }, async (d) => d.created)).toEqual(['/a/b', '/a/b/c']);
      expect(await fs.withDir('/a/b/c', { create: true }, async (d) => d.created)).toEqual([]);
    } finally {
      await fs.close();
    }
  });
});
