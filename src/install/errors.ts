import { NodePrepError } from '../errors.ts';

/** A release archive node-prep will not extract anything from: it is crafted, damaged or not what upstream ships. */
export class ArchiveRefusedError extends NodePrepError {
  readonly archive: string;
  /** The offending entry's path as the archive spells it; undefined when the damage is not in one entry. */
  readonly entry: string | undefined;
  readonly reason: string;

  constructor(archive: string, entry: string | undefined, reason: string, cause?: unknown) {
    const what = entry === undefined ? 'it' : `entry ${JSON.stringify(entry)}`;
    super('ARCHIVE_REFUSED', `Refusing ${archive}: ${what} ${reason}.`, {
      hint: 'Nothing was installed from it. Upstream release archives never contain such entries; check --mirror, --bundle or the cache.',
      fields: { archive, entry, reason },
      cause,
    });
    this.name = 'ArchiveRefusedError';
    this.archive = archive;
    this.entry = entry;
    this.reason = reason;
  }
}

/** Members a component cannot work without are absent: the release layout changed or the archive is wrong. */
export class MissingMembersError extends NodePrepError {
  readonly archive: string;
  readonly missing: string[];

  constructor(archive: string, missing: string[]) {
    super('ARCHIVE_MISSING_MEMBERS', `${archive} lacks ${missing.join(', ')}.`, {
      hint: 'Nothing was installed from it. The release layout may have changed; try another version or report it.',
      fields: { archive, missing },
    });
    this.name = 'MissingMembersError';
    this.archive = archive;
    this.missing = missing;
  }
}

/** A file system change node-prep was asked to make and will not (e.g. replacing a directory or a symlink). */
export class InstallTargetError extends NodePrepError {
  readonly path: string;

  constructor(path: string, reason: string, hint: string) {
    super('INSTALL_TARGET', `Cannot write ${path}: ${reason}.`, { hint, fields: { path, reason } });
    this.name = 'InstallTargetError';
    this.path = path;
  }
}

/** commit() failed and the files were put back; `rollbackErrors` lists anything that could not be. */
export class TransactionError extends NodePrepError {
  readonly failedPath: string;
  readonly rollbackErrors: Array<{ path: string; error: string; backup?: string }>;

  constructor(failedPath: string, cause: unknown, rollbackErrors: Array<{ path: string; error: string; backup?: string }>) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const rolledBack = rollbackErrors.length === 0
      ? 'every earlier change was rolled back'
      : `rolling back failed for ${rollbackErrors.map((e) => e.path).join(', ')}`;
    super('INSTALL_FAILED', `Installing ${failedPath} failed (${why}); ${rolledBack}.`, {
      hint: rollbackErrors.length === 0
        ? 'The node is as it was before this run. Fix the cause and run node-prep again.'
        : 'Some files could not be restored; the backups are listed in the error fields. Run `node-prep status`.',
      fields: { failedPath, reason: why, rollbackErrors },
      cause,
    });
    this.name = 'TransactionError';
    this.failedPath = failedPath;
    this.rollbackErrors = rollbackErrors;
  }
}
