/**
 * Which C library a root has, read from files, never by running the root's binaries (an image root may
 * be another arch, or a half-built tree):
 *
 * 1. glibc's libc.so.6 in the usual places (multiarch dir of the target arch first). Before glibc 2.34
 *    it is a symlink to `libc-2.31.so`, whose name carries the version. Since then it is the library
 *    itself, and its .rodata holds the banner `GNU C Library (Debian GLIBC 2.36-9) stable release
 *    version 2.36.`: a chunked read (bounded to 32 MiB) finds it with a regex.
 * 2. musl's loader `/lib/ld-musl-<arch>.so.1`.
 * 3. For the live host, when neither works, `ldd --version` (the host's own tool) is parsed.
 *
 * containerd publishes two linux tarballs per release: `containerd-<v>-linux-<arch>.tar.gz`, linked
 * against glibc 2.35 (built on Ubuntu 22.04), and `containerd-static-<v>-linux-<arch>.tar.gz` for
 * everything else (see the "Which file should I download?" section of each release note, e.g.
 * https://github.com/containerd/containerd/releases/tag/v2.2.0).
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Arch } from '../arch.ts';
import { resolveInRoot } from './resolve.ts';

export type LibcFact =
  | { kind: 'glibc'; version: string; source: string }
  | { kind: 'musl'; version?: string | undefined; source: string }
  | { kind: 'unknown'; detail: string };

/** The oldest glibc the dynamic containerd tarball runs on. */
export const CONTAINERD_DYNAMIC_MIN_GLIBC = '2.35';

/**
 * Which containerd tarball to install for a root's glibc: the dynamic one needs glibc >= 2.35; below
 * that, and for musl or no libc at all (`undefined`), only the static build runs.
 */
export function containerdAssetFlavor(glibc: string | undefined): 'dynamic' | 'static' {
  if (glibc === undefined || !/^\d+\.\d+/.test(glibc)) return 'static';
  return compareDotted(glibc, CONTAINERD_DYNAMIC_MIN_GLIBC) >= 0 ? 'dynamic' : 'static';
}

/** Numeric compare of dotted versions: 2.9 < 2.35 < 2.36.1. */
export function compareDotted(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const MULTIARCH: Record<Arch, string> = { amd64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
const MUSL_LOADER: Record<Arch, string> = { amd64: 'ld-musl-x86_64.so.1', arm64: 'ld-musl-aarch64.so.1' };

function glibcCandidates(arch: Arch): string[] {
  const other = arch === 'amd64' ? 'arm64' : 'amd64';
  const dirs = [`/lib/${MULTIARCH[arch]}`, `/usr/lib/${MULTIARCH[arch]}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib', `/lib/${MULTIARCH[other]}`, `/usr/lib/${MULTIARCH[other]}`];
  return dirs.map((d) => `${d}/libc.so.6`);
}

/** The banner glibc carries in its read-only data. */
const BANNER = /GNU C Library [^\n\0]{0,160}?release version (\d+\.\d+(?:\.\d+)?)/;
/** The pre-2.34 file name libc.so.6 links to. */
const VERSIONED_NAME = /^libc-(\d+\.\d+(?:\.\d+)?)\.so$/;

export function parseGlibcBanner(text: string): string | undefined {
  return BANNER.exec(text)?.[1];
}

/** `ldd (Debian GLIBC 2.36-9+deb12u14) 2.36` -> 2.36; musl's ldd prints `musl libc (x86_64)` + `Version 1.2.4`. */
export function parseLddVersion(output: string): LibcFact | undefined {
  const first = output.split('\n')[0] ?? '';
  if (/musl/i.test(output)) return { kind: 'musl', version: /Version (\d+\.\d+\.\d+)/.exec(output)?.[1], source: 'ldd --version' };
  if (/GLIBC|GNU libc|glibc/i.test(first)) {
    const v = /(\d+\.\d+(?:\.\d+)?)\s*$/.exec(first.trim())?.[1];
    if (v) return { kind: 'glibc', version: v, source: 'ldd --version' };
  }
  return undefined;
}

/** Scan a file for the glibc banner, 1 MiB at a time with an overlap, reading at most maxBytes. */
export async function scanForBanner(file: string, maxBytes = 32 * 1024 * 1024): Promise<string | undefined> {
  const handle = await open(file, 'r');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    const overlap = 256;
    let carry = '';
    for (let pos = 0; pos < maxBytes; ) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, pos);
      if (bytesRead === 0) break;
      const text = carry + chunk.toString('latin1', 0, bytesRead);
      const found = parseGlibcBanner(text);
      if (found) return found;
      carry = text.slice(-overlap);
      pos += bytesRead;
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

/** The C library of a root (`/` for this machine), from its files. */
export async function readLibc(root: string, arch: Arch): Promise<LibcFact> {
  const tried: string[] = [];
  for (const candidate of glibcCandidates(arch)) {
    const r = await resolveInRoot(root, candidate);
    if (r.kind !== 'found' || !r.stats.isFile()) continue;
    const fromName = VERSIONED_NAME.exec(path.posix.basename(r.path))?.[1];
    if (fromName) return { kind: 'glibc', version: fromName, source: `${candidate} -> ${r.path}` };
    const hostPath = root === '/' ? r.path : path.join(root, r.path);
    const fromBanner = await scanForBanner(hostPath).catch(() => undefined);
    if (fromBanner) return { kind: 'glibc', version: fromBanner, source: `the version banner in ${candidate}` };
    tried.push(candidate);
  }
  for (const loaderArch of [arch, arch === 'amd64' ? 'arm64' : 'amd64'] as const) {
    const loader = `/lib/${MUSL_LOADER[loaderArch]}`;
    if ((await resolveInRoot(root, loader)).kind === 'found') return { kind: 'musl', source: loader };
  }
  return {
    kind: 'unknown',
    detail: tried.length > 0 ? `${tried.join(', ')} carries no glibc version banner` : 'no libc.so.6 and no musl loader (/lib/ld-musl-*.so.1) found',
  };
}
