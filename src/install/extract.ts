/**
 * Extraction of the few members a component needs from a verified release archive, into a staging
 * directory, under names node-prep chooses. Archive paths are only ever compared, never joined onto
 * a directory, so no entry can steer where a byte is written.
 *
 * Policy (DESIGN.md "Extraction never writes outside its target"):
 * - Refused wherever they appear, because no upstream release contains them and their presence means a
 *   crafted or broken archive: absolute paths, `..` components, character/block devices and FIFOs, links
 *   whose target is absolute or contains `..`, and any damage the parser sees (bad header checksum,
 *   truncation, a size claim the data does not back, corrupt gzip).
 * - Refused for an expected member: a link, directory or any type other than a regular file; a second
 *   entry with the same (normalised) name; a size over `maxMemberBytes`.
 * - Skipped: everything else that is not expected (README.md, LICENSE, `./`, harmless in-archive links).
 * - Missing `required` members fail after the archive was read; optional ones are simply not returned.
 * On any failure the files this call created in the staging directory are removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { finished } from 'node:stream/promises';
/** One member to stage: where it is in the archive ('' for a bare binary), its file name and mode. */
export interface MemberSpec {
  member: string;
  name: string;
  mode: number;
  /** A required member that is missing from the archive fails the extraction. */
  required: boolean;
}
import { bytesMoved } from '../util/buffer-churn.ts';
import { copyHandle, type DirFile } from './atomic.ts';
import { ArchiveRefusedError, MissingMembersError } from './errors.ts';
import type { Dir } from './root-fs.ts';

/** A verified artifact to extract: where it is, the digest it was verified with, and what to call it. */
export interface ArchiveInput {
  file: string;
  sha256: string;
  /** `containerd-2.3.4-linux-amd64.tar.gz (containerd 2.3.4)`: what errors name, never the cache path. */
  label: string;
}

export interface StagedMember {
  /** The member name as the component lists it ('' for a bare binary asset). */
  member: string;
  /** The staged copy, in the private staging folder. */
  staged: DirFile;
  sha256: string;
  size: number;
  /** The mode the component wants (entry.mode), already applied to the staged file. */
  mode: number;
}

export interface ExtractOptions {
  /** Refuse an expected member claiming more bytes than this (default 512 MiB; containerd is ~40 MiB). */
  maxMemberBytes?: number;
  /** Refuse an archive whose tar stream inflates to more than this in all (default 1 GiB). */
  maxUnpackedBytes?: number;
}

const DEFAULT_MAX_MEMBER_BYTES = 512 * 1024 * 1024;
const DEFAULT_MAX_UNPACKED_BYTES = 1024 * 1024 * 1024;
const REGULAR = new Set(['File', 'OldFile', 'ContiguousFile']);
const SPECIAL: Record<string, string> = {
  CharacterDevice: 'is a character device',
  BlockDevice: 'is a block device',
  FIFO: 'is a FIFO',
};

/** The parts of a tar entry the policy looks at; `type` is node-tar's name (File, SymbolicLink, ...). */
export interface EntryFacts {
  path: string;
  type: string;
  linkpath?: string | undefined;
  size: number;
}

export type EntryVerdict =
  | { kind: 'extract'; member: string }
  | { kind: 'skip' }
  | { kind: 'refuse'; reason: string };

const hasDotDot = (p: string) => p.split('/').includes('..');

/** `./bin//containerd/` → `bin/containerd`: what GNU tar would write, so duplicates cannot hide behind spelling. */
export function normalizeMember(p: string): string {
  return p.split('/').filter((s) => s !== '' && s !== '.').join('/');
}

/** The extraction policy above as a pure function: one tar entry in, one decision out. */
export function judgeEntry(e: EntryFacts, wanted: ReadonlySet<string>, seen: ReadonlySet<string>, maxBytes = DEFAULT_MAX_MEMBER_BYTES): EntryVerdict {
  if (e.path.startsWith('/')) return { kind: 'refuse', reason: 'has an absolute path' };
  if (hasDotDot(e.path)) return { kind: 'refuse', reason: 'has a ".." component' };
  const special = SPECIAL[e.type];
  if (special) return { kind: 'refuse', reason: special };
  const isLink = e.type === 'Link' || e.type === 'SymbolicLink';
  const what = e.type === 'Link' ? 'a hard link' : 'a symlink';
  if (isLink && e.linkpath !== undefined && (e.linkpath.startsWith('/') || hasDotDot(e.linkpath))) {
    return { kind: 'refuse', reason: `is ${what} to ${JSON.stringify(e.linkpath)}, outside the archive` };
  }
  const member = normalizeMember(e.path);
  if (!wanted.has(member)) return { kind: 'skip' };
  if (seen.has(member)) return { kind: 'refuse', reason: 'appears twice' };
  if (isLink) return { kind: 'refuse', reason: `is ${what} to ${JSON.stringify(e.linkpath)}, not a regular file` };
  if (!REGULAR.has(e.type)) return { kind: 'refuse', reason: `is a ${e.type}, not a regular file` };
  if (e.size > maxBytes) return { kind: 'refuse', reason: `claims ${e.size} bytes, more than the ${maxBytes} allowed` };
  return { kind: 'extract', member };
}

/** gzip's magic bytes: such an archive is inflated before the tar parser sees it. */
async function isGzip(fh: FileHandle): Promise<boolean> {
  const head = Buffer.alloc(2);
  const { bytesRead } = await fh.read(head, 0, 2, 0);
  return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** The verified artifact, opened once: a regular file, not through a link. */
async function openArchive(archive: ArchiveInput): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(archive.file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new ArchiveRefusedError(archive.label, undefined, `cannot be opened (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw new ArchiveRefusedError(archive.label, undefined, 'is not a regular file');
  }
  return fh;
}

const changedSinceVerified = (archive: ArchiveInput, actual: string) =>
  new ArchiveRefusedError(archive.label, undefined, `changed after it was verified (sha256 ${actual} now, ${archive.sha256} verified)`);

/** A flat name node-prep chooses; `tag` keeps two extractions into one staging dir apart. */
function stagedName(tag: string, index: number, entry: MemberSpec): string {
  const safe = entry.name.replace(/[^A-Za-z0-9._-]/g, '_') || 'file';
  return `${tag}-${index}-${safe}`;
}

/**
 * Stream the archive once and stage the members `entries` list into `stagingDir`.
 * Returns them in `entries` order; optional members the archive lacks are left out.
 */
export async function extractMembers(
  archive: ArchiveInput,
  entries: MemberSpec[],
  stagingDir: Dir,
  opts: ExtractOptions = {},
): Promise<StagedMember[]> {
  const maxBytes = opts.maxMemberBytes ?? DEFAULT_MAX_MEMBER_BYTES;
  const maxUnpacked = opts.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES;
  const label = archive.label;
  const index = new Map(entries.map((e, i) => [normalizeMember(e.member), i]));
  const wanted = new Set(index.keys());
  const seen = new Set<string>();
  const staged = new Map<number, StagedMember>();
  const created: string[] = [];
  const writes: Promise<void>[] = [];
  const outs: Array<{ destroy(): unknown }> = [];
  const tag = randomBytes(4).toString('hex');

  const fh = await openArchive(archive);
  // node:zlib's stream inflates on the libuv threadpool, off the main thread (node-tar's own gunzip
  // is synchronous): two archives inflate on two cores while the main thread hashes and writes.
  const gunzip = (await isGzip(fh).catch(async (err: unknown) => {
    await fh.close();
    throw err;
  })) ? createGunzip({ chunkSize: 64 * 1024 }) : undefined;
  // From here on without an await until the pipes are set up: the 'data' listener starts the flow.
  const input = fh.createReadStream({ start: 0, autoClose: false });
  const archiveHash = createHash('sha256');
  const inputEnded = new Promise<void>((resolve) => input.once('end', resolve));
  // strict: every parser warning (bad checksum, truncation, unrecognised format) becomes an error.
  const parser = new Parser({ strict: true });
  let failure: Error | undefined;
  let unpacked = 0;

  const parsed = new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      if (failure) return;
      failure = err;
      input.destroy();
      gunzip?.destroy();
      for (const o of outs) o.destroy();
      // Stops the gunzip and the parser. A separate Error: node-tar decorates what it is given.
      parser.abort(new Error('extraction stopped by node-prep'));
      reject(err);
    };

    (gunzip ?? input).on('data', (c: Buffer) => {
      unpacked += c.length;
      if (unpacked > maxUnpacked) fail(new ArchiveRefusedError(label, undefined, `unpacks to more than the ${maxUnpacked} bytes allowed`));
    });

    const onEntry = (entry: ReadEntry, ignoredByTar: boolean) => {
      if (failure) return void entry.resume();
      const facts: EntryFacts = { path: entry.path, type: entry.type, linkpath: entry.linkpath, size: entry.size };
      const verdict = judgeEntry(facts, wanted, seen, maxBytes);
      switch (verdict.kind) {
        case 'skip':
          return void entry.resume();
        case 'refuse':
          entry.resume();
          return fail(new ArchiveRefusedError(label, entry.path, verdict.reason));
        case 'extract': {
          // node-tar ignores types it does not know (SparseFile, ...): never an expected member.
          if (ignoredByTar) return fail(new ArchiveRefusedError(label, entry.path, `is a ${entry.type}, not a regular file`));
          seen.add(verdict.member);
          const i = index.get(verdict.member)!;
          const spec = entries[i]!;
          writes.push(stage(entry, stagedName(tag, i, spec), spec).then((m) => void staged.set(i, m), (err: Error) => fail(err)));
          return;
        }
        default: {
          const never: never = verdict;
          return never;
        }
      }
    };

    const stage = async (entry: ReadEntry, name: string, spec: MemberSpec): Promise<StagedMember> => {
      // O_CREAT|O_EXCL in the opened staging folder: never follows or reuses something already there.
      entry.pause();
      const outFh = await stagingDir.createExclusive(name, 0o600);
      created.push(name);
      // The component decides the mode, not the archive; set while the descriptor is ours alone (the
      // stream closes it when it ends). The folder is private, so nobody runs it half-written.
      await outFh.chmod(spec.mode);
      const out = outFh.createWriteStream();
      outs.push(out);
      const hash = createHash('sha256');
      let size = 0;
      // One consumer for the entry: a minipass stream starts flowing on the first 'data' listener or
      // pipe and hands its buffered chunks to that one alone, so hashing and writing happen together
      // here (with backpressure), never as two listeners that could each miss the first chunks.
      // 'end' first: the entry was paused while the file was created, so adding the 'data' listener
      // flushes what it buffered, and its 'end' with it, at once.
      entry.on('end', () => out.end());
      entry.on('data', (c: Buffer) => {
        hash.update(c);
        bytesMoved(c.length);
        size += c.length;
        if (!out.write(c)) {
          entry.pause();
          out.once('drain', () => entry.resume());
        }
      });
      entry.resume();
      await finished(out);
      if (size !== entry.size) {
        throw new ArchiveRefusedError(label, entry.path, `is truncated (${size} of ${entry.size} bytes)`);
      }
      return { member: spec.member, staged: { dir: stagingDir, name }, sha256: hash.digest('hex'), size, mode: spec.mode };
    };

    parser.on('entry', (e: ReadEntry) => onEntry(e, false));
    parser.on('ignoredEntry', (e: ReadEntry) => onEntry(e, true));
    parser.on('error', (err: Error & { entry?: ReadEntry; header?: { path?: string } }) => {
      fail(new ArchiveRefusedError(label, err.entry?.path ?? err.header?.path, `is damaged: ${err.message}`, err));
    });
    parser.on('end', () => resolve());
    input.on('error', (err) => fail(err));
    input.on('data', (c) => archiveHash.update(c as Buffer));
    if (gunzip) {
      gunzip.on('error', (err) => fail(new ArchiveRefusedError(label, undefined, `is damaged: ${err.message}`, err)));
      input.pipe(gunzip).pipe(parser as unknown as NodeJS.WritableStream);
    } else {
      input.pipe(parser as unknown as NodeJS.WritableStream);
    }
  });

  try {
    await parsed;
    await Promise.all(writes);
    if (failure) throw failure;
    // Every byte of the file went through the hash: it must be the file that was verified.
    if (!input.readableEnded) await inputEnded;
    const actual = archiveHash.digest('hex');
    if (actual !== archive.sha256) throw changedSinceVerified(archive, actual);
    const missing = entries.filter((e, i) => e.required && !staged.has(i)).map((e) => e.member);
    if (missing.length > 0) throw new MissingMembersError(label, missing);
    return [...staged.entries()].sort(([a], [b]) => a - b).map(([, m]) => m);
  } catch (err) {
    await Promise.allSettled(writes);
    await Promise.all(created.map((n) => stagingDir.unlinkIfPresent(n).catch(() => undefined)));
    throw err;
  } finally {
    input.destroy();
    await fh.close().catch(() => undefined);
  }
}

/** runc ships a bare binary: stage a copy under a node-prep name, hashing while copying; the copy is the verified artifact. */
export async function stageBareBinary(archive: ArchiveInput, entry: MemberSpec, stagingDir: Dir, opts: ExtractOptions = {}): Promise<StagedMember> {
  const maxBytes = opts.maxMemberBytes ?? DEFAULT_MAX_MEMBER_BYTES;
  const src = await openArchive(archive);
  const name = stagedName(randomBytes(4).toString('hex'), 0, entry);
  let created = false;
  try {
    const st = await src.stat();
    if (st.size > maxBytes) throw new ArchiveRefusedError(archive.label, undefined, `is ${st.size} bytes, more than the ${maxBytes} allowed`);
    const out = await stagingDir.createExclusive(name, 0o600);
    created = true;
    try {
      const { sha256, size } = await copyHandle(src, out);
      bytesMoved(size);
      if (sha256 !== archive.sha256) throw changedSinceVerified(archive, sha256);
      await out.chmod(entry.mode);
      return { member: entry.member, staged: { dir: stagingDir, name }, sha256, size, mode: entry.mode };
    } finally {
      await out.close();
    }
  } catch (err) {
    if (created) await stagingDir.unlinkIfPresent(name).catch(() => undefined);
    throw err;
  } finally {
    await src.close();
  }
}
