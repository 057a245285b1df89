/**
 * install.sh, piped into the shell as users do (`curl -sfL .../install.sh | sh -s -- ARGS`), under
 * dash (Debian's sh) with curl and under busybox sh with busybox's own wget and nothing else on PATH,
 * against the test release server (GitHub's download paths on loopback, NODE_PREP_MIRROR pointing
 * at it, downloads redirected to a second host as GitHub's are). The executable it fetches is a
 * stand-in script that says so and records that it ran; one test fetches the real amd64 executable.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REPO, testEnv } from '../support/cli.ts';
import { type ReleaseServer, startReleaseServer } from '../support/release-server.ts';
import { seaExecutable } from '../support/sea.ts';

const SCRIPT = path.join(REPO, 'install.sh');
const { version } = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
const REPO_NAME = 'node-prep/node-prep';
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A stand-in for the executable: prints its arguments, and writes a marker so a test sees it ran. */
const standIn = (arch: string) =>
  Buffer.from(`#!/bin/sh\necho "stand-in node-prep-linux-${arch}: $*"\n[ -z "\${RAN_MARKER:-}" ] || echo "$0" >>"$RAN_MARKER"\nexit "\${STAND_IN_EXIT:-0}"\n`);
const sums = (assets: Record<string, Buffer>) => Buffer.from(Object.entries(assets).map(([n, b]) => `${sha256(b)}  ${n}\n`).join(''));

let gh: ReleaseServer;
let tmp: string;
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((f) => existsSync(f));

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'np-install-sh-'));
  const assets = { 'node-prep-linux-amd64': standIn('amd64'), 'node-prep-linux-arm64': standIn('arm64') };
  gh = await startReleaseServer({
    cdnRedirect: true,
    repos: {
      [REPO_NAME]: [
        { tag: `v${version}`, assets: { ...assets, SHA256SUMS: sums(assets) } },
        // A release whose executable does not match its SHA256SUMS (a tampered mirror).
        { tag: 'v0.0.9', assets: { 'node-prep-linux-amd64': standIn('tampered'), SHA256SUMS: sums({ 'node-prep-linux-amd64': standIn('amd64') }) } },
      ],
    },
  });
});
afterAll(async () => {
  await gh?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** A PATH folder with a fake uname that reports MACHINE for -m, before the real tools. */
async function unamePath(machine: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmp, 'uname-'));
  await writeFile(path.join(dir, 'uname'), `#!/bin/sh\ncase "$1" in -m) echo ${machine} ;; *) echo Linux ;; esac\n`);
  await chmod(path.join(dir, 'uname'), 0o755);
  return dir;
}

/** busybox and its applets only: no curl, no coreutils, no bash. */
async function busyboxPath(): Promise<string> {
  const dir = path.join(tmp, 'busybox-only');
  if (existsSync(dir)) return dir;
  await mkdir(dir);
  for (const applet of ['sh', 'wget', 'sha256sum', 'uname', 'mktemp', 'awk', 'cut', 'chmod', 'mv', 'cp', 'rm', 'mkdir', 'cat', 'printf', 'echo']) {
    await symlink(busybox!, path.join(dir, applet));
  }
  return dir;
}

interface Shell {
  name: string;
  /** busybox sh runs its own applets before PATH (a standalone shell): no fake uname there. */
  fakeUname: boolean;
  argv: () => Promise<[string, string[]]>;
  path: () => Promise<string>;
}
const SHELLS: Shell[] = [
  { name: 'dash, with curl', fakeUname: true, argv: async () => ['dash', ['-s', '--']], path: async () => process.env.PATH! },
  ...(busybox ? [{ name: 'busybox sh, with busybox wget only', fakeUname: false, argv: async (): Promise<[string, string[]]> => [busybox, ['sh', '-s', '--']], path: busyboxPath }] : []),
];

describe.each(SHELLS)('install.sh under $name', (shell) => {
  let dir: string;
  let bin: string;
  let marker: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmp, 'run-'));
    bin = path.join(dir, 'bin');
    marker = path.join(dir, 'ran');
  });

  async function installSh(args: string[], env: Record<string, string> = {}, extraPath?: string) {
    const [cmd, pre] = await shell.argv();
    const PATH = extraPath ? `${extraPath}:${await shell.path()}` : await shell.path();
    const r = await execa(cmd, [...pre, ...args], {
      input: await readFile(SCRIPT),
      env: testEnv({ PATH, NODE_PREP_MIRROR: gh.url, NODE_PREP_INSTALL_DIR: bin, RAN_MARKER: marker, TMPDIR: dir, ...env }),
      extendEnv: false,
      reject: false,
      stripFinalNewline: false,
      timeout: 60_000,
    });
    return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }
  const ran = async () => (existsSync(marker) ? (await readFile(marker, 'utf8')).trim().split('\n') : []);
  const leftovers = async () => (await readdir(dir)).filter((n) => n.startsWith('node-prep-install.'));

  it('downloads, verifies, installs into NODE_PREP_INSTALL_DIR and runs it with the arguments; stdout is only its', async () => {
    const r = await installSh(['install', '--nerdctl', '2.2.0'], { STAND_IN_EXIT: '3' });
    expect(r.stdout).toBe('stand-in node-prep-linux-amd64: install --nerdctl 2.2.0\n');
    expect(r.code).toBe(3); // node-prep's exit code is the script's
    expect(r.stderr).toContain(`installed node-prep ${version} to ${bin}/node-prep`);
    expect(await readFile(path.join(bin, 'node-prep'))).toEqual(standIn('amd64'));
    expect(await ran()).toEqual([path.join(bin, 'node-prep')]);
    expect(await leftovers()).toEqual([]);
    const paths = gh.requests.map((q) => q.path);
    expect(paths).toContain(`/${REPO_NAME}/releases/download/v${version}/node-prep-linux-amd64`);
  });

  it('a second run finds it installed and downloads only SHA256SUMS; no arguments installs without running', async () => {
    expect((await installSh([])).code).toBe(0);
    expect(await ran()).toEqual([]);
    const before = gh.requests.length;
    const r = await installSh(['status']);
    expect(r).toMatchObject({ code: 0, stdout: 'stand-in node-prep-linux-amd64: status\n' });
    expect(r.stderr).toContain('already in');
    expect(gh.requests.slice(before).filter((q) => q.server === 'github').map((q) => path.basename(q.path))).toEqual(['SHA256SUMS']);
  });

  it('NODE_PREP_NO_INSTALL=1 runs it from a temporary folder, removed afterwards, and installs nothing', async () => {
    const r = await installSh(['plan'], { NODE_PREP_NO_INSTALL: '1' });
    expect(r).toMatchObject({ code: 0, stdout: 'stand-in node-prep-linux-amd64: plan\n' });
    expect(existsSync(bin)).toBe(false);
    expect((await ran())[0]).toMatch(new RegExp(`^${dir}/node-prep-install\\.[^/]+/node-prep-linux-amd64$`));
    expect(await leftovers()).toEqual([]);
  });

  it.runIf(shell.fakeUname)('picks the arm64 executable on aarch64', async () => {
    const r = await installSh(['--version'], {}, await unamePath('aarch64'));
    expect(r).toMatchObject({ code: 0, stdout: 'stand-in node-prep-linux-arm64: --version\n' });
  });

  it.runIf(shell.fakeUname)('refuses an unknown arch with one clear line, downloading nothing', async () => {
    const before = gh.requests.length;
    const r = await installSh(['install'], {}, await unamePath('riscv64'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('node-prep install.sh: unsupported architecture riscv64: the node-prep executable exists for amd64 (x86_64) and arm64 (aarch64).\n');
    expect(gh.requests.length).toBe(before);
  });

  it('refuses an executable whose sha256 is not the one in SHA256SUMS: nothing installed, nothing run', async () => {
    const r = await installSh(['install'], { NODE_PREP_VERSION: 'v0.0.9' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `node-prep install.sh: sha256 mismatch for ${gh.url}/${REPO_NAME}/releases/download/v0.0.9/node-prep-linux-amd64: ` +
        `expected ${sha256(standIn('amd64'))} (from SHA256SUMS), got ${sha256(standIn('tampered'))}. Nothing was installed or run.\n`,
    );
    expect(r.stdout).toBe('');
    expect(existsSync(bin)).toBe(false);
    expect(await ran()).toEqual([]);
    expect(await leftovers()).toEqual([]);
  });

  it('refuses a failed download, naming the URL', async () => {
    const r = await installSh(['install'], { NODE_PREP_VERSION: '9.9.9' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`node-prep install.sh: could not download ${gh.url}/${REPO_NAME}/releases/download/v9.9.9/SHA256SUMS`);
    expect(existsSync(bin)).toBe(false);
  });

  it('refuses a download the server fails (after the retries of curl), naming the URL', async () => {
    gh.setFault({ match: '/node-prep-linux-amd64', status: 500, times: 10 });
    try {
      const r = await installSh(['install']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`could not download ${gh.url}/${REPO_NAME}/releases/download/v${version}/node-prep-linux-amd64.`);
      expect(await ran()).toEqual([]);
    } finally {
      gh.clearFaults();
    }
  });
});

describe('install.sh', () => {
  it(`defaults to this package's version (${version})`, async () => {
    expect(await readFile(SCRIPT, 'utf8')).toContain(`version="\${NODE_PREP_VERSION:-${version}}"`);
    expect(await readFile(SCRIPT, 'utf8')).toContain(`/releases/download/v${version}/install.sh | sudo sh -s -- install`);
  });

  const amd64 = seaExecutable('amd64');
  it.skipIf(!amd64)('fetches the real amd64 executable and runs plan --json through it', async () => {
    const exe = await readFile(amd64!);
    const server = await startReleaseServer({
      repos: { [REPO_NAME]: [{ tag: `v${version}`, assets: { 'node-prep-linux-amd64': exe, SHA256SUMS: sums({ 'node-prep-linux-amd64': exe }) } }] },
    });
    const dir = await mkdtemp(path.join(tmp, 'real-'));
    try {
      const r = await execa('sh', ['-s', '--', 'plan', '--json'], {
        input: await readFile(SCRIPT),
        env: testEnv({ NODE_PREP_MIRROR: server.url, NODE_PREP_INSTALL_DIR: path.join(dir, 'bin') }),
        extendEnv: false,
        reject: false,
        timeout: 60_000,
      });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(JSON.parse(String(r.stdout))).toMatchObject({ kind: 'plan', nodePrepVersion: version });
      expect(sha256(await readFile(path.join(dir, 'bin/node-prep')))).toBe(sha256(exe));
    } finally {
      await server.close();
    }
  });
});
