import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InstallTargetError, TransactionError } from '../../src/install/errors.ts';
import { RootFs } from '../../src/install/root-fs.ts';
import { Transaction } from '../../src/install/transaction.ts';

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const OLD_TIME = new Date('2020-02-02T02:02:02Z');

let root: string;
let backupDir: string;
let fs: RootFs;
const p = (rel: string) => path.join(root, rel);
/** The node path of `rel`, as the transaction takes it. */
const n = (rel: string) => `/${rel}`;
const BACKUPS = '/var/lib/node-prep/tx';

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'np-tx-'));
  backupDir = p('var/lib/node-prep/tx');
  fs = await RootFs.open(root);
});
afterEach(async () => {
  await fs.close();
  await rm(root, { recursive: true, force: true });
});

async function seed(rel: string, data: string, mode = 0o755): Promise<void> {
  await mkdir(path.dirname(p(rel)), { recursive: true });
  await writeFile(p(rel), data);
  await chmod(p(rel), mode);
  await utimes(p(rel), OLD_TIME, OLD_TIME);
}

async function snapshot(rel: string) {
  const st = await stat(p(rel));
  return { data: await readFile(p(rel), 'utf8'), mode: st.mode & 0o7777, mtime: st.mtimeMs, ino: st.ino };
}

const exists = (rel: string) => lstat(p(rel)).then(() => true, () => false);

describe('Transaction.commit', () => {
  it('reports created, replaced, unchanged and removed, and leaves unchanged files untouched', async () => {
    await seed('usr/local/bin/containerd', 'old containerd');
    await seed('usr/local/bin/ctr', 'same ctr');
    await seed('usr/local/bin/stale', 'stale');
    const ctrBefore = await snapshot('usr/local/bin/ctr');
    await writeFile(p('staged-containerd'), 'new containerd');
    const top = await fs.dir('/');

    const tx = new Transaction({ fs, backupDir: BACKUPS });
    tx.put(n('usr/local/bin/containerd'), { from: { dir: top, name: 'staged-containerd' }, sha256: sha256('new containerd') }, 0o755)
      .put(n('usr/local/bin/ctr'), { data: 'same ctr' }, 0o755)
      .put(n('opt/cni/bin/bridge'), { data: 'bridge', sha256: sha256('bridge') }, 0o755)
      .remove(n('usr/local/bin/stale'))
      .remove(n('usr/local/bin/never-there'));
    const results = await tx.commit();

    expect(results).toEqual([
      { path: n('usr/local/bin/containerd'), outcome: { kind: 'replaced', previousSha256: sha256('old containerd') } },
      { path: n('usr/local/bin/ctr'), outcome: { kind: 'unchanged' } },
      { path: n('opt/cni/bin/bridge'), outcome: { kind: 'created' } },
      { path: n('usr/local/bin/stale'), outcome: { kind: 'removed', previousSha256: sha256('stale') } },
      { path: n('usr/local/bin/never-there'), outcome: { kind: 'unchanged' } },
    ]);
    expect(await readFile(p('usr/local/bin/containerd'), 'utf8')).toBe('new containerd');
    expect(await snapshot('usr/local/bin/ctr')).toEqual(ctrBefore); // same inode, same mtime: not touched
    expect(await exists('usr/local/bin/stale')).toBe(false);
    await tx.discardBackups();
    expect(await readdir(backupDir).catch(() => [])).toEqual([]);
    await top.close();
  });

  it('treats the same content with another mode as a replacement', async () => {
    await seed('usr/local/bin/crictl', 'crictl', 0o700);
    const tx = new Transaction({ fs, backupDir: BACKUPS }).put(n('usr/local/bin/crictl'), { data: 'crictl' }, 0o755);
    expect((await tx.commit())[0]!.outcome).toEqual({ kind: 'replaced', previousSha256: sha256('crictl') });
    expect((await stat(p('usr/local/bin/crictl'))).mode & 0o7777).toBe(0o755);
  });

  it('on a failure midway restores every earlier file byte for byte and removes the new ones', async () => {
    await seed('usr/local/bin/containerd', 'old containerd', 0o750);
    await seed('usr/local/bin/ctr', 'same ctr');
    await seed('usr/local/bin/nerdctl', 'old nerdctl');
    await seed('etc/containerd', 'a regular file where a directory should be', 0o644);
    const before = {
      containerd: await snapshot('usr/local/bin/containerd'),
      ctr: await snapshot('usr/local/bin/ctr'),
      nerdctl: await snapshot('usr/local/bin/nerdctl'),
    };

    const tx = new Transaction({ fs, backupDir: BACKUPS })
      .put(n('usr/local/bin/containerd'), { data: 'new containerd' }, 0o755)
      .put(n('usr/local/bin/ctr'), { data: 'same ctr' }, 0o755)
      .put(n('opt/cni/bin/bridge'), { data: 'bridge' }, 0o755)
      .remove(n('usr/local/bin/nerdctl'))
      .put(n('etc/containerd/config.toml'), { data: 'version = 3' }, 0o644) // fails: parent is a file
      .put(n('usr/local/sbin/runc'), { data: 'runc' }, 0o755); // never reached

    const err = await tx.commit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionError);
    expect((err as TransactionError).failedPath).toBe(p('etc/containerd/config.toml'));
    expect((err as TransactionError).rollbackErrors).toEqual([]);
    expect((err as Error).message).toMatch(/rolled back/);

    expect(await snapshot('usr/local/bin/containerd')).toEqual(before.containerd); // same inode back, mode, mtime
    expect(await snapshot('usr/local/bin/ctr')).toEqual(before.ctr);
    expect(await snapshot('usr/local/bin/nerdctl')).toEqual(before.nerdctl);
    expect(await exists('opt/cni/bin/bridge')).toBe(false);
    expect(await exists('opt')).toBe(false); // directories it created go too
    expect(await exists('usr/local/sbin')).toBe(false);
    expect(await readdir(backupDir).catch(() => [])).toEqual([]);
    expect((await readdir(p('usr/local/bin'))).sort()).toEqual(['containerd', 'ctr', 'nerdctl']); // no temp files left
  });

  it('refuses to replace a directory or a symlink, and rolls back what came before', async () => {
    await seed('usr/local/bin/containerd', 'old');
    await mkdir(p('usr/local/bin/ctr'));
    await symlink('/etc/passwd', p('usr/local/bin/runc'));
    for (const target of ['usr/local/bin/ctr', 'usr/local/bin/runc']) {
      const tx = new Transaction({ fs, backupDir: BACKUPS }).put(n('usr/local/bin/containerd'), { data: 'new' }, 0o755).put(n(target), { data: 'x' }, 0o755);
      const err = await tx.commit().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransactionError);
      expect((err as Error).cause).toBeInstanceOf(InstallTargetError);
      expect(await readFile(p('usr/local/bin/containerd'), 'utf8')).toBe('old');
    }
    expect((await lstat(p('usr/local/bin/runc'))).isSymbolicLink()).toBe(true);
  });

  it('can roll back after a successful commit (a smoke test that failed)', async () => {
    await seed('usr/local/bin/containerd', 'old');
    const tx = new Transaction({ fs, backupDir: BACKUPS })
      .put(n('usr/local/bin/containerd'), { data: 'new' }, 0o755)
      .put(n('usr/local/sbin/runc'), { data: 'runc' }, 0o755);
    await tx.commit();
    expect(await tx.rollback()).toEqual([]);
    expect(await readFile(p('usr/local/bin/containerd'), 'utf8')).toBe('old');
    expect(await exists('usr/local/sbin/runc')).toBe(false);
    expect(await exists('usr/local/sbin')).toBe(false);
  });

  it('rejects two changes to one path and changes after commit', async () => {
    const tx = new Transaction({ fs, backupDir: BACKUPS }).put(n('a'), { data: '1' }, 0o644);
    expect(() => tx.remove(n('a'))).toThrow(/changed twice/);
    await tx.commit();
    expect(() => tx.put(n('b'), { data: '2' }, 0o644)).toThrow(/already committed/);
    await expect(tx.commit()).rejects.toThrow(/already committed/);
  });

  it('a second identical transaction writes nothing', async () => {
    const make = () => new Transaction({ fs, backupDir: BACKUPS }).put(n('etc/crictl.yaml'), { data: 'runtime-endpoint: x' }, 0o644);
    const first = make();
    await first.commit();
    await first.discardBackups();
    await utimes(p('etc/crictl.yaml'), OLD_TIME, OLD_TIME);
    const before = await snapshot('etc/crictl.yaml');
    expect((await make().commit())[0]!.outcome).toEqual({ kind: 'unchanged' });
    expect(await snapshot('etc/crictl.yaml')).toEqual(before);
    expect(await exists('var/lib/node-prep/tx')).toBe(false); // no backup dir made when nothing was replaced
  });

  // Backups on another file system cannot be hard links: the copy must keep content, owner, mode
  // (set-id bits included) and mtime. A tmpfs mounted on the backup folder makes that other file system.
  const isRoot = process.getuid?.() === 0;
  it.skipIf(!isRoot)('restores from copied backups when the backup dir is on another file system, set-id bits included', async () => {
    await mkdir(backupDir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'np-tx-test', backupDir]);
    try {
      await seed('usr/local/bin/containerd', 'old', 0o4750);
      await chown(p('usr/local/bin/containerd'), 65534, 65534);
      await chmod(p('usr/local/bin/containerd'), 0o4750); // chown clears set-id bits: set them again
      const before = await snapshot('usr/local/bin/containerd');
      expect(before.mode).toBe(0o4750);
      const tx = new Transaction({ fs, backupDir: BACKUPS })
        .put(n('usr/local/bin/containerd'), { data: 'new' }, 0o755)
        .put(n('usr/local/bin/containerd-shim-runc-v2/x'), { data: 'x' }, 0o755); // its parent is made a file below
      await writeFile(p('usr/local/bin/containerd-shim-runc-v2'), 'file, not dir');
      await expect(tx.commit()).rejects.toBeInstanceOf(TransactionError);
      const after = await snapshot('usr/local/bin/containerd');
      expect({ ...after, ino: 0 }).toEqual({ ...before, ino: 0 }); // a copy: new inode, same bytes, mode and mtime
      expect((await stat(p('usr/local/bin/containerd'))).uid).toBe(65534);
    } finally {
      execFileSync('umount', [backupDir]);
    }
  });
});
