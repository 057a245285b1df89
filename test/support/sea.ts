/**
 * The single executables of `npm run build:sea` (dist/sea/). Tests of them skip while they are not
 * built, unless NODE_PREP_E2E=1, where that fails: CI builds them first.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './cli.ts';
import { E2E_REQUIRED } from './debian.ts';

export const SEA_DIR = path.join(REPO, 'dist/sea');

/** Why an executable cannot stand for the code here: missing, or older than what it is built from. */
export function seaOutdated(file: string): string | undefined {
  if (!existsSync(file)) return `${path.relative(REPO, file)} is missing`;
  const inputs = ['src', 'templates'].flatMap((d) =>
    readdirSync(path.join(REPO, d), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)),
  );
  inputs.push(path.join(REPO, 'scripts/build-sea.mjs'), path.join(REPO, 'package.json'));
  const built = statSync(file).mtimeMs;
  const newer = inputs.find((f) => statSync(f).mtimeMs > built);
  return newer ? `${path.relative(REPO, file)} is older than ${path.relative(REPO, newer)}` : undefined;
}

/** The executable, if built from the code here; undefined (skip) if not, or an error under NODE_PREP_E2E=1. */
export function seaExecutable(arch: 'amd64' | 'arm64'): string | undefined {
  const file = path.join(SEA_DIR, `node-prep-linux-${arch}`);
  const why = seaOutdated(file);
  if (why === undefined) return file;
  if (E2E_REQUIRED) throw new Error(`NODE_PREP_E2E=1 but ${why}: run npm run build:sea`);
  return undefined;
}

/**
 * How this amd64 machine runs an arm64 executable: qemu-user, invoked directly, with the arm64 glibc
 * and libstdc++ of Debian's libc6-arm64-cross and libstdc++6-arm64-cross as its sysroot. The sysroot
 * is a folder whose lib is a link to theirs, as on a usr-merged system, so paths the program resolves
 * itself (/lib is a link) agree with what qemu shows it.
 */
export const QEMU = '/usr/bin/qemu-aarch64-static';
export const ARM64_LIBS = '/usr/aarch64-linux-gnu/lib';

export function qemuMissing(): string | undefined {
  const missing = [QEMU, path.join(ARM64_LIBS, 'ld-linux-aarch64.so.1'), path.join(ARM64_LIBS, 'libstdc++.so.6')].filter((f) => !existsSync(f));
  if (missing.length === 0) return undefined;
  const why = `missing ${missing.join(', ')} (Debian: qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross)`;
  if (E2E_REQUIRED) throw new Error(`NODE_PREP_E2E=1 but ${why}`);
  return why;
}
