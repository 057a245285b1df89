import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cni } from '../../src/components/cni.ts';
import { containerd } from '../../src/components/containerd.ts';
import type { InstallEntry } from '../../src/components/types.ts';
import { ArchiveRefusedError, MissingMembersError } from '../../src/install/errors.ts';
import { extractMembers, judgeEntry, normalizeMember, stageBareBinary, type ExtractOptions, type MemberSpec, type StagedMember } from '../../src/install/extract.ts';
import { RootFs, type Dir } from '../../src/install/root-fs.ts';
import { dir, entry, file, gnuLongName, pax, tarGz } from './tar-craft.ts';

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const CONTAINERD = containerd.release('2.2.0', 'amd64').install;
const CNI = cni.release('1.9.1', 'amd64').install;
const bin = (name: string): InstallEntry => ({ member: `bin/${name}`, dest: { base: 'prefix', dir: 'bin' }, name, mode: 0o755, required: true });

let work: string;
let staging: string;
let sentinel: string;

beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'np-extract-'));
  staging = path.join(work, 'deep', 'er', 'staging');
  sentinel = path.join(work, 'sentinel');
  await mkdir(sentinel);
  await mkdir(staging, { recursive: true });
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The verified artifact as the stager gets it: its digest as it is now, and a name for messages. */
const input = async (file: string) => ({ file, sha256: sha256(await readFile(file).catch(() => Buffer.alloc(0))), label: path.basename(file) });

/** The staging folder opened as the stager opens it, and each staged member's path for the checks. */
async function inStaging<T>(fn: (dir: Dir) => Promise<T>): Promise<T> {
  const fs = await RootFs.open(staging);
  try {
    return await fs.withDir('/', { private: true }, fn);
  } finally {
    await fs.close();
  }
}
type Staged = StagedMember & { stagedPath: string };
const withPath = (m: StagedMember): Staged => ({ ...m, stagedPath: path.join(staging, m.staged.name) });
const extract = async (archive: string, entries: MemberSpec[], _staging?: string, opts?: ExtractOptions): Promise<Staged[]> =>
  (await inStaging(async (d) => extractMembers(await input(archive), entries, d, opts))).map(withPath);
const stageBare = async (asset: string, entry: MemberSpec): Promise<Staged> => withPath(await inStaging(async (d) => stageBareBinary(await input(asset), entry, d)));

/** Everything under `work` except the archive and the staging dir: must stay exactly this. */
async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    const full = path.join(e.parentPath, e.name);
    if (full.startsWith(staging)) continue;
    out.push(path.relative(root, full));
  }
  return out.sort();
}

async function writeArchive(buf: Buffer): Promise<string> {
  const p = path.join(work, 'release.tar.gz');
  await writeFile(p, buf);
  return p;
}

/** A real archive from node-tar's writer, from files laid out in a temp dir. */
async function packed(files: Record<string, { data: string; mode: number } | 'dir'>, list: string[]): Promise<Buffer> {
  const src = await mkdtemp(path.join(os.tmpdir(), 'np-extract-src-'));
  try {
    for (const [name, f] of Object.entries(files)) {
      const full = path.join(src, name);
      if (f === 'dir') {
        await mkdir(full, { recursive: true });
        continue;
      }
      await mkdir(path.dirname(full), { recursive: true });
      await writeFile(full, f.data);
      await chmod(full, f.mode);
    }
    const chunks: Buffer[] = [];
    for await (const c of tar.c({ gzip: true, portable: true, cwd: src }, list) as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks);
  } finally {
    await rm(src, { recursive: true, force: true });
  }
}

describe('normalizeMember and judgeEntry (the policy as a table)', () => {
  it.each([
    ['./bridge', 'bridge'],
    ['bin/containerd', 'bin/containerd'],
    ['./bin//containerd/', 'bin/containerd'],
    ['./', ''],
  ])('%s → %s', (raw, norm) => expect(normalizeMember(raw)).toBe(norm));

  const wanted = new Set(['bin/containerd']);
  const none = new Set<string>();
  it.each([
    [{ path: 'bin/containerd', type: 'File', size: 3 }, 'extract'],
    [{ path: './bin/containerd', type: 'File', size: 3 }, 'extract'],
    [{ path: 'README.md', type: 'File', size: 3 }, 'skip'],
    [{ path: './', type: 'Directory', size: 0 }, 'skip'],
    [{ path: 'docs/link', type: 'SymbolicLink', linkpath: 'README.md', size: 0 }, 'skip'],
    [{ path: '/etc/passwd', type: 'File', size: 3 }, 'refuse'],
    [{ path: 'x/../../y', type: 'File', size: 3 }, 'refuse'],
    [{ path: 'docs/link', type: 'SymbolicLink', linkpath: '/etc/shadow', size: 0 }, 'refuse'],
    [{ path: 'docs/link', type: 'Link', linkpath: '../x', size: 0 }, 'refuse'],
    [{ path: 'bin/containerd', type: 'SymbolicLink', linkpath: 'ctr', size: 0 }, 'refuse'],
    [{ path: 'bin/containerd', type: 'Directory', size: 0 }, 'refuse'],
    [{ path: 'null', type: 'CharacterDevice', size: 0 }, 'refuse'],
    [{ path: 'sda', type: 'BlockDevice', size: 0 }, 'refuse'],
    [{ path: 'pipe', type: 'FIFO', size: 0 }, 'refuse'],
    [{ path: 'bin/containerd', type: 'File', size: 2 ** 40 }, 'refuse'],
  ])('%j → %s', (facts, kind) => expect(judgeEntry(facts, wanted, none).kind).toBe(kind));

  it('refuses a second copy of an expected member', () => {
    expect(judgeEntry({ path: 'bin/containerd', type: 'File', size: 1 }, wanted, wanted)).toEqual({ kind: 'refuse', reason: 'appears twice' });
  });
});

describe('extractMembers on valid upstream layouts', () => {
  it('stages multi-megabyte members byte for byte, many of them in one archive', async () => {
    // Real plugins are megabytes: the tar stream hands them over in many chunks, and every chunk,
    // the first ones included, must reach both the file and the hash.
    const blobs = Object.fromEntries(['bridge', 'host-local', 'loopback', 'portmap', 'macvlan', 'static'].map((n) => [n, randomBytes(2_500_000 + n.length * 4099)]));
    const src = await mkdtemp(path.join(os.tmpdir(), 'np-extract-big-'));
    for (const [n, b] of Object.entries(blobs)) await writeFile(path.join(src, n), b, { mode: 0o755 });
    const archive = path.join(work, 'cni.tgz');
    await tar.c({ gzip: true, file: archive, cwd: src, portable: true }, ['.']);
    await rm(src, { recursive: true, force: true });
    const staged = await extract(archive, CNI, staging);
    expect(staged.map((m) => m.member).sort()).toEqual(Object.keys(blobs).sort());
    for (const m of staged) {
      const onDisk = await readFile(m.stagedPath);
      expect(onDisk.equals(blobs[m.member]!), m.member).toBe(true);
      expect(m.sha256).toBe(sha256(onDisk));
      expect(m.size).toBe(onDisk.length);
    }
  });

  it('stages the containerd bin/ members under flat names with the component mode, skipping the rest', async () => {
    const files = {
      bin: 'dir' as const,
      'bin/containerd': { data: 'containerd-binary', mode: 0o644 },
      'bin/ctr': { data: 'ctr-binary', mode: 0o700 },
      'bin/containerd-shim-runc-v2': { data: 'shim-binary', mode: 0o755 },
      'bin/containerd-stress': { data: 'stress-binary', mode: 0o755 },
      'README.md': { data: 'readme', mode: 0o644 },
    };
    const archive = await writeArchive(await packed(files, ['bin', 'README.md']));
    const staged = await extract(archive, CONTAINERD, staging);

    expect(staged.map((s) => s.member)).toEqual(['bin/containerd', 'bin/ctr', 'bin/containerd-shim-runc-v2', 'bin/containerd-stress']);
    for (const s of staged) {
      const data = files[s.member as keyof typeof files] as { data: string };
      expect(path.dirname(s.stagedPath)).toBe(staging);
      expect(await readFile(s.stagedPath, 'utf8')).toBe(data.data);
      expect(s.sha256).toBe(sha256(data.data));
      expect(s.size).toBe(data.data.length);
      expect(s.mode).toBe(0o755);
      expect((await stat(s.stagedPath)).mode & 0o7777).toBe(0o755);
    }
    expect((await readdir(staging)).length).toBe(4);
  });

  it('matches a flat CNI tarball with ./ prefixes and leaves out optional plugins it lacks', async () => {
    const plugins = ['bridge', 'host-local', 'loopback', 'portmap', 'macvlan'];
    const blocks = [dir('./'), ...plugins.map((p) => file(`./${p}`, `plugin ${p}`)), file('./LICENSE', 'apache'), file('./README.md', 'readme')];
    const staged = await extract(await writeArchive(tarGz(blocks)), CNI, staging);
    expect(staged.map((s) => s.member)).toEqual(CNI.map((e) => e.member).filter((m) => plugins.includes(m)));
    expect(staged.find((s) => s.member === 'bridge')?.sha256).toBe(sha256('plugin bridge'));
  });

  it('fails naming every missing required member, and leaves the staging dir empty', async () => {
    const archive = await writeArchive(tarGz([file('./bridge', 'b'), file('./macvlan', 'm')]));
    const err = await extract(archive, CNI, staging).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingMembersError);
    expect((err as Error).message).toContain(path.basename(archive));
    expect((err as MissingMembersError).missing).toEqual(['host-local', 'loopback', 'portmap']);
    expect(await readdir(staging)).toEqual([]);
  });

  it('streams a member larger than every buffer with backpressure intact', async () => {
    const big = randomBytes(6 * 1024 * 1024);
    const archive = await writeArchive(tarGz([file('bin/other', 'x'), entry({ path: 'bin/containerd', data: big, mode: 0o755 }), file('bin/ctr', 'ctr')]));
    const staged = await extract(archive, [bin('containerd'), bin('ctr')], staging);
    expect(staged.map((s) => [s.member, s.size, s.sha256])).toEqual([
      ['bin/containerd', big.length, sha256(big)],
      ['bin/ctr', 3, sha256('ctr')],
    ]);
    expect(sha256(await readFile(staged[0]!.stagedPath))).toBe(sha256(big));
  });

  it('keeps two extractions into one staging dir apart', async () => {
    const archive = await writeArchive(tarGz([file('bin/containerd', 'one')]));
    const a = await extract(archive, [bin('containerd')], staging);
    const b = await extract(archive, [bin('containerd')], staging);
    expect(a[0]!.stagedPath).not.toBe(b[0]!.stagedPath);
  });
});

describe('extractMembers on hostile archives', () => {
  const valid = file('bin/containerd', 'good');
  const cases: Array<[string, Buffer[], string, RegExp]> = [
    ['an absolute path', [valid, file('/etc/passwd', 'root::0:0')], '/etc/passwd', /absolute path/],
    ['a ../ escape', [valid, file('../escape', 'x')], '../escape', /"\.\." component/],
    ['bin/../../x', [file('bin/../../x', 'x'), valid], 'bin/../../x', /"\.\." component/],
    ['an escape aimed at the sentinel', [file('../../../sentinel/pwned', 'x'), valid], '../../../sentinel/pwned', /"\.\."/],
    ['a symlink member to /etc/passwd', [entry({ path: 'bin/containerd', type: '2', linkpath: '/etc/passwd' })], 'bin/containerd', /symlink to "\/etc\/passwd"/],
    ['a symlink member inside the archive', [file('bin/real', 'x'), entry({ path: 'bin/containerd', type: '2', linkpath: 'real' })], 'bin/containerd', /not a regular file/],
    ['a hard link to /etc/shadow', [entry({ path: 'bin/containerd', type: '1', linkpath: '/etc/shadow' })], 'bin/containerd', /hard link to "\/etc\/shadow"/],
    ['an unexpected hard link to /etc/shadow', [valid, entry({ path: 'shadow', type: '1', linkpath: '/etc/shadow' })], 'shadow', /hard link/],
    ['a hard link member inside the archive', [file('bin/ctr', 'x'), entry({ path: 'bin/containerd', type: '1', linkpath: 'bin/ctr' })], 'bin/containerd', /hard link/],
    ['a character device', [valid, entry({ path: 'dev/null', type: '3' })], 'dev/null', /character device/],
    ['a block device', [valid, entry({ path: 'dev/sda', type: '4' })], 'dev/sda', /block device/],
    ['a FIFO', [valid, entry({ path: 'pipe', type: '6' })], 'pipe', /FIFO/],
    ['a duplicate member', [valid, file('bin/containerd', 'evil twin')], 'bin/containerd', /appears twice/],
    ['a duplicate spelled differently', [valid, file('./bin//containerd', 'evil twin')], './bin//containerd', /appears twice/],
    ['a directory where a binary is expected', [dir('bin/containerd/')], 'bin/containerd/', /Directory, not a regular file/],
    ['a pax path that is absolute', [pax({ path: '/etc/cron.d/evil' }), file('bin/containerd', 'x')], '/etc/cron.d/evil', /absolute path/],
    ['a GNU long name with ..', [gnuLongName(`${'a/'.repeat(60)}../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../x`), file('placeholder', 'x')], 'a/', /"\.\."/],
    ['a bad header checksum', [entry({ path: 'bin/containerd', data: 'x', badChecksum: true })], 'bin/containerd', /damaged: .*checksum failure/],
    ['a member claiming 8 GiB', [entry({ path: 'bin/containerd', data: 'short', size: 8 * 1024 ** 3 - 1 })], 'bin/containerd', /claims 8589934591 bytes/],
    ['a member claiming more bytes than present', [entry({ path: 'bin/containerd', data: 'short', size: 100_000 })], 'bin/containerd', /damaged: .*Truncated/],
    ['an unexpected member claiming far more bytes than present', [valid, entry({ path: 'README', data: 'short', size: 8 * 1024 ** 3 - 1 })], 'README', /damaged|Truncated/],
  ];

  it.each(cases)('refuses %s, writes nothing anywhere', async (_name, blocks, bad, reason) => {
    const archive = await writeArchive(tarGz(blocks));
    const before = await tree(work);
    const err = await extract(archive, [bin('containerd'), bin('ctr')].map((e) => ({ ...e, required: false })), staging).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveRefusedError);
    const msg = (err as Error).message;
    expect(msg).toContain(path.basename(archive));
    expect(msg).toContain(bad);
    expect(msg).toMatch(reason);
    expect(await tree(work)).toEqual(before);
    expect(await readdir(sentinel)).toEqual([]);
    expect(await readdir(staging)).toEqual([]);
  }, 10_000);

  it('does not hang or write gigabytes when an 8 GiB claim is allowed but the data is not there', async () => {
    const archive = await writeArchive(tarGz([entry({ path: 'bin/containerd', data: 'short', size: 8 * 1024 ** 3 - 1 })], { end: false }));
    const err = await extract(archive, [bin('containerd')], staging, { maxMemberBytes: Infinity }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/"bin\/containerd" is damaged: .*Truncated/);
    expect(await readdir(staging)).toEqual([]);
  });

  it('refuses an archive whose gzip stream is cut off', async () => {
    const whole = tarGz([file('bin/containerd', 'x'.repeat(10_000))]);
    const archive = await writeArchive(whole.subarray(0, Math.floor(whole.length / 2)));
    await expect(extract(archive, [bin('containerd')], staging)).rejects.toBeInstanceOf(ArchiveRefusedError);
    expect(await readdir(staging)).toEqual([]);
  });

  it('refuses an empty file', async () => {
    const archive = await writeArchive(Buffer.alloc(0));
    await expect(extract(archive, [bin('containerd')], staging)).rejects.toThrow(/Unrecognized archive format/);
  });

  it('reads an uncompressed tar as well (the digest was checked before, the format does not matter)', async () => {
    const archive = await writeArchive(Buffer.concat([file('bin/containerd', 'plain'), Buffer.alloc(1024)]));
    expect((await extract(archive, [bin('containerd')], staging))[0]!.sha256).toBe(sha256('plain'));
  });

  it('refuses something that is not an archive at all', async () => {
    const archive = await writeArchive(gzipSync(Buffer.from('<html>404 Not Found</html>')));
    await expect(extract(archive, [bin('containerd')], staging)).rejects.toBeInstanceOf(ArchiveRefusedError);
  });

  it('refuses a member above maxMemberBytes before writing it', async () => {
    const archive = await writeArchive(tarGz([file('bin/containerd', 'x'.repeat(4096))]));
    const err = await extract(archive, [bin('containerd')], staging, { maxMemberBytes: 1024 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/claims 4096 bytes/);
    expect(await readdir(staging)).toEqual([]);
  });

  it('skips harmless unexpected entries: in-archive symlinks, directories, docs', async () => {
    const blocks = [dir('./'), dir('./docs/'), file('./docs/a.md', 'a'), entry({ path: './docs/b.md', type: '2', linkpath: 'a.md' }), file('./bin/containerd', 'ok')];
    const staged = await extract(await writeArchive(tarGz(blocks)), [bin('containerd')], staging);
    expect(staged).toHaveLength(1);
    expect(await readdir(staging)).toHaveLength(1);
  });
});

describe('extractMembers holds what it extracts to what was verified', () => {
  it('refuses an archive whose bytes are not the verified ones, and stages nothing', async () => {
    const archive = await writeArchive(tarGz([file('bin/containerd', 'swapped in after the check')]));
    const verified = { file: archive, sha256: sha256('the bytes that were verified'), label: 'containerd-2.2.0-linux-amd64.tar.gz (containerd 2.2.0)' };
    const err = await inStaging((d) => extractMembers(verified, [bin('containerd')], d)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveRefusedError);
    expect((err as Error).message).toMatch(/containerd-2\.2\.0-linux-amd64\.tar\.gz \(containerd 2\.2\.0\).*changed after it was verified/);
    expect((err as Error).message).not.toContain(work);
    expect(await readdir(staging)).toEqual([]);
  });

  it('refuses a bare binary whose bytes are not the verified ones', async () => {
    const asset = path.join(work, 'runc.amd64');
    await writeFile(asset, 'not what was verified');
    const entry: MemberSpec = { member: '', name: 'runc', mode: 0o755, required: true };
    const verified = { file: asset, sha256: sha256('runc'), label: 'runc.amd64 (runc 1.3.0)' };
    await expect(inStaging((d) => stageBareBinary(verified, entry, d))).rejects.toThrow(/changed after it was verified/);
    expect(await readdir(staging)).toEqual([]);
  });

  it('stops an archive that inflates past its unpacked limit, even in members it skips', async () => {
    // 40 MiB of zeros in skipped members: a few kilobytes of gzip.
    const zeros = Buffer.alloc(8 * 1024 * 1024);
    const blocks = [...Array.from({ length: 5 }, (_, i) => entry({ path: `padding-${i}`, data: zeros })), file('bin/containerd', 'x')];
    const archive = await writeArchive(tarGz(blocks));
    expect((await stat(archive)).size).toBeLessThan(1024 * 1024);
    const err = await extract(archive, [bin('containerd')], staging, { maxUnpackedBytes: 16 * 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveRefusedError);
    expect((err as Error).message).toMatch(/unpacks to more than the 16777216 bytes allowed/);
    expect(await readdir(staging)).toEqual([]);
    // The same archive within a larger limit is fine.
    expect(await extract(archive, [bin('containerd')], staging, { maxUnpackedBytes: 64 * 1024 * 1024 })).toHaveLength(1);
  });
});

describe('stageBareBinary', () => {
  const runc: InstallEntry = { member: '', dest: { base: 'prefix', dir: 'sbin' }, name: 'runc', mode: 0o755, required: true };

  it('copies and hashes a bare asset under a flat name with the component mode', async () => {
    const asset = path.join(work, 'runc.amd64');
    await writeFile(asset, 'runc-binary', { mode: 0o600 });
    const s = await stageBare(asset, runc);
    expect(s).toMatchObject({ member: '', sha256: sha256('runc-binary'), size: 11, mode: 0o755 });
    expect(path.dirname(s.stagedPath)).toBe(staging);
    expect((await lstat(s.stagedPath)).mode & 0o7777).toBe(0o755);
    expect(await readFile(s.stagedPath, 'utf8')).toBe('runc-binary');
  });

  it('refuses a symlink in place of the asset', async () => {
    const asset = path.join(work, 'runc.amd64');
    await symlink('/etc/passwd', asset);
    await expect(stageBare(asset, runc)).rejects.toBeInstanceOf(ArchiveRefusedError);
  });
});
