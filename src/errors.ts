/**
 * node-prep's exit codes (docs/reference.md holds the table; a signal adds 128 + its number, see
 * util/interrupt.ts). `smokeNotRun`: the smoke test could not run some or all of its checks here
 * (the binaries are for another arch), and none that ran failed: nothing was proven broken, but
 * nothing that did not run was proven to work either.
 */
export const EXIT = { success: 0, failure: 1, usage: 2, smokeNotRun: 3 } as const;

/**
 * Errors are data: a stable code, a one-line message, a hint that says what to do, and the fields a
 * machine reader needs. The CLI prints message + hint; the stack only with --verbose.
 */
export class NodePrepError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly fields: Record<string, unknown>;
  /** 1 for failures, 2 for usage errors. */
  readonly exitCode: number = EXIT.failure;

  constructor(code: string, message: string, opts: { hint?: string; fields?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'NodePrepError';
    this.code = code;
    this.hint = opts.hint;
    this.fields = opts.fields ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, ...this.fields };
  }
}

/** A bad flag, a bad version spec, an unknown arch: exit 2. */
export class UsageError extends NodePrepError {
  override readonly exitCode = EXIT.usage;
  constructor(message: string, hint?: string) {
    super('USAGE', message, { hint: hint ?? 'Run `node-prep --help` for the flags each command takes.' });
    this.name = 'UsageError';
  }
}

export class HttpError extends NodePrepError {
  constructor(readonly url: string, readonly status: number, message?: string, hint?: string) {
    super('HTTP', message ?? `GET ${url} answered ${status}`, { hint, fields: { url, status } });
    this.name = 'HttpError';
  }
}

export class NetworkError extends NodePrepError {
  constructor(readonly url: string, reason: string, hint?: string, cause?: unknown) {
    super('NETWORK', `GET ${url} failed: ${reason}`, {
      hint: hint ?? 'Check the network, HTTPS_PROXY/NO_PROXY, or use --mirror URL or --bundle DIR.',
      fields: { url, reason },
      cause,
    });
    this.name = 'NetworkError';
  }
}

export class RateLimitError extends NodePrepError {
  constructor(readonly url: string, resetAt: Date | undefined, authenticated: boolean) {
    const when = resetAt ? ` until ${resetAt.toISOString()}` : '';
    super('RATE_LIMIT', `The GitHub API rate limit is used up${when} (${url}).`, {
      hint: authenticated
        ? 'Wait for the reset, or pin exact versions (they need no API call).'
        : 'Set GITHUB_TOKEN to raise the limit, pin exact versions (they need no API call), or wait for the reset.',
      fields: { url, resetAt: resetAt?.toISOString() },
    });
    this.name = 'RateLimitError';
  }
}

export class VersionNotFoundError extends NodePrepError {
  constructor(component: string, spec: string, nearest: string[]) {
    const near = nearest.length > 0 ? ` Nearest that exist: ${nearest.join(', ')}.` : '';
    super('VERSION_NOT_FOUND', `${component} has no release matching ${spec}.${near}`, {
      hint: `Run \`node-prep versions ${component}\` for the versions that can be installed.`,
      fields: { component, spec, nearest },
    });
    this.name = 'VersionNotFoundError';
  }
}

export class NoAssetError extends NodePrepError {
  constructor(component: string, version: string, arch: string, url: string) {
    const where = url.startsWith('/') ? `${url} is not in the bundle` : `${url} answered 404`;
    super('NO_ASSET', `${component} ${version} publishes no linux/${arch} asset (${where}).`, {
      hint: `Choose another version with --${component} or another --arch.`,
      fields: { component, version, arch, url },
    });
    this.name = 'NoAssetError';
  }
}

/** A checksum file, signature or API page larger than node-prep reads: refused, never retried. */
export class DocumentTooLargeError extends NodePrepError {
  constructor(readonly url: string, limitBytes: number) {
    super('DOCUMENT_TOO_LARGE', `${url} is larger than ${describeBytes(limitBytes)}, the most node-prep reads of a checksum file, signature or API page.`, {
      hint: 'The server does not answer with the release\'s file: check --mirror and --github-api, or pin the digest with --checksums FILE.',
      fields: { url, limitBytes },
    });
    this.name = 'DocumentTooLargeError';
  }
}

/** A request or download that did not finish within its overall deadline, retries included. */
export class DeadlineError extends NodePrepError {
  constructor(readonly url: string, deadlineMs: number, what: 'document' | 'download') {
    const seconds = Math.round(deadlineMs / 100) / 10;
    super('DEADLINE', `GET ${url} did not finish within ${seconds} s, the deadline for ${what === 'download' ? 'one download' : 'a checksum file, signature or API page'}, retries included.`, {
      hint:
        what === 'download'
          ? 'The server sends too slowly or stalls. Raise --deadline SECONDS (NODE_PREP_DEADLINE), or use a faster --mirror URL or --bundle DIR.'
          : 'The server sends too slowly or stalls; small documents get at most 120 s (or --deadline when shorter). Check --mirror and --github-api.',
      fields: { url, deadlineMs },
    });
    this.name = 'DeadlineError';
  }
}

function describeBytes(n: number): string {
  return n >= 1024 * 1024 && n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}

export class ChecksumMismatchError extends NodePrepError {
  constructor(fields: { artifact: string; url: string; expected: string; actual: string; expectedFrom: string }) {
    super(
      'CHECKSUM_MISMATCH',
      `sha256 of ${fields.artifact} does not match: expected ${fields.expected} (${fields.expectedFrom}), got ${fields.actual} (downloaded from ${fields.url}).`,
      {
        hint: 'Nothing was installed. The download or the mirror is corrupt or tampered with; check --mirror and --checksums.',
        fields,
      },
    );
    this.name = 'ChecksumMismatchError';
  }
}

/**
 * A system error (errno) from the file system, turned into what failed, why and what to do. Errors
 * that are not system errors pass through unchanged.
 */
export function explainSystemError(err: unknown): unknown {
  if (err instanceof NodePrepError || !(err instanceof Error)) return err;
  const e = err as NodeJS.ErrnoException;
  const where = e.path ? ` ${e.path}` : '';
  switch (e.code) {
    case 'ENOSPC':
      return new NodePrepError('NO_SPACE', `No space left on the device holding${where || ' a file node-prep writes'}.`, {
        hint: 'Free some space (containerd, runc and the CNI plugins need about 300 MB, the download cache as much again), or put the cache elsewhere with --cache-dir.',
        fields: { path: e.path },
        cause: err,
      });
    case 'EACCES':
    case 'EPERM':
      return new NodePrepError('PERMISSION', `Permission denied:${where || ` ${e.message}`}.`, {
        hint: 'node-prep writes system paths: run it as root (sudo), or use --root DIR with a folder you can write.',
        fields: { path: e.path },
        cause: err,
      });
    case 'EDQUOT':
      return new NodePrepError('NO_SPACE', `The disk quota is used up on the device holding${where || ' a file node-prep writes'}.`, {
        hint: 'Free some space or raise the quota, or put the cache elsewhere with --cache-dir.',
        fields: { path: e.path },
        cause: err,
      });
    case 'ENOTDIR':
      return new NodePrepError('NOT_A_FOLDER', `A file stands where a folder of${where || ' a path node-prep uses'} should be.`, {
        hint: 'Move that file aside, or choose another folder (--root, --cache-dir, --bundle).',
        fields: { path: e.path },
        cause: err,
      });
    case 'ENAMETOOLONG':
      return new NodePrepError('NAME_TOO_LONG', `A path node-prep uses is too long for the file system${e.path ? ` (${e.path.length} characters, starting ${e.path.slice(0, 60)}…)` : ''}.`, {
        hint: 'Choose a shorter --root, --prefix or --cache-dir.',
        fields: { path: e.path },
        cause: err,
      });
    case 'EROFS':
      return new NodePrepError('READ_ONLY', `The file system holding${where} is read-only.`, {
        hint: 'Remount it read-write, or install into an image root with --root DIR.',
        fields: { path: e.path },
        cause: err,
      });
    default:
      return err;
  }
}
