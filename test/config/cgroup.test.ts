import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroupDriver } from '../../src/config/cgroup.ts';
import { resolveInRoot } from '../../src/node/resolve.ts';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'node-prep-cgroup-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

type Entry = { file: string } | { link: string; to: string } | { hardlink: string; to: string };
let n = 0;
/** A fake image root: files, symlinks (targets as the image sees them) and hard links. */
async function image(entries: Entry[]): Promise<string> {
  const root = path.join(tmp, `image-${n++}`);
  await mkdir(root);
  for (const e of entries) {
    const at = path.join(root, 'file' in e ? e.file : 'link' in e ? e.link : e.hardlink);
    await mkdir(path.dirname(at), { recursive: true });
    if ('file' in e) await writeFile(at, '#!/bin/sh\n');
    else if ('link' in e) await symlink(e.to, at);
    else await link(path.join(root, e.to), at);
  }
  return root;
}

describe('detectCgroupDriver under --root', () => {
  it.each<[string, Entry[], 'systemd' | 'cgroupfs', RegExp]>([
    ['Debian: /sbin/init -> /lib/systemd/systemd', [{ file: 'lib/systemd/systemd' }, { link: 'sbin/init', to: '/lib/systemd/systemd' }], 'systemd', /is systemd \(\/lib\/systemd\/systemd/],
    ['Fedora: /sbin/init -> ../lib/systemd/systemd, usr-merged', [
      { file: 'usr/lib/systemd/systemd' }, { link: 'usr/sbin/init', to: '../lib/systemd/systemd' },
      { link: 'sbin', to: 'usr/sbin' }, { link: 'lib', to: 'usr/lib' },
    ], 'systemd', /\/usr\/lib\/systemd\/systemd/],
    ['usr-merged, absolute /sbin/init -> /lib/systemd/systemd through /lib -> usr/lib', [
      { file: 'usr/lib/systemd/systemd' }, { link: 'lib', to: 'usr/lib' }, { link: 'sbin', to: 'usr/sbin' },
      { link: 'usr/sbin/init', to: '/lib/systemd/systemd' },
    ], 'systemd', /is systemd \(\/usr\/lib\/systemd\/systemd/],
    ['a hard link to systemd', [{ file: 'lib/systemd/systemd' }, { hardlink: 'sbin/init', to: 'lib/systemd/systemd' }], 'systemd', /same file as \/lib\/systemd\/systemd/],
    ['busybox init', [{ file: 'bin/busybox' }, { link: 'sbin/init', to: '/bin/busybox' }], 'cgroupfs', /is \/bin\/busybox in the image, not systemd/],
    ['systemd installed, /sbin/init absent (no systemd-sysv)', [{ file: 'lib/systemd/systemd' }], 'cgroupfs', /does not exist/],
    ['an empty root', [], 'cgroupfs', /does not exist/],
    ['a dangling /sbin/init', [{ link: 'sbin/init', to: '/lib/systemd/systemd' }], 'cgroupfs', /does not exist/],
    ['a symlink loop', [{ link: 'sbin/init', to: '/sbin/init2' }, { link: 'sbin/init2', to: 'init' }], 'cgroupfs', /too many levels/],
  ])('%s → %s', async (_name, entries, driver, reason) => {
    const decision = await detectCgroupDriver({ root: await image(entries) });
    expect(decision.driver).toBe(driver);
    expect(decision.reason).toMatch(reason);
  });

  it('resolves absolute links inside the image, never on this host', async () => {
    // Whether or not this host has /lib/systemd/systemd, the image has none.
    const root = await image([{ link: 'sbin/init', to: '/lib/systemd/systemd' }]);
    expect(await resolveInRoot(root, '/sbin/init')).toEqual({ kind: 'missing', detail: 'ENOENT at /lib' });
  });

  it('stops `..` at the image root', async () => {
    const root = await image([{ file: 'lib/systemd/systemd' }, { link: 'sbin/init', to: '../../../../../lib/systemd/systemd' }]);
    expect(await resolveInRoot(root, '/sbin/init')).toMatchObject({ kind: 'found', path: '/lib/systemd/systemd' });
  });
});

describe('detectCgroupDriver on this machine', () => {
  const proc = async (comm: string | undefined) => {
    const dir = path.join(tmp, `proc-${n++}`);
    await mkdir(path.join(dir, '1'), { recursive: true });
    if (comm !== undefined) await writeFile(path.join(dir, '1/comm'), `${comm}\n`);
    return dir;
  };
  it.each<[string | undefined, 'systemd' | 'cgroupfs', RegExp]>([
    ['systemd', 'systemd', /PID 1 is systemd/],
    ['bash', 'cgroupfs', /PID 1 is "bash", not systemd/],
    ['tini', 'cgroupfs', /PID 1 is "tini"/],
    [undefined, 'cgroupfs', /cannot read .*1\/comm \(ENOENT\)/],
  ])('PID 1 %s → %s', async (comm, driver, reason) => {
    const decision = await detectCgroupDriver({ root: '/', procDir: await proc(comm) });
    expect(decision).toEqual({ driver, reason: expect.stringMatching(reason) });
  });

  it('--cgroup-driver wins', async () => {
    expect(await detectCgroupDriver({ root: '/', explicit: 'cgroupfs', procDir: await proc('systemd') })).toEqual({
      driver: 'cgroupfs',
      reason: '--cgroup-driver cgroupfs was given',
    });
    expect((await detectCgroupDriver({ root: await image([]), explicit: 'systemd' })).driver).toBe('systemd');
  });
});
