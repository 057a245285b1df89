/**
 * Backing up a file node-prep is about to replace, as a step of the transaction: the copy is made
 * when the transaction gets there and removed again when it rolls back, so a run that fails leaves
 * the backups folder as it found it.
 */
import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Step } from '../install/transaction.ts';
import { inRoot } from '../node/paths.ts';
import { BACKUPS_DIR, backupForeignFile, type BackupRecord } from '../state/manifest.ts';

export interface BackupStepInputs {
  root: string;
  nodePath: string;
  reason: 'foreign' | 'modified';
  /** Whether the backups folder existed before this run (if not, a rollback removes it again). */
  backupsDirExisted: boolean;
  /** Called with the copy once made, and with undefined when a rollback removed it. */
  onCopy: (copy: BackupRecord | undefined) => void;
}

export function backupStep(i: BackupStepInputs): Step {
  return async () => {
    const copy = await backupForeignFile(i.root, i.nodePath, i.reason);
    if (!copy) return undefined;
    i.onCopy(copy);
    return {
      undo: async () => {
        await rm(inRoot(i.root, copy.backupPath), { force: true });
        i.onCopy(undefined);
        for (let d = path.posix.dirname(copy.backupPath); d.startsWith(`${BACKUPS_DIR}/`) || (d === BACKUPS_DIR && !i.backupsDirExisted); d = path.posix.dirname(d)) {
          await rmdir(inRoot(i.root, d)).catch(() => undefined);
        }
      },
    };
  };
}
