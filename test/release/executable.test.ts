/**
 * The single executables (npm run build:sea) on their own: no Node.js on PATH, no file beside them,
 * the same answers as the npm package. The CLI, command and end-to-end suites run against the amd64
 * one as well (NODE_PREP_TEST_BIN, see .ci/run); the arm64 one runs here under qemu-user.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, testEnv } from '../support/cli.ts';
import { ARM64_LIBS, QEMU, qemuMissing, SEA_DIR, seaExecutable } from '../support/sea.ts';
import { violations } from '../schemas/validate.ts';

const { version } = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
const amd64 = seaExecutable('amd64');
const arm64 = seaExecutable('arm64');
const noQemu = arm64 ? qemuMissing() : 'not built';

let tmp: string;
let emptyPath: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'np-sea-'));
  emptyPath = path.join(tmp, 'empty-path');
  await mkdir(emptyPath);
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** Runs with a PATH that holds nothing (no node, no npm) and the cwd in a folder of its own. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const cwd = await mkdtemp(path.join(tmp, 'cwd-'));
  const r = await execa(cmd, args, { cwd, env: testEnv({ PATH: emptyPath, ...env }), extendEnv: false, reject: false, timeout: 120_000 });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** What the npm package (bin/node-prep.js under this Node.js) says, for comparison. */
async function npmPackage(args: string[]) {
  const r = await execa(process.execPath, [path.join(REPO, 'bin/node-prep.js'), ...args], { env: testEnv(), extendEnv: false, reject: false });
  return JSON.parse(String(r.stdout)) as Record<string, unknown>;
}

describe.skipIf(!amd64)('the amd64 executable', () => {
  it('runs copied alone into an empty folder with no Node.js on PATH: --version, --help', async () => {
    const alone = path.join(tmp, 'alone');
    await mkdir(alone);
    const copy = path.join(alone, 'node-prep');
    await copyFile(amd64!, copy);
    await execa('chmod', ['755', copy]);
    const v = await run(copy, ['--version']);
    expect(v).toMatchObject({ code: 0, stdout: version, stderr: '' });
    const help = await run(copy, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('node-prep install');
  });

  it('plans exactly what the npm package plans, every template rendered from inside the executable', async () => {
    const r = await run(amd64!, ['plan', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(violations('plan', plan)).toEqual([]);
    expect(plan).toEqual(await npmPackage(['plan', '--json']));
    expect(r.stdout).toContain('SystemdCgroup'); // from templates/containerd/config-v3.toml
  });

});

describe.skipIf(!amd64 && !arm64)('dist/sea/SHA256SUMS', () => {
  it('lists the sha256 of each executable, as sha256sum -c reads it', async () => {
    const lines = (await readFile(path.join(SEA_DIR, 'SHA256SUMS'), 'utf8')).trimEnd().split('\n');
    const built = [amd64, arm64].filter((f): f is string => f !== undefined);
    for (const file of built) {
      const digest = createHash('sha256').update(await readFile(file)).digest('hex');
      expect(lines).toContain(`${digest}  ${path.basename(file)}`);
    }
    const check = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: SEA_DIR, reject: false });
    expect(check.exitCode, String(check.stdout)).toBe(0);
  });
});

describe.skipIf(noQemu !== undefined)('the arm64 executable under qemu-user', () => {
  let sysroot: string;
  beforeAll(async () => {
    sysroot = path.join(tmp, 'arm64-sysroot');
    await mkdir(sysroot);
    await symlink(ARM64_LIBS, path.join(sysroot, 'lib'));
  });
  const qemu = (args: string[]) => run(QEMU, [arm64!, ...args], { QEMU_LD_PREFIX: sysroot });

  it('prints its version', async () => {
    expect(await qemu(['--version'])).toMatchObject({ code: 0, stdout: version });
  }, 60_000);

  it('plan --arch arm64 --json: a valid plan for arm64 on what it takes for an arm64 machine', async () => {
    const r = await qemu(['plan', '--arch', 'arm64', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { arch: string; archReason?: string; artifacts: Array<{ name: string; arch: string }>; smoke: { mode: string } };
    expect(violations('plan', plan)).toEqual([]);
    expect(plan.arch).toBe('arm64');
    // Under qemu-user the executable is on "arm64": --arch arm64 is this machine's, and the smoke
    // test would run against a temporary containerd. The npm package here (amd64) refuses --arch
    // arm64 without --root, so the two are not compared.
    expect(plan.archReason).toMatch(/this machine/);
    expect(plan.artifacts.length).toBeGreaterThan(0);
    for (const a of plan.artifacts) expect([a.arch, a.name]).toEqual(['arm64', expect.stringMatching(/arm64/)]);
    expect(plan.smoke.mode).toBe('temporary');
  }, 60_000);

  it('doctor --json: a valid doctor document that finds itself on linux/arm64', async () => {
    const r = await qemu(['doctor', '--json']);
    const doc = JSON.parse(r.stdout) as { kind: string; findings: Array<{ id: string; title: string }> };
    expect(violations('doctor', doc)).toEqual([]);
    expect(doc.findings.find((f) => f.id === 'arch')?.title).toBe('linux/arm64');
    expect([0, 1]).toContain(r.code); // 1: a blocker on this machine, which doctor reports, not the executable
  }, 60_000);
});
