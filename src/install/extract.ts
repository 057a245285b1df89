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
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
/** One member to stage: where it is in the archive ('' for a bare binary), its file name and mode. */
export interface MemberSpec {
  member: string;
  name: string;
  mode: number;
  /** A required member that is missing from the archive fails the extraction. */
  required: boolean;
}
import { bytesMoved } from '../util/buffer-churn.ts';
import { ArchiveRefusedError, MissingMembersError } from './errors.ts';

export interface StagedMember {
  /** The member name as the component lists it ('' for a bare binary asset). */
  member: string;
  /** Absolute path of the staged copy inside the staging directory. */
  stagedPath: string;
  sha256: string;
  size: number;
  /** The mode the component wants (entry.mode), already applied to the staged file. */
  mode: number;
}

export interface ExtractOptions {
  /** Refuse an expected member claiming more bytes than this (default 512 MiB; containerd is ~40 MiB). */
  maxMemberBytes?: number;
}

const DEFAULT_MAX_MEMBER_BYTES = 512 * 1024 * 1024;
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
async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** A flat name node-prep chooses; `tag` keeps two extractions into one staging dir apart. */
function stagedName(tag: string, index: number, entry: MemberSpec): string {
  const safe = entry.name.replace(/[^A-Za-z0-9._-]/g, '_') || 'file';
  return `${tag}-${index}-${safe}`;
}

/**
 * Stream `archivePath` (.tar.gz, or plain tar) once and stage the members `entries` list.
 * Returns them in `entries` order; optional members the archive lacks are left out.
 */
export async function extractMembers(
  archivePath: string,
  entries: MemberSpec[],
  stagingDir: string,
  opts: ExtractOptions = {},
): Promise<StagedMember[]> {
  const maxBytes = opts.maxMemberBytes ?? DEFAULT_MAX_MEMBER_BYTES;
  const index = new Map(entries.map((e, i) => [normalizeMember(e.member), i]));
  const wanted = new Set(index.keys());
  const seen = new Set<string>();
  const staged = new Map<number, StagedMember>();
  const created: string[] = [];
  const writes: Promise<void>[] = [];
  const outs: Array<{ destroy(): unknown }> = [];
  const tag = randomBytes(4).toString('hex');
  await mkdir(stagingDir, { recursive: true, mode: 0o700 });

  const input = createReadStream(archivePath);
  // node:zlib's stream inflates on the libuv threadpool, off the main thread (node-tar's own gunzip
  // is synchronous): two archives inflate on two cores while the main thread hashes and writes.
  const gunzip = (await isGzip(archivePath)) ? createGunzip({ chunkSize: 64 * 1024 }) : undefined;
  // strict: every parser warning (bad checksum, truncation, unrecognised format) becomes an error.
  const parser = new Parser({ strict: true });
  let failure: Error | undefined;

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

    const onEntry = (entry: ReadEntry, ignoredByTar: boolean) => {
      if (failure) return void entry.resume();
      const facts: EntryFacts = { path: entry.path, type: entry.type, linkpath: entry.linkpath, size: entry.size };
      const verdict = judgeEntry(facts, wanted, seen, maxBytes);
      switch (verdict.kind) {
        case 'skip':
          return void entry.resume();
        case 'refuse':
          entry.resume();
          return fail(new ArchiveRefusedError(archivePath, entry.path, verdict.reason));
        case 'extract': {
          // node-tar ignores types it does not know (SparseFile, ...): never an expected member.
          if (ignoredByTar) return fail(new ArchiveRefusedError(archivePath, entry.path, `is a ${entry.type}, not a regular file`));
          seen.add(verdict.member);
          const i = index.get(verdict.member)!;
          const spec = entries[i]!;
          const stagedPath = path.join(stagingDir, stagedName(tag, i, spec));
          writes.push(stage(entry, stagedPath, spec).then((m) => void staged.set(i, m), (err: Error) => fail(err)));
          return;
        }
        default: {
          const never: never = verdict;
          return never;
        }
      }
    };

    const stage = async (entry: ReadEntry, stagedPath: string, spec: MemberSpec): Promise<StagedMember> => {
      // 'wx' = O_CREAT|O_EXCL: never follows or reuses something already in the staging directory.
      const out = createWriteStream(stagedPath, { flags: 'wx', mode: 0o600 });
      outs.push(out);
      created.push(stagedPath);
      const hash = createHash('sha256');
      let size = 0;
      // One consumer for the entry: a minipass stream starts flowing on the first 'data' listener or
      // pipe and hands its buffered chunks to that one alone, so hashing and writing happen together
      // here (with backpressure), never as two listeners that could each miss the first chunks.
      entry.on('data', (c: Buffer) => {
        hash.update(c);
        bytesMoved(c.length);
        size += c.length;
        if (!out.write(c)) {
          entry.pause();
          out.once('drain', () => entry.resume());
        }
      });
      entry.on('end', () => out.end());
      await finished(out);
      if (size !== entry.size) {
        throw new ArchiveRefusedError(archivePath, entry.path, `is truncated (${size} of ${entry.size} bytes)`);
      }
      await chmod(stagedPath, spec.mode); // the component decides the mode, not the archive
      return { member: spec.member, stagedPath, sha256: hash.digest('hex'), size, mode: spec.mode };
    };

    parser.on('entry', (e: ReadEntry) => onEntry(e, false));
    parser.on('ignoredEntry', (e: ReadEntry) => onEntry(e, true));
    parser.on('error', (err: Error & { entry?: ReadEntry; header?: { path?: string } }) => {
      fail(new ArchiveRefusedError(archivePath, err.entry?.path ?? err.header?.path, `is damaged: ${err.message}`, err));
    });
    parser.on('end', () => resolve());
    input.on('error', (err) => fail(err));
    if (gunzip) {
      gunzip.on('error', (err) => fail(new ArchiveRefusedError(archivePath, undefined, `is damaged: ${err.message}`, err)));
      input.pipe(gunzip).pipe(parser as unknown as NodeJS.WritableStream);
    } else {
      input.pipe(parser as unknown as NodeJS.WritableStream);
    }
  });

  try {
    await parsed;
    await Promise.all(writes);
    if (failure) throw failure;
    const missing = entries.filter((e, i) => e.required && !staged.has(i)).map((e) => e.member);
    if (missing.length > 0) throw new MissingMembersError(archivePath, missing);
    return [...staged.entries()].sort(([a], [b]) => a - b).map(([, m]) => m);
  } catch (err) {
    await Promise.allSettled(writes);
    await Promise.all(created.map((p) => rm(p, { force: true })));
    throw err;
  }
}

/** runc ships a bare binary: stage a copy under a node-prep name, hashing while copying. */
export async function stageBareBinary(file: string, entry: MemberSpec, stagingDir: string): Promise<StagedMember> {
  const st = await lstat(file);
  if (!st.isFile()) throw new ArchiveRefusedError(file, path.basename(file), 'is not a regular file');
  await mkdir(stagingDir, { recursive: true, mode: 0o700 });
  const stagedPath = path.join(stagingDir, stagedName(randomBytes(4).toString('hex'), 0, entry));
  const hash = createHash('sha256');
  let size = 0;
  const hashing = async function* (source: AsyncIterable<Buffer>) {
    for await (const c of source) {
      hash.update(c);
      bytesMoved(c.length);
      size += c.length;
      yield c;
    }
  };
  try {
    await pipeline(createReadStream(file), hashing, createWriteStream(stagedPath, { flags: 'wx', mode: 0o600 }));
    await chmod(stagedPath, entry.mode);
  } catch (err) {
    await rm(stagedPath, { force: true });
    throw err;
  }
  return { member: entry.member, stagedPath, sha256: hash.digest('hex'), size, mode: entry.mode };
}
