/**
 * Backing up a file node-prep is about to replace, as a step of the transaction: the copy is made
 * when the transaction gets there and removed again when it rolls back, so a run that fails leaves
 * the backups folder as it found it.
 */
import path from 'node:path';
import { RootFs, splitNodePath } from '../install/root-fs.ts';
import type { Step } from '../install/transaction.ts';
import { BACKUPS_DIR, backupForeignFile, type BackupRecord } from '../state/manifest.ts';

export interface BackupStepInputs {
  root: string;
  nodePath: string;
  reason: 'foreign' | 'modified';
  /** Whether the backups folder existed before this run (if not, a rollback removes it again). */
  backupsDirExisted: boolean;
  /** The file's sha256 as the comparison saw it: a file that changed since is not copied. */
  sha256: string;
  /** Called with the copy once made, and with undefined when a rollback removed it. */
  onCopy: (copy: BackupRecord | undefined) => void;
}

export function backupStep(i: BackupStepInputs): Step {
  return async () => {
    const copy = await backupForeignFile(i.root, i.nodePath, i.reason, i.sha256);
    if (!copy) return undefined;
    i.onCopy(copy);
    return {
      undo: async () => {
        await RootFs.with(i.root, {}, async (fs) => {
          const at = splitNodePath(copy.backupPath);
          await fs.withDir(at.dir, { private: true }, (d) => d.unlinkIfPresent(at.name));
          i.onCopy(undefined);
          for (let d = path.posix.dirname(copy.backupPath); d.startsWith(`${BACKUPS_DIR}/`) || (d === BACKUPS_DIR && !i.backupsDirExisted); d = path.posix.dirname(d)) {
            const up = splitNodePath(d);
            await fs.withDir(up.dir, { private: true }, (p) => p.rmdirIfEmpty(up.name)).catch(() => undefined);
          }
        });
      },
    };
  };
}
