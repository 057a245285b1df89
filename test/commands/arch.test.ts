/**
 * The arch install and plan install for: under --root the image's own (from the ELF header of its
 * shell), refused when --arch says otherwise unless --force-arch; on this machine its own. And what
 * install and smoke do with binaries this machine cannot run: install succeeds and says the smoke
 * test was skipped; `smoke` exits 3. The image roots hold hand-made ELF headers (e_machine 62 or 183).
 */
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectArch, type Arch } from '../../src/arch.ts';
import { archRun } from '../../src/node/binfmt.ts';
import { chooseArch } from '../../src/commands/target-arch.ts';
import { runCli } from '../support/cli.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';

const host = detectArch();
const other: Arch = host === 'amd64' ? 'arm64' : 'amd64';
const MACHINE: Record<Arch, number> = { amd64: 62, arm64: 183 };

let m: SyntheticMirror;
beforeAll(async () => {
  m = await startSyntheticMirror('np-arch-');
});
afterAll(() => m.close());

const source = () => ['--mirror', m.gh.url, '--github-api', m.gh.apiUrl, '--checksums', m.sums];

/** An image root whose /bin/sh is a link to /bin/busybox, a 64-bit ELF header for `arch`. */
async function imageOf(arch: Arch | 'riscv64'): Promise<string> {
  const root = await mkdtemp(path.join(m.work, `image-${arch}-`));
  await mkdir(path.join(root, 'bin'));
  const elf = Buffer.alloc(64);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf[5] = 1;
  elf[6] = 1;
  elf.writeUInt16LE(2, 16);
  elf.writeUInt16LE(arch === 'riscv64' ? 243 : MACHINE[arch], 18);
  await writeFile(path.join(root, 'bin/busybox'), elf, { mode: 0o755 });
  await symlink('busybox', path.join(root, 'bin/sh'));
  return root;
}

const planJson = async (args: string[]) => {
  const r = await runCli(['plan', ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { arch: string; archReason: string; smoke: { mode: string; reason: string } };
};

describe('the arch of an image root', () => {
  it('is the default under --root, read from the ELF header of its shell', async () => {
    const plan = await planJson(['--root', await imageOf(other)]);
    expect(plan.arch).toBe(other);
    expect(plan.archReason).toBe("the image's arch (the ELF header of /bin/sh (/bin/busybox))");
  });

  it('an --arch that contradicts it is a usage error naming both arches; --force-arch overrides', async () => {
    const root = await imageOf(other);
    const r = await runCli(['plan', '--root', root, '--arch', host]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`node-prep: --arch ${host} does not match the image root ${root}: the image is ${other} (the ELF header of /bin/sh (/bin/busybox)).`);
    expect(r.stderr).toContain(`Drop --arch to install for ${other}, or add --force-arch to install ${host} anyway.`);
    const forced = await planJson(['--root', root, '--arch', host, '--force-arch']);
    expect(forced.arch).toBe(host);
    expect(forced.archReason).toBe(`--arch ${host} with --force-arch`);
    // install refuses it the same way, before anything is downloaded.
    m.gh.requests.length = 0;
    const install = await runCli(['install', '--root', root, '--no-start', '--arch', host, ...source()]);
    expect(install.code).toBe(2);
    expect(install.stderr).toContain(`--arch ${host} does not match the image root ${root}`);
    expect(m.gh.requests).toEqual([]);
  });

  it('an image of an arch node-prep does not install for is refused without --arch', async () => {
    const root = await imageOf('riscv64');
    const r = await runCli(['plan', '--root', root]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`The image root ${root} is riscv64 (the ELF header of /bin/sh (/bin/busybox)): node-prep installs for amd64 and arm64 only.`);
  });

  it('an empty image falls back to this machine\'s arch and says so; install warns', async () => {
    const root = await mkdtemp(path.join(m.work, 'empty-'));
    const plan = await planJson(['--root', root]);
    expect(plan.arch).toBe(host);
    expect(plan.archReason).toBe("this machine's arch (the image has no ELF binary that names its own)");
    const install = await runCli(['install', '--root', root, '--no-start', '--skip-smoke', ...source(), '--json']);
    expect(install.code, install.stderr).toBe(0);
    expect(JSON.parse(install.stdout).warnings).toContain(
      `the image root ${root} has no ELF /bin/sh, /bin/busybox or /usr/bin/env to read its arch from: installing for this machine's arch, ${host}; pass --arch for another`,
    );
    // Installed once, the record says which arch it is; a second run keeps it.
    expect((await planJson(['--root', root])).archReason).toMatch(/^the arch node-prep installed into the image before/);
  });

  it('on this machine, --arch of another arch is a usage error, even with --force-arch', async () => {
    for (const extra of [[], ['--force-arch']]) {
      const r = await runCli(['plan', '--arch', other, ...extra]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`node-prep: --arch ${other} does not match this ${host} machine: its binaries would not run here.`);
    }
    expect((await runCli(['plan', '--force-arch'])).stderr).toContain('--force-arch needs --arch');
  });

  it('doctor judges the image\'s arch by default', async () => {
    const r = await runCli(['doctor', '--root', await imageOf(other), '--json']);
    const arch = (JSON.parse(r.stdout) as { findings: Array<{ id: string; level: string; title: string }> }).findings.find((f) => f.id === 'arch');
    expect(arch).toMatchObject({ level: 'ok', title: `linux/${other}, the image's arch` });
  });

  it.each([
    [{ explicit: undefined, image: undefined, recorded: 'arm64' as Arch }, 'arm64', /its record/],
    [{ explicit: 'arm64' as Arch, image: undefined, recorded: 'amd64' as Arch }, 'arm64', /^--arch arm64 \(the image has no ELF binary/],
    [{ explicit: 'arm64' as Arch, image: { arch: 'arm64', installable: 'arm64' as Arch, source: 's' }, recorded: undefined }, 'arm64', /^--arch arm64, the image's arch \(s\)$/],
  ])('chooseArch %j', (given, arch, reason) => {
    const chosen = chooseArch({ force: false, root: '/img', host: 'amd64', ...given });
    expect(chosen.arch).toBe(arch);
    expect(chosen.reason).toMatch(reason);
  });
});

// Which of the two runs depends on this machine: whether a binfmt_misc handler for the other arch
// is registered (qemu-user-static's, or one a VM harness registered).
describe('binaries of another arch', () => {
  it('without a binfmt handler: install succeeds and says the smoke test was skipped; smoke exits 3 and says why', async ({ skip }) => {
    if ((await archRun(other)).kind !== 'cannot') skip(`this machine runs ${other} binaries through a binfmt_misc handler`);
    const root = await imageOf(other);
    const plan = await planJson(['--root', root]);
    expect(plan.smoke).toMatchObject({ mode: 'skipped', reason: expect.stringContaining(`the binaries are for ${other} and this machine is ${host}, with no binfmt_misc handler`) });

    const text = await runCli(['install', '--root', root, '--no-start', ...source()]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`smoke test: skipped (the binaries are for ${other} and this machine is ${host}`);
    // The task tree shows the phase as skipped, with why, not as done.
    expect(text.stderr).toMatch(new RegExp(`↓ \\[[\\d:]+\\] Smoke test \\[SKIPPED: the binaries are for ${other} and this machine is ${host}`));
    expect(text.stderr).not.toMatch(/✔ Smoke test/);

    const json = await runCli(['install', '--root', root, '--no-start', ...source(), '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { ok: boolean; arch: string; smoke: { skipped?: string } };
    expect(report).toMatchObject({ ok: true, arch: other });
    expect(report.smoke.skipped).toMatch(/none of them can run here/);

    const smoke = await runCli(['smoke', '--root', root]);
    expect(smoke.code).toBe(3);
    expect(smoke.stdout).toBe(`smoke test NOT RUN: the binaries are for ${other} and this machine is ${host}, with no binfmt_misc handler for ${other} (qemu-user-static registers one): none of them can run here. Run \`node-prep smoke\` on an ${other} machine, or in the image when it boots\n`);
  });

  it('under a binfmt handler: plan says emulated; smoke runs the binaries and the config, names the rest as not run', async ({ skip }) => {
    const runs = await archRun(other);
    if (runs.kind !== 'emulated') skip(`this machine has no binfmt_misc handler for ${other}`);
    const handler = (runs as Extract<typeof runs, { kind: 'emulated' }>).handler;
    const root = await imageOf(other);
    const plan = await planJson(['--root', root]);
    expect(plan.smoke).toMatchObject({ mode: 'emulated', reason: expect.stringContaining(`under user-mode emulation (binfmt handler ${handler.name})`) });
    expect((await runCli(['install', '--root', root, '--no-start', '--skip-smoke', ...source()])).code).toBe(0);
    const smoke = await runCli(['smoke', '--root', root, '--json']);
    const report = JSON.parse(smoke.stdout) as { ok: boolean; checks: Array<{ name: string }>; notRun: Array<{ name: string; why: string }>; emulatedBy: string };
    expect(report.emulatedBy).toBe(`${handler.name} (${handler.interpreter})`);
    expect(report.checks.map((c) => c.name)).toEqual(['containerd version', 'ctr version', 'shim version', 'runc version', 'nerdctl version', 'crictl version', 'config', 'cleanup']);
    expect(report.notRun.map((c) => c.name)).toEqual(['containerd start', 'socket', 'cri version', 'cri status', 'container run', 'nerdctl ps', 'ctr images']);
    // The synthetic binaries are scripts, not containerd: their config check fails (exit 1), else 3.
    expect(smoke.code).toBe(report.ok ? 3 : 1);
    const text = (await runCli(['smoke', '--root', root])).stdout;
    expect(text.split('\n')[0]).toBe(`smoke test (the binaries under ${handler.name} (${handler.interpreter})): ${report.ok ? 'INCOMPLETE: 7 checks could not run here' : 'FAILED'}`);
    expect(text).toContain(`  - not run: containerd start, socket, cri version, cri status, container run, nerdctl ps, ctr images: not run under user-mode emulation (binfmt handler ${handler.name})`);
  });
});
