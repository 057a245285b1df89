/**
 * An arm64 image baked on this amd64 machine, then booted: `node-prep install --root R --arch arm64`
 * into a Debian 12 arm64 root made by debootstrap from Debian's arm64 packages, R packed as the disk
 * and booted with qemu-system-aarch64 (TCG) on R's own kernel and initrd, and inside it containerd
 * must be up from boot and `node-prep smoke` (the packed tarball, Node's arm64 binary) must pass
 * against the service. The guest half is guest/bake-checks.mjs.
 *
 * Too slow under emulation for CI: `npm run test:vm:arm64` runs it. The release server serves
 * Debian's arm64 packages as release assets (debian-release.mjs --arch arm64), made here when missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, runCli, type CliResult } from '../support/cli.ts';
import { debianRelease, type DebianRelease } from '../support/debian.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';
import { bootGuest, consoleTail, ensureRootTar, GUEST_NODE_PREP, nodePayload, printRun, printStages, readChecks, stage, VM_CACHE, type BootResult, type GuestCheck } from './harness.ts';

const ARCH = 'arm64';
const FIXTURES = path.join(REPO, `.cache/debian-release-${ARCH}`);
const NODE_DIR = path.join(REPO, `.cache/node-linux-${ARCH}`);
const NODE_BIN = path.join(NODE_DIR, `node_modules/node-linux-${ARCH}/bin/node`);
/** The hard limit for the guest: boot, containerd's start and the smoke test, all under TCG. */
const GUEST_TIMEOUT_MS = 30 * 60_000;

let fx: DebianRelease;
let gh: ReleaseServer;
let work: string;
let root: string;
let install: CliResult;
let doc: { kind?: string; smoke?: unknown; error?: { message: string } } | undefined;
let result: BootResult;
let checks: GuestCheck[] = [];

function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): void {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'inherit', 'inherit'], timeout: 20 * 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

/** The ELF machine of a file (e_machine at offset 18): 0xb7 is aarch64, 0x3e x86-64. */
async function elfMachine(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(20);
    await fh.read(b, 0, 20, 0);
    return b.readUInt16LE(18);
  } finally {
    await fh.close();
  }
}

async function payload(dir: string): Promise<void> {
  await nodePayload(dir, { node: NODE_BIN, checks: path.join(REPO, 'test/vm/guest/bake-checks.mjs') });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ arch: ARCH, uname: 'aarch64', nodePrep: GUEST_NODE_PREP }, null, 2));
}

/** The newest kernel or initrd in the root's /boot. */
async function newest(prefix: string): Promise<string> {
  const names = (await readdir(path.join(root, 'boot'))).filter((f) => f.startsWith(prefix)).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  if (names.length === 0) throw new Error(`no ${prefix}* in ${root}/boot`);
  return path.join(root, 'boot', names.at(-1)!);
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the VM tests run as root (debootstrap, binfmt_misc, 9p shares)');
  await mkdir(VM_CACHE, { recursive: true });
  work = await mkdtemp(path.join(VM_CACHE, `${ARCH}-bake-`));
  root = path.join(work, 'root');

  await stage(`${ARCH} release assets (Debian's ${ARCH} packages)`, async () => {
    sh(process.execPath, [path.join(REPO, 'scripts/fixtures/debian-release.mjs'), '--arch', ARCH, '--out', FIXTURES]);
  });
  fx = debianRelease(FIXTURES)!;
  await stage(`Node 24 for ${ARCH}`, async () => {
    // npm refuses another cpu's package without --force; it is only copied into the guest.
    if (!existsSync(NODE_BIN)) sh('npm', ['install', '--no-audit', '--no-fund', '--force', '--prefix', NODE_DIR, `node-linux-${ARCH}@24`]);
  });
  const tarball = await ensureRootTar(ARCH);
  await stage(`a fresh ${ARCH} root from the cached one`, async () => {
    await mkdir(root);
    sh('tar', ['--numeric-owner', '--xattrs', '--acls', '-xpf', tarball, '-C', root]);
  });

  gh = await startReleaseServer({ repos: structuredClone(fx.repos) });
  install = await stage(`node-prep install --root R --arch ${ARCH}`, () =>
    runCli([
      'install', '--root', root, '--arch', ARCH,
      '--containerd', fx.versions.containerd.at(-1)!, '--runc', fx.versions.runc, '--cni', fx.versions.cni,
      '--nerdctl', fx.versions.nerdctl, '--crictl', fx.versions.crictl,
      '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', fx.checksums, '--cache-dir', path.join(work, 'cache'), '--json',
    ], { timeoutMs: 600_000 }));
  try {
    doc = JSON.parse(install.stdout);
  } catch {
    doc = undefined;
  }
  if (install.code !== 0) return;

  const payloadDir = path.join(work, 'payload');
  const resultsDir = path.join(work, 'results');
  await mkdir(resultsDir, { recursive: true });
  await stage('payload (npm pack, Node 24 arm64)', () => payload(payloadDir));
  const image = await stage('the baked root as a disk (mkfs.ext4 -d)', async () => {
    const kernel = path.join(work, 'vmlinuz');
    const initrd = path.join(work, 'initrd.img');
    await copyFile(await newest('vmlinuz-'), kernel);
    await copyFile(await newest('initrd.img-'), initrd);
    const mb = Number(execFileSync('du', ['-smx', root], { encoding: 'utf8' }).split('\t')[0]) + 1024;
    const disk = path.join(work, 'rootfs.raw');
    sh('mkfs.ext4', ['-q', '-L', 'root', '-d', root, disk, `${mb}M`]);
    return { arch: ARCH, dir: work, kernel, initrd, disk } as const;
  });
  result = await stage(`boot the baked ${ARCH} root, smoke test inside`, () => bootGuest({ image, payloadDir, resultsDir, timeoutMs: GUEST_TIMEOUT_MS }));
  checks = await readChecks(resultsDir);
  printRun(result, checks, ARCH);
}, 90 * 60_000);

afterAll(async () => {
  await gh?.close();
  printStages();
  if (work && process.env.NODE_PREP_VM_KEEP !== '1') await rm(work, { recursive: true, force: true });
});

const EXPECTED = [
  `the baked ${ARCH} root boots with systemd as PID 1`,
  'containerd is enabled in the image and active after the boot',
  'node-prep smoke passes against the service',
];

describe(`an ${ARCH} image baked on this machine, then booted`, () => {
  it(`install --root --arch ${ARCH} installs ${ARCH} binaries, enables the unit in the image and skips the smoke test it cannot run here`, async () => {
    expect(install.code, `${install.stderr.slice(-2000)}\n${install.stdout.slice(0, 2000)}`).toBe(0);
    expect(doc?.kind).toBe('install');
    expect(JSON.stringify(doc?.smoke)).toMatch(/cannot run here/);
    for (const bin of ['usr/local/bin/containerd', 'usr/local/bin/ctr', 'usr/local/sbin/runc', 'opt/cni/bin/bridge']) {
      expect(await elfMachine(path.join(root, bin)), bin).toBe(0xb7);
    }
    expect(existsSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/containerd.service'))).toBe(true);
  });
  it('the guest boots and powers off within its time', async () => {
    expect(result, 'the guest was never booted (the install failed)').toBeDefined();
    expect(result.timedOut, await consoleTail(result.consoleLog)).toBe(false);
    expect(result.exitCode, await consoleTail(result.consoleLog)).not.toBe('');
  });
  it.each(EXPECTED)('%s', async (want) => {
    const c = checks.find((x) => x.name === want);
    if (!c) throw new Error(`the guest did not run this check; console:\n${result ? await consoleTail(result.consoleLog) : '(no boot)'}`);
    expect(c.ok, c.detail).toBe(true);
  });
});
