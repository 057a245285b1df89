/**
 * An image root owned by someone less trusted than root, tried as they would: symlinked folders at
 * every depth node-prep uses (its state, backups and transaction folders, every target folder), for
 * install, uninstall and purge; a helper process swapping a folder and a file while a real install
 * runs against the throttled test server; a download cache another uid can write. Each case keeps a
 * victim folder outside the root and holds it to being byte for byte unchanged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { sha256 } from '../support/fixtures.ts';
import { snapshot } from '../support/layout.ts';
import type { ReleaseServer } from '../support/release-server.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';

const isRoot = process.getuid?.() === 0;

let mirror: SyntheticMirror;
let gh: ReleaseServer;
let work: string;
let sums: string;
let root: string;
let victim: string;

const source = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64'];
const install = (...extra: string[]) => runCli(['install', '--root', root, '--no-start', '--skip-smoke', ...source(), '--cache-dir', path.join(work, 'cache'), ...extra]);

beforeAll(async () => {
  mirror = await startSyntheticMirror('np-hostile-', { signer: null });
  ({ gh, work, sums } = mirror);
});
afterAll(() => mirror.close());
beforeEach(async () => {
  root = await mkdtemp(path.join(work, 'root-'));
  // The victim looks like the build host's own folders: node-prep must never write, back up,
  // restore or delete anything in it.
  victim = await mkdtemp(path.join(work, 'victim-'));
  await mkdir(path.join(victim, 'containerd'), { recursive: true });
  await writeFile(path.join(victim, 'containerd/config.toml'), 'the build host’s own config\n');
  await writeFile(path.join(victim, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
});

/** What an install into a fresh root writes: every file, for comparison with the victim. */
async function installedFiles(dir: string): Promise<string[]> {
  return Object.entries(await snapshot(dir)).filter(([, e]) => e.type === 'file').map(([p]) => p).sort();
}

describe.skipIf(!isRoot)('a symlink that leaves the root, at every depth node-prep uses', () => {
  // Each place is replaced by a link to the victim before the run; the folder's own parents exist.
  const places: Array<[string, 'absolute' | 'relative']> = [
    ['var/lib/node-prep', 'absolute'],
    ['var/lib/node-prep/backups', 'absolute'],
    ['var/lib/node-prep/backups/etc', 'absolute'],
    ['var/lib/node-prep/backups/etc/containerd', 'absolute'],
    ['var/lib/node-prep/tx', 'absolute'],
    ['var/lib', 'absolute'],
    ['etc', 'absolute'],
    ['etc', 'relative'],
    ['etc/containerd', 'absolute'],
    ['etc/systemd/system', 'absolute'],
    ['etc/systemd/system/multi-user.target.wants', 'absolute'],
    ['etc/sysctl.d', 'absolute'],
    ['etc/modules-load.d', 'relative'],
    ['usr/local', 'absolute'],
    ['usr/local/bin', 'absolute'],
    ['usr/local/sbin', 'relative'],
    ['opt/cni/bin', 'absolute'],
  ];

  it.each(places)('install refuses %s (%s link), names it, and writes nothing through it', async (place, kind) => {
    // A foreign config makes install back it up, so the backups folders are used.
    await mkdir(path.join(root, 'etc/containerd'), { recursive: true });
    await writeFile(path.join(root, 'etc/containerd/config.toml'), 'version = 2\n# the image’s own\n');
    const at = path.join(root, place);
    await rm(at, { recursive: true, force: true });
    await mkdir(path.dirname(at), { recursive: true });
    const target = kind === 'absolute' ? victim : path.relative(path.dirname(at), victim);
    await symlink(target, at);
    const before = await snapshot(victim);

    const r = await install();
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(at);
    expect(r.stderr).toMatch(/leads out(side)? of the root|leads outside the root|no link belongs/);
    expect(await snapshot(victim)).toEqual(before);
  });

  it('a relative link that stays inside the root is followed: the files land where the image will see them', async () => {
    await mkdir(path.join(root, 'usr'), { recursive: true });
    await mkdir(path.join(root, 'opt/local/bin'), { recursive: true });
    await symlink('../opt/local', path.join(root, 'usr/local'));
    const r = await install();
    expect(r.code, r.stderr).toBe(0);
    expect((await lstat(path.join(root, 'opt/local/bin/containerd'))).isFile()).toBe(true);
    expect((await lstat(path.join(root, 'usr/local'))).isSymbolicLink()).toBe(true);
  });

  it('the old in-root cache is not used by default: nothing of the download is left in the image', async () => {
    const r = await runCli(['install', '--root', root, '--no-start', '--skip-smoke', ...source()]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readdir(path.join(root, 'var/cache')).catch(() => [])).toEqual([]);
    expect((await readdir(path.join(root, 'var/lib/node-prep'))).sort()).toEqual(['manifest.json']);
  });
});

describe.skipIf(!isRoot)('uninstall and purge through links planted after the install', () => {
  /** Install, then move `place` out to the victim and leave a link to it: the files it lists are there, byte for byte. */
  async function plant(place: string): Promise<string> {
    expect((await install()).code).toBe(0);
    const at = path.join(root, place);
    const outside = path.join(victim, 'moved');
    await cp(at, outside, { recursive: true, preserveTimestamps: true });
    await rm(at, { recursive: true, force: true });
    await symlink(outside, at);
    return outside;
  }

  it.each(['usr/local/bin', 'etc/containerd', 'etc', 'var/lib/node-prep/backups'])('uninstall --force refuses when %s leads outside, and deletes nothing there', async (place) => {
    if (place === 'var/lib/node-prep/backups') {
      // A backup to restore: the image had its own config.
      await mkdir(path.join(root, 'etc/containerd'), { recursive: true });
      await writeFile(path.join(root, 'etc/containerd/config.toml'), 'version = 2\n');
    }
    await plant(place);
    const before = await snapshot(victim);
    const r = await runCli(['uninstall', '--root', root, '--force']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(path.join(root, place));
    expect(await snapshot(victim)).toEqual(before);
  });

  it('uninstall --purge refuses when var/lib/containerd leads outside, and removes nothing there', async () => {
    expect((await install()).code).toBe(0);
    await mkdir(path.join(victim, 'containerd-state/io.containerd.content.v1.content'), { recursive: true });
    await writeFile(path.join(victim, 'containerd-state/io.containerd.content.v1.content/blob'), 'the host’s images');
    await mkdir(path.join(root, 'var/lib'), { recursive: true });
    await rename(path.join(victim, 'containerd-state'), path.join(victim, 'var-lib-containerd'));
    await symlink(path.join(victim, 'var-lib-containerd'), path.join(root, 'var/lib/containerd'));
    const before = await snapshot(victim);
    const r = await runCli(['uninstall', '--root', root, '--purge', '--yes']);
    // The link itself is inside the root: purge removes the link, never what it points to.
    expect(await snapshot(victim)).toEqual(before);
    expect(r.code, r.stderr).toBe(0);
    expect(await lstat(path.join(root, 'var/lib/containerd')).catch(() => undefined)).toBeUndefined();
  });
});

/** A loop in a child process: run `script` (bash) until killed. */
function loop(script: string, opts: { uid?: number } = {}): ChildProcess {
  const cmd = opts.uid !== undefined ? ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', 'bash', '-c', script] : ['bash', '-c', script];
  return spawn(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe.skipIf(!isRoot)('races by the owner of the root while a real install runs', () => {
  let slow: SyntheticMirror;
  beforeAll(async () => {
    // Slow enough that the swaps land during the downloads, the staging and the commit.
    slow = await startSyntheticMirror('np-hostile-slow-', { signer: null, bytesPerSecond: 400_000 });
  });
  afterAll(() => slow.close());
  const slowInstall = (...extra: string[]) =>
    runCli(['install', '--root', root, '--no-start', '--skip-smoke', '--mirror', slow.gh.url, '--github-api', slow.gh.apiUrl, '--checksums', slow.sums, '--arch', 'amd64', '--cache-dir', path.join(slow.work, 'cache'), ...extra], { timeoutMs: 120_000 });

  it('swapping etc between a folder inside the root and a link to the victim never gets a byte into the victim', async () => {
    // etc is a relative link to etc.real (allowed); the loop flips it to the victim and back, atomically.
    await mkdir(path.join(root, 'etc.real'), { recursive: true });
    await symlink('etc.real', path.join(root, 'etc'));
    const before = await snapshot(victim);
    const swapper = loop(`cd '${root}'; while :; do ln -sfn '${victim}' etc.tmp && mv -T etc.tmp etc; ln -sfn etc.real etc.tmp && mv -T etc.tmp etc; done`);
    const outcomes: Array<number | null> = [];
    try {
      for (let i = 0; i < 3; i++) {
        await rm(path.join(root, 'var'), { recursive: true, force: true });
        outcomes.push((await slowInstall()).code);
      }
    } finally {
      await stop(swapper);
    }
    expect(await snapshot(victim)).toEqual(before);
    // Each run either refused (the link was there when a write happened) or installed into etc.real.
    for (const code of outcomes) expect([0, 1]).toContain(code);
    expect(await readdir(victim)).toEqual(['containerd', 'passwd']);
  }, 300_000);

  it('flipping a foreign config.toml between a file and a link to a root-only secret never copies the secret', async () => {
    const secret = path.join(victim, 'shadow');
    await writeFile(secret, 'root:$6$secret-hash:19000::::::\n', { mode: 0o600 });
    const dir = path.join(root, 'etc/containerd');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(root, 'config.plain'), 'version = 2\n# the image’s own\n');
    await cp(path.join(root, 'config.plain'), path.join(dir, 'config.toml'));
    const flipper = loop(`cd '${dir}'; while :; do ln -sfn '${secret}' c.tmp && mv -T c.tmp config.toml; cp '${root}/config.plain' c.tmp && mv -T c.tmp config.toml; done`);
    try {
      for (let i = 0; i < 3; i++) {
        await rm(path.join(root, 'var'), { recursive: true, force: true });
        await slowInstall();
      }
    } finally {
      await stop(flipper);
    }
    const backups = path.join(root, 'var/lib/node-prep/backups');
    for (const [rel, e] of Object.entries(await snapshot(backups).catch(() => ({})))) {
      if (e.type !== 'file') continue;
      expect(await readFile(path.join(backups, rel), 'utf8'), rel).not.toContain('secret-hash');
    }
    // Whatever is at config.toml now, no file in the root holds the secret but through the link.
    for (const [rel, e] of Object.entries(await snapshot(root))) {
      if (e.type === 'file') expect(e.sha256, rel).not.toBe(sha256(await readFile(secret)));
    }
  }, 300_000);
});

describe.skipIf(!isRoot)('the smoke test under --root, in an image its owner changed after the install', () => {
  it('never runs a binary that is not the one installed: it is not run at all, and the check says why', async () => {
    expect((await install()).code).toBe(0);
    const marker = path.join(victim, 'ran-as-root');
    // The image's owner swaps a folder on the way to the binaries for one of their own (the rename
    // needs only the parent), with a containerd that would leave a mark if root ran it.
    await rename(path.join(root, 'usr'), path.join(root, 'usr.orig'));
    await cp(path.join(root, 'usr.orig'), path.join(root, 'usr'), { recursive: true });
    await writeFile(path.join(root, 'usr/local/bin/containerd'), `#!/bin/sh\nid > '${marker}'\necho containerd 2.3.4\n`, { mode: 0o755 });
    await writeFile(path.join(root, 'usr/local/bin/containerd-shim-runc-v2'), `#!/bin/sh\nid > '${marker}'\n`, { mode: 0o755 });
    const r = await runCli(['smoke', '--root', root, '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { checks: Array<{ name: string; ok: boolean; detail: string }> };
    expect(report.checks.find((c) => c.name === 'containerd version')?.detail).toMatch(/changed since node-prep installed it.*not run/);
    expect(await lstat(marker).catch(() => undefined)).toBeUndefined();
  });
});

describe.skipIf(!isRoot)('the root path swapped while node-prep runs', () => {
  it('a run works in the one folder its root was when it started, never in two', async () => {
    const ws = await mkdtemp(path.join(work, 'ws-'));
    const a = path.join(ws, 'rootfs.a');
    const b = path.join(ws, 'rootfs.b');
    await mkdir(a);
    await mkdir(b);
    const rootfs = path.join(ws, 'rootfs');
    await symlink('rootfs.a', rootfs);
    const flipper = loop(`cd '${ws}'; while :; do ln -sfn rootfs.b t && mv -T t rootfs; ln -sfn rootfs.a t && mv -T t rootfs; done`);
    try {
      for (let i = 0; i < 4; i++) {
        const r = await runCli(['install', '--root', rootfs, '--no-start', '--skip-smoke', ...source(), '--cache-dir', path.join(work, 'cache')]);
        expect(r.code, r.stderr).toBe(0);
      }
    } finally {
      await stop(flipper);
    }
    // Each folder is either untouched or a whole install: its record, no lock, no drift.
    for (const dir of [a, b]) {
      const files = await installedFiles(dir);
      if (files.length === 0) continue;
      expect(files).toContain('var/lib/node-prep/manifest.json');
      expect(files).not.toContain('var/lib/node-prep/lock');
      const s = JSON.parse((await runCli(['status', '--root', dir, '--json'])).stdout) as { drift: unknown[] };
      expect(s.drift).toEqual([]);
    }
  }, 120_000);

  it('refuses a --root that leads to this machine\'s own /', async () => {
    const link = path.join(work, `to-host-${Date.now()}`);
    await symlink('/', link);
    const r = await runCli(['install', '--root', link, '--no-start', '--skip-smoke', ...source()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("leads to this machine's own /");
  });
});

describe.skipIf(!isRoot)('a download cache another user can write', () => {
  it.each([
    ['owned by uid 65534', async (dir: string) => chown(dir, 65534, 65534)],
    ['writable by everyone', async (dir: string) => chmod(dir, 0o777)],
    ['below a folder uid 65534 owns', async (dir: string) => chown(path.dirname(dir), 65534, 65534)],
  ])('is refused when %s, before anything is downloaded or installed', async (_what, spoil) => {
    const parent = await mkdtemp(path.join(work, 'shared-'));
    const cache = path.join(parent, 'cache');
    await mkdir(cache, { mode: 0o755 });
    await chmod(cache, 0o755);
    await spoil(cache);
    gh.requests.length = 0;
    const r = await runCli(['install', '--root', root, '--no-start', '--skip-smoke', ...source(), '--cache-dir', cache, '--json']);
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout).error ?? JSON.parse(r.stdout);
    expect(JSON.stringify(err)).toContain('CACHE_DIR');
    expect(gh.requests.filter((q) => q.path.includes('/releases/download/'))).toEqual([]);
    expect(await installedFiles(root)).toEqual([]);
  });

  it('files swapped into a cache by its owner (uid 65534) are never installed: every run refuses', async () => {
    const cache = await mkdtemp(path.join(work, 'cache-65534-'));
    await chown(cache, 65534, 65534);
    await chmod(path.dirname(cache), 0o755);
    // The owner keeps planting a fake containerd archive under every name it can guess.
    const evil = path.join(work, 'evil.tar.gz');
    await writeFile(evil, 'not containerd');
    await chmod(evil, 0o644);
    const planter = loop(`mkdir -p '${cache}/sha256' '${cache}/tmp'; while :; do for f in '${cache}'/tmp/* '${cache}'/sha256/*; do [ -e "$f" ] && cp '${evil}' "$f" 2>/dev/null; done; sleep 0.01; done`, { uid: 65534 });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await runCli(['install', '--root', root, '--no-start', '--skip-smoke', ...source(), '--cache-dir', cache]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`belongs to uid 65534`);
      }
    } finally {
      await stop(planter);
    }
    expect(await installedFiles(root)).toEqual([]);
  });
});
