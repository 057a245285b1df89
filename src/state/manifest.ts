/**
 * The install record at <root>/var/lib/node-prep/manifest.json: which versions node-prep installed,
 * every file it wrote with its digest, and every file of someone else's it moved aside. `status` diffs
 * it against the disk, `uninstall` removes exactly its files and restores the backups.
 *
 * All paths in the record are node paths (as seen on the node, `/usr/local/bin/containerd`), never
 * host paths: an image root baked with --root DIR is later booted with root `/`.
 */
import path from 'node:path';
import type { Arch } from '../arch.ts';
import type { ComponentName } from '../components/types.ts';
import { NodePrepError } from '../errors.ts';
import { ContentChangedError, readBounded, sha256Handle, tempNameFor, writeAtomic } from '../install/atomic.ts';
import { NotAFolderError, NotARegularFileError, OutsideRootError, RootFs, splitNodePath, type Dir } from '../install/root-fs.ts';
import { copyOpened } from '../install/transaction.ts';
import { inRoot, NODE_PATHS } from '../node/paths.ts';

export const MANIFEST_PATH = `${NODE_PATHS.stateDir}/manifest.json`;
export const BACKUPS_DIR = `${NODE_PATHS.stateDir}/backups`;

export interface ManifestComponent {
  version: string;
  asset: string;
  sha256: string;
}

export interface ManifestFile {
  sha256: string;
  mode: number;
  /** 'node' for files node-prep renders itself (config, unit, sysctl). */
  component: ComponentName | 'node';
  /**
   * Stat facts when written: a re-run that finds them all unchanged need not hash the file. ctime
   * and inode are in the key because no user-space call can set them back (the way git's index works).
   */
  size?: number;
  mtimeMs?: number;
  ctimeMs?: number;
  ino?: number;
}

/** foreign: a file node-prep never wrote; modified: one it wrote and someone changed since. */
export type BackupReason = 'foreign' | 'modified';

export interface BackupRecord {
  /** Node path of the copy, under /var/lib/node-prep/backups/. */
  backupPath: string;
  sha256: string;
  reason: BackupReason;
}

export interface Manifest {
  schemaVersion: 1;
  nodePrepVersion: string;
  installedAt: string;
  arch: Arch;
  prefix: string;
  components: Partial<Record<ComponentName, ManifestComponent>>;
  files: Record<string, ManifestFile>;
  backups: Record<string, BackupRecord>;
  /** Symlinks node-prep made (the unit's wants link under --root): node path -> target. */
  links?: Record<string, string>;
  /** Directories node-prep created (node paths), removed again by uninstall when empty. */
  dirs?: string[];
  /** The containerd settings the config was rendered with: what `node-prep smoke` holds it to. */
  intent?: { cgroupDriver: 'systemd' | 'cgroupfs'; sandboxImage: string; configVersion: number };
  /** The containerd unit as the first install on a live host found it (apply/takeover.ts): given back by uninstall. */
  foundUnit?: { fragmentPath: string; unitFileState: string; activeState: string };
}

export type Drift =
  | { kind: 'changed'; path: string; component: ManifestFile['component']; expected: string; actual: string }
  | { kind: 'missing'; path: string; component: ManifestFile['component']; expected: string };

export class ManifestError extends NodePrepError {
  constructor(code: 'MANIFEST_CORRUPT' | 'MANIFEST_TOO_NEW', file: string, reason: string) {
    super(code, `${file} cannot be used: ${reason}.`, {
      hint: code === 'MANIFEST_TOO_NEW'
        ? 'A newer node-prep wrote it; run that version (or newer).'
        : `node-prep will not guess what it installed. Restore ${file} from a backup, or move it aside: every file then counts as foreign and is backed up before it is replaced.`,
      fields: { file, reason },
    });
    this.name = 'ManifestError';
  }
}

export class BackupError extends NodePrepError {
  constructor(nodePath: string, reason: string, hint: string) {
    super('BACKUP', `Cannot back up or restore ${nodePath}: ${reason}.`, { hint, fields: { path: nodePath, reason } });
    this.name = 'BackupError';
  }
}

/** A node path must stay inside the root once joined onto it: absolute, normalised, no `..`. */
export function assertNodePath(p: string): void {
  if (!p.startsWith('/') || p.endsWith('/') || path.posix.normalize(p) !== p || p.split('/').includes('..')) {
    throw new NodePrepError('BAD_NODE_PATH', `${JSON.stringify(p)} is not an absolute, normalised path on the node.`);
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse and check the record; the checks are shallow on purpose: enough that later code can trust the types. */
export function parseManifest(text: string, file = MANIFEST_PATH): Manifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ManifestError('MANIFEST_CORRUPT', file, `it is not valid JSON (${(err as Error).message})`);
  }
  const bad = (why: string): never => {
    throw new ManifestError('MANIFEST_CORRUPT', file, why);
  };
  if (!isObject(v)) return bad('it is not a JSON object');
  if (typeof v.schemaVersion === 'number' && v.schemaVersion > 1) {
    throw new ManifestError('MANIFEST_TOO_NEW', file, `its schemaVersion is ${v.schemaVersion}, this node-prep reads 1`);
  }
  if (v.schemaVersion !== 1) bad('schemaVersion is not 1');
  for (const k of ['nodePrepVersion', 'installedAt', 'arch', 'prefix'] as const) {
    if (typeof v[k] !== 'string') bad(`${k} is not a string`);
  }
  for (const k of ['components', 'files', 'backups'] as const) {
    if (!isObject(v[k])) bad(`${k} is not an object`);
  }
  for (const [p, f] of Object.entries(v.files as Record<string, unknown>)) {
    if (!isObject(f) || typeof f.sha256 !== 'string' || !HEX64.test(f.sha256) || typeof f.mode !== 'number' || typeof f.component !== 'string') {
      bad(`files[${JSON.stringify(p)}] is not {sha256, mode, component}`);
    }
  }
  for (const [p, b] of Object.entries(v.backups as Record<string, unknown>)) {
    if (!isObject(b) || typeof b.backupPath !== 'string' || typeof b.sha256 !== 'string' || (b.reason !== 'foreign' && b.reason !== 'modified')) {
      bad(`backups[${JSON.stringify(p)}] is not {backupPath, sha256, reason}`);
    }
  }
  return v as unknown as Manifest;
}

const sortedObject = <T>(o: Record<string, T>): Record<string, T> =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** Stable key order, so two runs that install the same thing write byte-identical records. */
export function serializeManifest(m: Manifest): string {
  const ordered = { ...m, components: sortedObject(m.components), files: sortedObject(m.files), backups: sortedObject(m.backups) };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

/** The biggest record node-prep reads: a record lists tens of files, never megabytes. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** node-prep's state folder, opened without following any link below the root. */
export async function openStateDir(fs: RootFs, opts: { create?: boolean } = {}): Promise<Dir | undefined> {
  return opts.create ? fs.dir(NODE_PATHS.stateDir, { create: true, private: true }) : fs.dirIfPresent(NODE_PATHS.stateDir, { private: true });
}

/** undefined when node-prep never installed anything into this root. */
export async function readManifest(root = '/'): Promise<Manifest | undefined> {
  const file = inRoot(root, MANIFEST_PATH);
  const fs = await RootFs.openExisting(root);
  if (!fs) return undefined;
  try {
    const dir = await openStateDir(fs);
    if (!dir) return undefined;
    try {
      const opened = await dir.openRegular(path.posix.basename(MANIFEST_PATH));
      if (!opened) return undefined;
      try {
        const text = await readBounded(opened.fh, MAX_MANIFEST_BYTES);
        if (text === undefined) throw new ManifestError('MANIFEST_CORRUPT', file, `it is more than ${MAX_MANIFEST_BYTES} bytes, more than a record can be`);
        return parseManifest(text, file);
      } finally {
        await opened.fh.close();
      }
    } finally {
      await dir.close();
    }
  } catch (err) {
    if (err instanceof NotARegularFileError || err instanceof NotAFolderError) throw new ManifestError('MANIFEST_CORRUPT', file, err.message.replace(/\.$/, ''));
    throw err;
  } finally {
    await fs.close();
  }
}

/** Written last in an install (STYLE.md 5: the record comes after the files it describes). */
export async function writeManifest(root: string, m: Manifest): Promise<void> {
  await RootFs.with(root, {}, async (fs) => {
    const dir = (await openStateDir(fs, { create: true }))!;
    try {
      // The record holds every file's digest: with a root-only file among them (credentials), the
      // record is root-only too, so that no digest of a secret can be searched for by others.
      const secret = Object.values(m.files).some((f) => (f.mode & 0o044) === 0);
      await writeAtomic(dir, path.posix.basename(MANIFEST_PATH), { data: serializeManifest(m) }, secret ? 0o600 : 0o644);
    } finally {
      await dir.close();
    }
  });
}

/** Remove the record (nothing is installed any more). */
export async function removeManifest(root: string): Promise<void> {
  const fs = await RootFs.openExisting(root);
  if (!fs) return;
  try {
    const dir = await openStateDir(fs);
    try {
      await dir?.unlinkIfPresent(path.posix.basename(MANIFEST_PATH));
    } finally {
      await dir?.close();
    }
  } finally {
    await fs.close();
  }
}

/**
 * Recorded files whose observed digest differs (changed) or that are gone (missing, `undefined` in
 * `observed`). Paths absent from `observed` were not looked at and are not drift. Sorted by path.
 */
export function diffFiles(manifest: Manifest, observed: ReadonlyMap<string, string | undefined>): Drift[] {
  const drift: Drift[] = [];
  for (const [p, f] of Object.entries(manifest.files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!observed.has(p)) continue;
    const actual = observed.get(p);
    if (actual === undefined) drift.push({ kind: 'missing', path: p, component: f.component, expected: f.sha256 });
    else if (actual !== f.sha256) drift.push({ kind: 'changed', path: p, component: f.component, expected: f.sha256, actual });
  }
  return drift;
}

/** Whether the file now at `nodePath` must be kept before node-prep replaces it, and why. */
export function backupReason(manifest: Manifest | undefined, nodePath: string, currentSha256: string | undefined): BackupReason | undefined {
  if (currentSha256 === undefined) return undefined;
  const recorded = manifest?.files[nodePath];
  if (!recorded) return 'foreign';
  return recorded.sha256 === currentSha256 ? undefined : 'modified';
}

/**
 * The regular file at `nodePath`, opened through the root's descriptors without following a link;
 * undefined when there is none (absent, or something else is there, or a link on the way leaves the root).
 */
export async function openNodeFile(fs: RootFs, nodePath: string): Promise<{ fh: import('node:fs/promises').FileHandle; st: import('node:fs').Stats } | undefined> {
  const { dir: d, name } = splitNodePath(nodePath);
  let dir: Dir | undefined;
  try {
    dir = await fs.dirIfPresent(d);
    return dir ? await dir.openRegular(name) : undefined;
  } catch (err) {
    if (err instanceof NotARegularFileError || err instanceof NotAFolderError || err instanceof OutsideRootError) return undefined;
    throw err;
  } finally {
    await dir?.close();
  }
}

/** The digests of `nodePaths` under `root` as they are now; a path with no regular file maps to undefined. */
export async function observeFiles(root: string, nodePaths: Iterable<string>): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  const fs = await RootFs.openExisting(root);
  try {
    for (const p of nodePaths) {
      assertNodePath(p);
      const opened = fs ? await openNodeFile(fs, p) : undefined;
      if (!opened) {
        out.set(p, undefined);
        continue;
      }
      try {
        out.set(p, await sha256Handle(opened.fh));
      } finally {
        await opened.fh.close();
      }
    }
  } finally {
    await fs?.close();
  }
  return out;
}

/**
 * Copy the file at `nodePath` to <root>/var/lib/node-prep/backups/<nodePath> (or `<...>.1`, `.2` ... when
 * an earlier backup holds that name: a backup is never overwritten). Returns undefined when there is no
 * file. The copy is made from the descriptor of the opened file (never through a link), with that
 * file's owner and mode; with `expectSha256` (what the caller decided on) a file that changed since
 * is not copied. The caller records the result in the manifest before replacing the file.
 */
export async function backupForeignFile(root: string, nodePath: string, reason: BackupReason = 'foreign', expectSha256?: string): Promise<BackupRecord | undefined> {
  assertNodePath(nodePath);
  return RootFs.with(root, {}, async (fs) => {
    const { dir: d, name } = splitNodePath(nodePath);
    const src = await fs.dirIfPresent(d);
    if (!src) return undefined;
    let backups: Dir | undefined;
    try {
      const st = await src.lstat(name);
      if (!st) return undefined;
      if (!st.isFile()) {
        throw new BackupError(nodePath, 'it is not a regular file', `Move ${src.hostPathOf(name)} aside yourself; node-prep only backs up regular files.`);
      }
      // 0700: foreign config can hold registry credentials (hosts.toml, config.toml auths).
      const state = (await openStateDir(fs, { create: true }))!;
      try {
        await (await state.sub(path.posix.basename(BACKUPS_DIR), { create: true, mode: 0o700 }))!.close();
      } finally {
        await state.close();
      }
      backups = await fs.dir(`${BACKUPS_DIR}${d}`, { create: true, private: true });
      const tmp = tempNameFor(name);
      try {
        const sha256 = await copyOpened(src, name, st, backups, tmp, src.hostPathOf(name));
        if (expectSha256 !== undefined && sha256 !== expectSha256) {
          throw new NodePrepError('DISK_CHANGED', `${src.hostPathOf(name)} changed while node-prep was installing: sha256 ${sha256}, compared as ${expectSha256}.`, {
            hint: 'Nothing was changed. Run node-prep again: the new comparison starts from what is there now.',
          });
        }
        for (let n = 0; n < 1000; n++) {
          const backupName = n === 0 ? name : `${name}.${n}`;
          try {
            await backups.link(tmp, backups, backupName); // publishes the complete copy, never over an existing one
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
            throw err;
          }
          await backups.sync();
          return { backupPath: `${BACKUPS_DIR}${nodePath}${n === 0 ? '' : `.${n}`}`, sha256, reason };
        }
        throw new BackupError(nodePath, `${BACKUPS_DIR}${nodePath} and 999 numbered backups exist`, `Clean up ${inRoot(root, BACKUPS_DIR)}.`);
      } finally {
        await backups.unlinkIfPresent(tmp);
      }
    } finally {
      await src.close();
      await backups?.close();
    }
  });
}

/** Put a backed-up file back at `nodePath` (atomically, with its owner, mode and mtime), then drop the copy. */
export async function restoreBackup(root: string, nodePath: string, record: BackupRecord): Promise<void> {
  assertNodePath(nodePath);
  assertNodePath(record.backupPath);
  if (!record.backupPath.startsWith(`${BACKUPS_DIR}/`)) {
    throw new BackupError(nodePath, `the recorded backup ${record.backupPath} is outside ${BACKUPS_DIR}`, 'The manifest was edited; restore the file by hand.');
  }
  const backupHost = inRoot(root, record.backupPath);
  await RootFs.with(root, {}, async (fs) => {
    const b = splitNodePath(record.backupPath);
    const bdir = await fs.dirIfPresent(b.dir, { private: true }).catch(() => undefined);
    const st = await bdir?.lstat(b.name);
    if (!bdir || !st?.isFile()) {
      await bdir?.close();
      throw new BackupError(nodePath, `its backup ${backupHost} is gone`, 'The original file cannot be restored by node-prep.');
    }
    const { dir: d, name } = splitNodePath(nodePath);
    try {
      await fs.withDir(d, { create: true }, async (dest) => {
        await writeAtomic(dest, name, { from: { dir: bdir, name: b.name } }, st.mode & 0o7777, {
          keep: { uid: st.uid, gid: st.gid, atime: st.atime, mtime: st.mtime },
          expectSha256: record.sha256,
        });
      });
      await bdir.unlink(b.name);
    } catch (err) {
      if (err instanceof ContentChangedError) {
        throw new BackupError(nodePath, `its backup ${backupHost} has sha256 ${String(err.fields.actual)}, the manifest recorded ${record.sha256}`,
          'The backup was changed after node-prep made it; check it and restore it by hand.');
      }
      throw err;
    } finally {
      await bdir.close();
    }
  });
}
