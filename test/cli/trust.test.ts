/**
 * Trust that is said: a `--checksums` file is read whole or refused, and a digest that only the
 * download's own host vouches for is a warning (and, under --verify strict, a refusal).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { checksumsFor } from '../support/layout.ts';
import { useUnpinnedMirror } from '../support/synthetic-mirror.ts';
import { violations } from '../schemas/validate.ts';

const m = useUnpinnedMirror('np-trust-');
const mirror = () => ['--mirror', m.gh.url, '--github-api', m.gh.apiUrl];

describe('--checksums is read strictly', () => {
  it('a short digest is refused with its line number (exit 2), not skipped in favour of the mirror\'s digest', async () => {
    const good = checksumsFor(m.gh.repos).split('\n').filter(Boolean);
    const i = good.findIndex((l) => l.includes('containerd-2.2.5-linux-amd64.tar.gz'));
    // One hex digit lost, as a bad copy and paste would.
    const lines = [...good];
    lines[i] = lines[i]!.slice(1);
    const file = path.join(m.work, 'pins-short.txt');
    await writeFile(file, `${lines.join('\n')}\n`);
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', '--checksums', file, '--json', ...mirror()]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`node-prep: --checksums ${file} line ${i + 1}: the digest has 63 hex digits, not 64: "${lines[i]}".`);
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'error', exitCode: 2, error: { code: 'USAGE' } });
    expect(m.gh.requests).toEqual([]);
  });

  it('a control character on a refused line is shown escaped, not sent to the terminal', async () => {
    const file = path.join(m.work, 'pins-escape.txt');
    await writeFile(file, `${'a'.repeat(64)}  x.tgz\n\u001b[2Jnot a line\n`);
    const r = await runCli(['plan', '--arch', 'amd64', '--checksums', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('line 2: not `<sha256>  <file name>`: "\\\\x1b[2Jnot a line".');
    expect(r.stderr).not.toContain('\u001b');
  });
});

describe('a digest only the mirror vouches for', () => {
  it('download warns, and the lock records the host', async () => {
    const sums = path.join(m.work, 'SHA256SUMS');
    // Pins for everything but containerd 2.2.5.
    await writeFile(sums, checksumsFor(m.gh.repos).split('\n').filter((l) => !l.includes('v2.2.5/')).join('\n'));
    const bundle = path.join(m.work, 'bundle');
    const r = await runCli(['download', '--bundle', bundle, '--cache-dir', path.join(m.work, 'cache'), '--arch', 'amd64', '--containerd', '2.2.5', '--checksums', sums, '--json', ...mirror()]);
    expect(r.code, r.stderr).toBe(0);
    const host = new URL(m.gh.url).host;
    expect(r.stderr).toContain(`warning: containerd-2.2.5-linux-amd64.tar.gz: its sha256 and its bytes both come from ${host}, and nothing independent vouches for the digest`);
    const lock = JSON.parse(r.stdout);
    const entry = lock.artifacts.find((a: { name: string }) => a.name === 'containerd-2.2.5-linux-amd64.tar.gz');
    expect(entry.digestSource).toMatchObject({ kind: 'published', sameHost: host });
    expect(lock.artifacts.filter((a: { digestSource: { sameHost?: string } }) => a.digestSource.sameHost)).toHaveLength(1);
  });

  it('install says so in its report, text and JSON: a warning and the host on the component', async () => {
    const sums = path.join(m.work, 'SHA256SUMS-install');
    await writeFile(sums, checksumsFor(m.gh.repos).split('\n').filter((l) => !l.includes('v2.2.5/')).join('\n'));
    const root = await mkdtemp(path.join(m.work, 'root-'));
    const args = ['install', '--root', root, '--no-start', '--skip-smoke', '--cache-dir', path.join(m.work, 'cache'), '--arch', 'amd64', '--containerd', '2.2.5', '--checksums', sums, ...mirror()];
    const host = new URL(m.gh.url).host;
    const r = await runCli([...args, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(violations('install', report)).toEqual([]);
    const containerd = report.components.find((c: { name: string }) => c.name === 'containerd');
    expect(containerd).toMatchObject({ sameHost: host, verifiedBy: expect.stringContaining('by the same host that serves the download') });
    expect(report.components.filter((c: { sameHost?: string }) => c.sameHost)).toHaveLength(1);
    expect(report.warnings).toContainEqual(expect.stringContaining(`containerd-2.2.5-linux-amd64.tar.gz: its sha256 and its bytes both come from ${host}`));
    const text = await runCli(['install', ...args.slice(1), '--quiet']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`warning: containerd-2.2.5-linux-amd64.tar.gz: its sha256 and its bytes both come from ${host}`);
  });

  it('download --verify strict refuses it before downloading anything', async () => {
    const r = await runCli(['download', '--bundle', path.join(m.work, 'bundle-strict'), '--cache-dir', path.join(m.work, 'cache-strict'), '--arch', 'amd64', '--containerd', '2.2.5', '--verify', 'strict', ...mirror()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--verify strict: the sha256 of containerd-2.2.5-linux-amd64.tar.gz (containerd 2.2.5)');
    expect(m.gh.requests.filter((q) => /\.(tar\.gz|tgz|amd64)$/.test(q.path))).toEqual([]);
  });
});
