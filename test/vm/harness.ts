/**
 * The VM harness: a Debian 12 guest with systemd as PID 1, booted with qemu from a cached image.
 *
 * - The image (scripts/vm/build-image.sh: debootstrap from Debian's packages, Debian's kernel and
 *   initrd) is cached in .cache/vm/ARCH, keyed by the hash of the builder and the guest files it
 *   installs; every boot runs on a fresh qcow2 overlay, so the image itself never changes.
 * - The payload goes in over virtio-9p (tag `payload`, read-only), the results come back over a
 *   second share (tag `results`). The image's node-prep-vm.service runs the payload's run.sh at boot
 *   and powers the guest off; exit 100 reboots it instead, and the next boot runs run.sh again.
 * - Networking is QEMU's user network with restrict=on: the guest reaches nothing but the forwards
 *   given here (guestfwd to servers of the test's own on the host's loopback, hostfwd from loopback).
 * - KVM is used only when it can boot the guest's kernel (probed once and remembered per kernel);
 *   otherwise TCG. Every boot says which.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
const REPO = path.resolve(import.meta.dirname, '../..');

export type VmArch = 'amd64' | 'arm64';
export const VM_CACHE = process.env.NODE_PREP_VM_CACHE ?? path.join(REPO, '.cache/vm');
const BUILDER = path.join(REPO, 'scripts/vm/build-image.sh');
const GUEST_FILES = path.join(REPO, 'scripts/vm/guest');

export interface VmImage {
  arch: VmArch;
  dir: string;
  kernel: string;
  initrd: string;
  disk: string;
}

/** Timings of the harness's stages, printed by the tests and kept for the run's summary. */
export const stages: Array<{ stage: string; ms: number }> = [];
export async function stage<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    const ms = Date.now() - t0;
    stages.push({ stage: name, ms });
    process.stderr.write(`vm: ${name}: ${(ms / 1000).toFixed(1)} s\n`);
  }
}

export function imageKey(arch: VmArch, form: 'disk' | 'tar' = 'disk'): string {
  const h = createHash('sha256').update(arch).update(form === 'tar' ? 'tar' : '').update(readFileSync(BUILDER));
  for (const f of readdirSync(GUEST_FILES).sort()) h.update(f).update(readFileSync(path.join(GUEST_FILES, f)));
  return h.digest('hex').slice(0, 24);
}

/** The cached guest image of this arch, built when missing or when its builder changed. */
export async function ensureImage(arch: VmArch): Promise<VmImage> {
  const dir = path.join(VM_CACHE, arch);
  const key = imageKey(arch);
  const image: VmImage = { arch, dir, kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img'), disk: path.join(dir, 'rootfs.raw') };
  const have = existsSync(path.join(dir, 'key')) ? readFileSync(path.join(dir, 'key'), 'utf8').trim() : '';
  const present = [image.kernel, image.initrd, image.disk].every((f) => existsSync(f));
  // NODE_PREP_VM_REUSE=1 boots the image there is even when the builder changed (while working on
  // the checks, not the image).
  if (present && (have === key || process.env.NODE_PREP_VM_REUSE === '1')) return image;
  await stage(`build the ${arch} guest image`, async () => {
    await mkdir(VM_CACHE, { recursive: true });
    await rm(dir, { recursive: true, force: true });
    const r = spawnSync('bash', [BUILDER, arch, dir], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_PREP_VM_KEY: key }, timeout: 20 * 60_000 });
    if (r.status !== 0) throw new Error(`scripts/vm/build-image.sh ${arch} failed (exit ${r.status ?? r.signal})`);
  });
  return image;
}

/**
 * The cached guest root of this arch as a tarball (build-image.sh --tar), with its kernel and initrd
 * in its /boot: what a bake test unpacks afresh for every run, installs into and boots.
 */
export async function ensureRootTar(arch: VmArch): Promise<string> {
  const dir = path.join(VM_CACHE, `${arch}-root`);
  const key = imageKey(arch, 'tar');
  const tarball = path.join(dir, 'root.tar');
  const have = existsSync(path.join(dir, 'key')) ? readFileSync(path.join(dir, 'key'), 'utf8').trim() : '';
  if (existsSync(tarball) && (have === key || process.env.NODE_PREP_VM_REUSE === '1')) return tarball;
  await stage(`build the ${arch} guest root`, async () => {
    await mkdir(VM_CACHE, { recursive: true });
    await rm(dir, { recursive: true, force: true });
    const r = spawnSync('bash', [BUILDER, '--tar', arch, dir], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_PREP_VM_KEY: key }, timeout: 90 * 60_000 });
    if (r.status !== 0) throw new Error(`scripts/vm/build-image.sh --tar ${arch} failed (exit ${r.status ?? r.signal})`);
  });
  return tarball;
}

const QEMU: Record<VmArch, string> = { amd64: 'qemu-system-x86_64', arm64: 'qemu-system-aarch64' };

/**
 * Whether KVM boots this kernel here. A /dev/kvm that cannot run a stock kernel (a PVM module) fails
 * or hangs before the kernel's first line; the answer is remembered beside the image.
 */
export async function chooseAccel(image: VmImage): Promise<'kvm' | 'tcg'> {
  const forced = process.env.NODE_PREP_VM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced;
  if (image.arch !== 'amd64' || process.arch !== 'x64' || !existsSync('/dev/kvm')) return 'tcg';
  const memo = path.join(image.dir, 'accel');
  if (existsSync(memo)) return readFileSync(memo, 'utf8').trim() === 'kvm' ? 'kvm' : 'tcg';
  const accel = await stage('probe KVM', async () => {
    const child = spawn(QEMU.amd64, ['-accel', 'kvm', '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
      '-kernel', image.kernel, '-append', 'console=ttyS0 panic=-1 init=/nonexistent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const booted = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      child.stdout.on('data', () => {
        if (/Linux version/.test(out)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.on('close', () => {
        clearTimeout(timer);
        resolve(/Linux version/.test(out));
      });
    });
    child.kill('SIGKILL');
    return booted ? 'kvm' : 'tcg';
  });
  writeFileSync(memo, `${accel}\n`);
  return accel;
}

export interface GuestForward {
  /** Address and port the guest connects to, e.g. 10.0.2.100:80. */
  guest: string;
  /** The host's loopback port it reaches. */
  hostPort: number;
}

export interface BootOptions {
  image: VmImage;
  payloadDir: string;
  resultsDir: string;
  /** Hard limit for the whole run (every boot of it); the guest is killed after it. */
  timeoutMs: number;
  guestForwards?: GuestForward[];
  /** Host loopback port → guest port (ssh). */
  hostForwards?: Array<{ hostPort: number; guestPort: number }>;
  /** Extra kernel command line (a cloud-init datasource). */
  append?: string;
  memoryMiB?: number;
  /** Where the serial console goes; default resultsDir/console.log. */
  consoleLog?: string;
  /** Keep the overlay disk after the run (NODE_PREP_VM_KEEP=1 does too), to boot it again by hand. */
  keep?: boolean;
}

export interface BootResult {
  accel: 'kvm' | 'tcg';
  /** The payload's exit code, from the results share ('' when the guest never wrote it). */
  exitCode: string;
  boots: number;
  timedOut: boolean;
  consoleLog: string;
  overlay?: string;
  ms: number;
}

/** Drivers udev would load for emulated hardware the tests never use: each costs seconds under TCG. */
const SLOW_MODULES = `modprobe.blacklist=${['kvm', 'kvm_amd', 'kvm_intel', 'cfg80211', 'iTCO_wdt', 'iTCO_vendor_support', 'lpc_ich', 'i2c_i801', 'pcspkr', 'joydev', 'serio_raw', 'powernow_k8', 'drm', 'bochs'].join(',')}`;

function qemuArgs(o: BootOptions, accel: 'kvm' | 'tcg', overlay: string, consoleLog: string): string[] {
  const net = ['user', 'id=n0', 'restrict=on'];
  // `cmd:` runs one socat per guest connection; a `tcp:` chardev would carry a single connection.
  for (const f of o.guestForwards ?? []) net.push(`guestfwd=tcp:${f.guest}-cmd:socat STDIO TCP:127.0.0.1:${f.hostPort}`);
  for (const f of o.hostForwards ?? []) net.push(`hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`);
  const console_ = o.image.arch === 'arm64' ? 'ttyAMA0' : 'ttyS0';
  const machine = o.image.arch === 'arm64' ? ['-machine', 'virt', '-cpu', 'max'] : ['-machine', 'q35'];
  return [
    ...machine, '-accel', accel === 'tcg' ? 'tcg,thread=multi' : 'kvm',
    '-smp', '2', '-m', String(o.memoryMiB ?? 2048),
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-chardev', `file,id=con,path=${consoleLog}`, '-serial', 'chardev:con',
    '-kernel', o.image.kernel, '-initrd', o.image.initrd,
    '-append', `root=/dev/vda rw console=${console_} panic=-1 systemd.show_status=1 ${SLOW_MODULES} ${o.append ?? ''}`.trim(),
    '-drive', `file=${overlay},if=virtio,format=qcow2,cache=unsafe`,
    '-netdev', net.join(','), '-device', 'virtio-net-pci,netdev=n0',
    '-device', 'virtio-rng-pci',
    '-virtfs', `local,path=${o.payloadDir},mount_tag=payload,security_model=none,readonly=on,id=payload`,
    '-virtfs', `local,path=${o.resultsDir},mount_tag=results,security_model=none,id=results`,
  ];
}

/** Boots the guest on a fresh overlay and waits until it powers off (or the hard timeout). */
export async function bootGuest(o: BootOptions): Promise<BootResult> {
  const accel = await chooseAccel(o.image);
  const work = await mkdtemp(path.join(VM_CACHE, 'run-'));
  const overlay = path.join(work, 'overlay.qcow2');
  const consoleLog = o.consoleLog ?? path.join(o.resultsDir, 'console.log');
  const mk = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', o.image.disk, overlay], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`qemu-img create: ${mk.stderr}`);
  process.stderr.write(`vm: booting the ${o.image.arch} guest with ${accel.toUpperCase()}${accel === 'tcg' ? ' (software emulation)' : ''}; console: ${consoleLog}\n`);
  const t0 = Date.now();
  const child = spawn(QEMU[o.image.arch], qemuArgs(o, accel, overlay, consoleLog), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, o.timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const keep = o.keep === true || process.env.NODE_PREP_VM_KEEP === '1';
  if (!keep) await rm(work, { recursive: true, force: true });
  if (code !== 0 && !timedOut) throw new Error(`${QEMU[o.image.arch]} exited ${code}: ${stderr.slice(-2000)}`);
  const read = (f: string) => readFile(path.join(o.resultsDir, f), 'utf8').then((s) => s.trim(), () => '');
  return {
    accel,
    exitCode: await read('exit-code'),
    boots: Number((await read('boots')) || 0),
    timedOut,
    consoleLog,
    ...(keep ? { overlay } : {}),
    ms: Date.now() - t0,
  };
}

export interface GuestCheck {
  boot: number;
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

export async function readChecks(resultsDir: string): Promise<GuestCheck[]> {
  const text = await readFile(path.join(resultsDir, 'results.jsonl'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as GuestCheck);
}

/**
 * A payload that runs a checks script with Node: node-prep as users get it (`npm pack`, as
 * node-prep.tgz), the Node binary given (the guest's arch), the script, and a run.sh that unpacks both
 * into /opt/np-test on the first boot and runs the script with the boot count on every boot.
 */
export async function nodePayload(dir: string, o: { node: string; checks: string }): Promise<void> {
  await mkdir(dir, { recursive: true });
  const out = spawnSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (out.status !== 0) throw new Error(`npm pack failed (exit ${out.status ?? out.signal})`);
  await rename(path.join(dir, out.stdout.trim().split('\n').at(-1)!), path.join(dir, 'node-prep.tgz'));
  await copyFile(o.node, path.join(dir, 'node'));
  const script = path.basename(o.checks);
  await copyFile(o.checks, path.join(dir, script));
  await writeFile(path.join(dir, 'run.sh'), [
    '#!/bin/sh',
    '# Unpacks node-prep and Node into /opt/np-test once, then runs the checks of this boot.',
    'set -eu',
    'T=/opt/np-test',
    'if [ ! -x "$T/node" ]; then',
    '  mkdir -p "$T" && cp /mnt/payload/node "$T/node" && chmod 0755 "$T/node"',
    '  tar -xzf /mnt/payload/node-prep.tgz -C "$T"',
    'fi',
    `exec "$T/node" /mnt/payload/${script} "$1"`,
    '',
  ].join('\n'), { mode: 0o755 });
}

/** How a checks script runs node-prep in a guest with a nodePayload. */
export const GUEST_NODE_PREP = ['/opt/np-test/node', '/opt/np-test/package/bin/node-prep.js'];

/** One line for the run and one per check, on stderr; a failed check with its detail. */
export function printRun(result: BootResult, checks: GuestCheck[], arch: VmArch): void {
  process.stderr.write(`vm: ${arch}: ${result.boots} boot(s) with ${result.accel.toUpperCase()} in ${(result.ms / 1000).toFixed(0)} s; ${checks.length} checks\n`);
  for (const c of checks) process.stderr.write(`vm:   boot ${c.boot} ${c.ok ? 'ok  ' : 'FAIL'} ${c.name} (${(c.ms / 1000).toFixed(1)} s)${c.ok ? '' : `: ${c.detail.slice(0, 400)}`}\n`);
}

/** Every stage's time in one line, for the end of a run. */
export function printStages(): void {
  process.stderr.write(`vm: stages: ${stages.map((s) => `${s.stage} ${(s.ms / 1000).toFixed(1)} s`).join('; ')}\n`);
}

/** The last lines of the console, for a failure message. */
export async function consoleTail(file: string, lines = 60): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}
