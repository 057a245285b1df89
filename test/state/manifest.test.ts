import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  assertNodePath, backupForeignFile, backupReason, BackupError, BACKUPS_DIR, diffFiles, type Manifest, ManifestError,
  MANIFEST_PATH, observeFiles, parseManifest, readManifest, restoreBackup, serializeManifest, writeManifest,
} from '../../src/state/manifest.ts';

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const A = sha256('a');
const B = sha256('b');

function manifest(files: Manifest['files'] = {}): Manifest {
  return {
    schemaVersion: 1,
    nodePrepVersion: '0.1.0',
    installedAt: '2026-01-01T00:00:00.000Z',
    arch: 'amd64',
    prefix: '/usr/local',
    components: { runc: { version: '1.3.0', asset: 'runc.amd64', sha256: A }, containerd: { version: '2.2.0', asset: 'containerd-2.2.0-linux-amd64.tar.gz', sha256: B } },
    files,
    backups: {},
  };
}

let root: string;
const r = (nodePath: string) => path.join(root, nodePath);
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'np-manifest-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('readManifest / writeManifest', () => {
  it('reads nothing from a root node-prep never touched', async () => {
    expect(await readManifest(root)).toBeUndefined();
  });

  it('writes under <root>/var/lib/node-prep, 0644, stable key order, and reads it back', async () => {
    const m = manifest({ '/usr/local/sbin/runc': { sha256: A, mode: 0o755, component: 'runc' }, '/etc/crictl.yaml': { sha256: B, mode: 0o644, component: 'node' } });
    await writeManifest(root, m);
    const file = r(MANIFEST_PATH);
    expect((await stat(file)).mode & 0o7777).toBe(0o644);
    expect(await readManifest(root)).toEqual(m);
    const text = await readFile(file, 'utf8');
    expect(text.indexOf('/etc/crictl.yaml')).toBeLessThan(text.indexOf('/usr/local/sbin/runc'));
    expect(text.indexOf('"containerd"')).toBeLessThan(text.indexOf('"runc"'));
    expect(serializeManifest(m)).toBe(text); // byte-identical on a second run
    expect(await readdir(root)).toEqual(['var']);
  });

  it.each([
    ['not JSON', '{"schemaVersion": 1,', /not valid JSON/],
    ['not an object', '[]', /not a JSON object/],
    ['wrong schema', '{"schemaVersion": 0}', /schemaVersion is not 1/],
    ['a bad file record', JSON.stringify({ ...manifest(), files: { '/x': { sha256: 'nothex', mode: 493, component: 'runc' } } }), /files\["\/x"\]/],
    ['a bad backup record', JSON.stringify({ ...manifest(), backups: { '/x': { backupPath: '/y', sha256: A, reason: 'whim' } } }), /backups\["\/x"\]/],
  ])('refuses a manifest with %s, naming the file', async (_name, text, why) => {
    await mkdir(path.dirname(r(MANIFEST_PATH)), { recursive: true });
    await writeFile(r(MANIFEST_PATH), text);
    const err = await readManifest(root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).code).toBe('MANIFEST_CORRUPT');
    expect((err as Error).message).toContain(r(MANIFEST_PATH));
    expect((err as Error).message).toMatch(why);
    expect((err as ManifestError).hint).toMatch(/move it aside/);
  });

  it('says so when a newer node-prep wrote the record', () => {
    expect(() => parseManifest(JSON.stringify({ ...manifest(), schemaVersion: 2 }))).toThrow(expect.objectContaining({ code: 'MANIFEST_TOO_NEW' }));
  });
});

describe('diffFiles', () => {
  const m = manifest({
    '/usr/local/bin/containerd': { sha256: A, mode: 0o755, component: 'containerd' },
    '/usr/local/bin/ctr': { sha256: A, mode: 0o755, component: 'containerd' },
    '/etc/crictl.yaml': { sha256: B, mode: 0o644, component: 'node' },
    '/opt/cni/bin/bridge': { sha256: A, mode: 0o755, component: 'cni' },
  });
  it('lists changed and missing files, sorted, and ignores paths nobody looked at', () => {
    const observed = new Map<string, string | undefined>([
      ['/usr/local/bin/containerd', A],
      ['/usr/local/bin/ctr', B],
      ['/etc/crictl.yaml', undefined],
    ]);
    expect(diffFiles(m, observed)).toEqual([
      { kind: 'missing', path: '/etc/crictl.yaml', component: 'node', expected: B },
      { kind: 'changed', path: '/usr/local/bin/ctr', component: 'containerd', expected: A, actual: B },
    ]);
  });
  it('is empty when everything matches', () => {
    expect(diffFiles(m, new Map(Object.entries(m.files).map(([p, f]) => [p, f.sha256])))).toEqual([]);
  });
});

describe('backupReason', () => {
  const m = manifest({ '/etc/crictl.yaml': { sha256: A, mode: 0o644, component: 'node' } });
  it.each([
    [m, '/etc/crictl.yaml', undefined, undefined],
    [m, '/etc/crictl.yaml', A, undefined],
    [m, '/etc/crictl.yaml', B, 'modified'],
    [m, '/etc/containerd/config.toml', B, 'foreign'],
    [undefined, '/etc/containerd/config.toml', B, 'foreign'],
  ])('case %#', (man, p, sha, reason) => expect(backupReason(man, p, sha)).toBe(reason));
});

describe('observeFiles', () => {
  it('hashes what is there under the root and maps the rest to undefined', async () => {
    await mkdir(r('/etc'), { recursive: true });
    await writeFile(r('/etc/crictl.yaml'), 'a');
    await mkdir(r('/etc/dir'));
    const seen = await observeFiles(root, ['/etc/crictl.yaml', '/etc/missing', '/etc/dir']);
    expect([...seen]).toEqual([['/etc/crictl.yaml', A], ['/etc/missing', undefined], ['/etc/dir', undefined]]);
  });
});

describe('backupForeignFile / restoreBackup', () => {
  const CONFIG = '/etc/containerd/config.toml';
  const OLD = new Date('2021-01-01T00:00:00Z');
  async function foreign(data = 'version = 2 # hand-written') {
    await mkdir(path.dirname(r(CONFIG)), { recursive: true });
    await writeFile(r(CONFIG), data);
    await chmod(r(CONFIG), 0o600);
    await utimes(r(CONFIG), OLD, OLD);
  }

  it('copies the file under backups/<nodePath> with its mode and mtime, and never overwrites a backup', async () => {
    await foreign();
    const first = await backupForeignFile(root, CONFIG);
    expect(first).toEqual({ backupPath: `${BACKUPS_DIR}${CONFIG}`, sha256: sha256('version = 2 # hand-written'), reason: 'foreign' });
    const st = await stat(r(first!.backupPath));
    expect(st.mode & 0o7777).toBe(0o600);
    expect(st.mtime).toEqual(OLD);
    expect((await stat(r(BACKUPS_DIR))).mode & 0o7777).toBe(0o700);
    expect(await readFile(r(CONFIG), 'utf8')).toBe('version = 2 # hand-written'); // the original stays until replaced

    await writeFile(r(CONFIG), 'edited later');
    const second = await backupForeignFile(root, CONFIG, 'modified');
    expect(second).toMatchObject({ backupPath: `${BACKUPS_DIR}${CONFIG}.1`, reason: 'modified' });
    expect(await readFile(r(first!.backupPath), 'utf8')).toBe('version = 2 # hand-written');
    expect((await readdir(path.dirname(r(first!.backupPath)))).sort()).toEqual(['config.toml', 'config.toml.1']);
  });

  it('returns undefined when there is nothing to keep, and refuses a symlink', async () => {
    expect(await backupForeignFile(root, CONFIG)).toBeUndefined();
    await mkdir(path.dirname(r(CONFIG)), { recursive: true });
    await symlink('/etc/passwd', r(CONFIG));
    await expect(backupForeignFile(root, CONFIG)).rejects.toBeInstanceOf(BackupError);
  });

  it('restores the backup over what node-prep wrote, then drops the copy', async () => {
    await foreign();
    const record = (await backupForeignFile(root, CONFIG))!;
    await writeFile(r(CONFIG), 'node-prep config');
    await restoreBackup(root, CONFIG, record);
    expect(await readFile(r(CONFIG), 'utf8')).toBe('version = 2 # hand-written');
    const st = await stat(r(CONFIG));
    expect(st.mode & 0o7777).toBe(0o600);
    expect(st.mtime).toEqual(OLD);
    await expect(stat(r(record.backupPath))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses to restore a backup that changed since it was made', async () => {
    await foreign();
    const record = (await backupForeignFile(root, CONFIG))!;
    await writeFile(r(record.backupPath), 'tampered');
    await writeFile(r(CONFIG), 'node-prep config');
    await expect(restoreBackup(root, CONFIG, record)).rejects.toThrow(/has sha256 .* the manifest recorded/);
    expect(await readFile(r(CONFIG), 'utf8')).toBe('node-prep config');
  });

  it('refuses a recorded backup path outside the backups dir', async () => {
    await expect(restoreBackup(root, CONFIG, { backupPath: '/etc/shadow', sha256: A, reason: 'foreign' })).rejects.toThrow(/outside/);
  });
});

describe('assertNodePath', () => {
  it.each(['relative/path', '/etc/../../x', '/etc//x', '/etc/x/', '/'])('rejects %s', (p) => expect(() => assertNodePath(p)).toThrow());
  it('accepts a normal node path', () => expect(() => assertNodePath('/usr/local/bin/containerd')).not.toThrow());
});
