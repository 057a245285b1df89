/**
 * The install record at <root>/var/lib/node-prep/manifest.json: which versions node-prep installed,
 * every file it wrote with its digest, and every file of someone else's it moved aside. `status` diffs
 * it against the disk, `uninstall` removes exactly its files and restores the backups.
 *
 * All paths in the record are node paths (as seen on the node, `/usr/local/bin/containerd`), never
 * host paths: an image root baked with --root DIR is later booted with root `/`.
 */
import { chown, link, lstat, mkdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Arch } from '../arch.ts';
import type { ComponentName } from '../components/types.ts';
import { NodePrepError } from '../errors.ts';
import { atomicReplace, copyKeepingMetadata, ensureDir, fsyncDir, tempPathFor } from '../install/atomic.ts';
import { sha256File } from '../install/hash.ts';
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

/** undefined when node-prep never installed anything into this root. */
export async function readManifest(root = '/'): Promise<Manifest | undefined> {
  const file = inRoot(root, MANIFEST_PATH);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseManifest(text, file);
}

/** Written last in an install (STYLE.md 5: the record comes after the files it describes). */
export async function writeManifest(root: string, m: Manifest): Promise<void> {
  await atomicReplace(inRoot(root, MANIFEST_PATH), { data: serializeManifest(m) }, 0o644);
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

/** The digests of `nodePaths` under `root` as they are now; a path with no regular file maps to undefined. */
export async function observeFiles(root: string, nodePaths: Iterable<string>): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const p of nodePaths) {
    assertNodePath(p);
    const st = await lstat(inRoot(root, p)).catch(() => undefined);
    out.set(p, st?.isFile() ? await sha256File(inRoot(root, p)) : undefined);
  }
  return out;
}


/**
 * Copy the file at `nodePath` to <root>/var/lib/node-prep/backups/<nodePath> (or `<...>.1`, `.2` ... when
 * an earlier backup holds that name: a backup is never overwritten). Returns undefined when there is no
 * file. The caller records the result in the manifest before replacing the file.
 */
export async function backupForeignFile(root: string, nodePath: string, reason: BackupReason = 'foreign'): Promise<BackupRecord | undefined> {
  assertNodePath(nodePath);
  const src = inRoot(root, nodePath);
  const st = await lstat(src).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return undefined;
  if (!st.isFile()) {
    throw new BackupError(nodePath, 'it is not a regular file', `Move ${src} aside yourself; node-prep only backs up regular files.`);
  }
  // 0700: foreign config can hold registry credentials (hosts.toml, config.toml auths).
  await mkdir(inRoot(root, BACKUPS_DIR), { recursive: true, mode: 0o700 });
  const base = `${BACKUPS_DIR}${nodePath}`;
  await ensureDir(path.dirname(inRoot(root, base)));
  const tmp = tempPathFor(inRoot(root, base));
  try {
    await copyKeepingMetadata(src, tmp, st);
    const sha256 = await sha256File(tmp);
    for (let n = 0; n < 1000; n++) {
      const backupPath = n === 0 ? base : `${base}.${n}`;
      try {
        await link(tmp, inRoot(root, backupPath)); // publishes the complete copy, never over an existing one
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      await fsyncDir(path.dirname(inRoot(root, backupPath)));
      return { backupPath, sha256, reason };
    }
    throw new BackupError(nodePath, `${base} and 999 numbered backups exist`, `Clean up ${inRoot(root, BACKUPS_DIR)}.`);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Put a backed-up file back at `nodePath` (atomically, with its mode and mtime), then drop the copy. */
export async function restoreBackup(root: string, nodePath: string, record: BackupRecord): Promise<void> {
  assertNodePath(nodePath);
  assertNodePath(record.backupPath);
  if (!record.backupPath.startsWith(`${BACKUPS_DIR}/`)) {
    throw new BackupError(nodePath, `the recorded backup ${record.backupPath} is outside ${BACKUPS_DIR}`, 'The manifest was edited; restore the file by hand.');
  }
  const backup = inRoot(root, record.backupPath);
  const st = await stat(backup).catch(() => undefined);
  if (!st?.isFile()) {
    throw new BackupError(nodePath, `its backup ${backup} is gone`, 'The original file cannot be restored by node-prep.');
  }
  const actual = await sha256File(backup);
  if (actual !== record.sha256) {
    throw new BackupError(nodePath, `its backup ${backup} has sha256 ${actual}, the manifest recorded ${record.sha256}`,
      'The backup was changed after node-prep made it; check it and restore it by hand.');
  }
  const dest = inRoot(root, nodePath);
  await atomicReplace(dest, { file: backup }, st.mode & 0o7777);
  await utimes(dest, st.atime, st.mtime);
  await chown(dest, st.uid, st.gid).catch(() => undefined);
  await rm(backup);
}
