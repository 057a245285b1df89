/**
 * A real install into --root killed with SIGKILL at many points (the test server is throttled so that
 * the kills land while resolving, downloading, staging and committing; a watch on the state folder
 * kills right as the journal appears, inside the commit), then: the next run repairs what it finds,
 * the root holds exactly the set its record says, and nothing of the dead run is left. The same for
 * SIGINT and SIGTERM, which the run handles itself: rolled back, its exit code, its report.
 */
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliSpawn, runCli, testEnv } from '../support/cli.ts';
import { snapshot } from '../support/layout.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';

let mirror: SyntheticMirror;
const OLD = ['--containerd', '2.2.7', '--runc', '1.3.6', '--nerdctl', '2.2.0', '--cni', '1.8.0', '--crictl', '1.35.0'];

beforeAll(async () => {
  // About a second of downloads for the whole set: time for kills to land in every phase.
  mirror = await startSyntheticMirror('np-crash-', { signer: null, bytesPerSecond: 40_000 });
});
afterAll(() => mirror.close());

const args = (root: string, cache: string, extra: string[]) => [
  'install', '--root', root, '--no-start', '--skip-smoke', '--mirror', mirror.gh.url, '--github-api', mirror.gh.apiUrl,
  '--checksums', mirror.sums, '--arch', 'amd64', '--cache-dir', cache, ...extra,
];

/** Start an install and stop it with `signal`: after `afterMs`, or right as its journal appears. */
function killed(root: string, cache: string, extra: string[], how: { signal: NodeJS.Signals; afterMs?: number; onJournal?: boolean; onWrite?: { dir: string; nth: number } }) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) => {
    const child = spawn(...cliSpawn(args(root, cache, extra)), { env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.resume();
    const watchers: Array<ReturnType<typeof watch>> = [];
    let fired = false;
    // Once: a second SIGINT or SIGTERM is the user's "stop now", as good as SIGKILL.
    const fire = () => {
      if (!fired) child.kill(how.signal);
      fired = true;
    };
    if (how.onJournal) {
      const state = path.join(root, 'var/lib/node-prep');
      watchers.push(watch(state, (_e, name) => {
        if (name === 'journal.json') fire();
      }));
    }
    if (how.onWrite) {
      // The n-th change the commit makes in that folder (each file is a temp file, then a rename).
      let n = 0;
      watchers.push(watch(path.join(root, how.onWrite.dir), () => {
        if (++n === how.onWrite!.nth) fire();
      }));
    }
    const timer = how.afterMs !== undefined ? setTimeout(fire, how.afterMs) : undefined;
    const safety = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code, signal) => {
      for (const w of watchers) w.close();
      clearTimeout(timer);
      clearTimeout(safety);
      resolve({ code, signal, stdout });
    });
  });
}

/** Everything a dead or stopped run may leave: temp files, transaction, staging, journal, partial downloads. */
async function leftovers(root: string, cache: string): Promise<string[]> {
  const inRoot = Object.keys(await snapshot(root)).filter((p) =>
    /\.node-prep-[0-9a-f]{12}$/.test(p) || p.startsWith('var/lib/node-prep/tx') || p.includes('/staging-') || p.endsWith('journal.json') || p.endsWith('/lock'));
  const partials = (await readdir(path.join(cache, 'tmp')).catch(() => [] as string[])).map((n) => `cache/tmp/${n}`);
  return [...inRoot, ...partials];
}

/** Some file of the old set already differs while the record still names the old set. */
async function isMixed(root: string, before: Awaited<ReturnType<typeof snapshot>>): Promise<boolean> {
  const now = await snapshot(root);
  const record = JSON.parse(await readFile(path.join(root, 'var/lib/node-prep/manifest.json'), 'utf8')) as { components: { containerd: { version: string } } };
  if (record.components.containerd.version !== '2.2.7') return false;
  return Object.entries(before).some(([p, e]) => e.type === 'file' && !p.startsWith('var/lib/node-prep') && now[p]?.sha256 !== e.sha256);
}

interface Status {
  installed: boolean;
  components: Array<{ name: string; version: string }>;
  drift: unknown[];
  interrupted?: string;
}
const status = async (root: string) => {
  const r = await runCli(['status', '--root', root, '--json']);
  expect(r.code, r.stdout).toBe(0);
  return JSON.parse(r.stdout) as Status;
};

describe.skipIf(process.getuid?.() !== 0)('an install killed at many points', () => {
  it('is repaired by the next run: the root holds the set its record says, and nothing of the dead run is left', async () => {
    const work = await mkdtemp(path.join(mirror.work, 'crash-'));
    const seen = new Set<string>();
    let rolledBackMidway = 0;
    // Evenly spread kills over the run, and a few right as the commit starts.
    const kills: Array<{ afterMs?: number; onJournal?: boolean; onWrite?: { dir: string; nth: number } }> = [
      ...[150, 700, 1300, 2000].map((afterMs) => ({ afterMs })),
      { onJournal: true },
      // Inside the commit: after the first, third, ... change in the binaries' folder, and in /etc.
      ...[1, 3, 6, 10].map((nth) => ({ onWrite: { dir: 'usr/local/bin', nth } })),
      { onWrite: { dir: 'etc/containerd', nth: 1 } },
    ];
    for (const [i, kill] of kills.entries()) {
      const root = path.join(work, `root-${i}`);
      const cache = path.join(work, `cache-${i}`);
      // The old set, installed and recorded.
      const first = await runCli(args(root, cache, OLD), { timeoutMs: 120_000 });
      expect(first.code, first.stdout).toBe(0);
      const before = await snapshot(root);

      const r = await killed(root, cache, [], { signal: 'SIGKILL', ...kill });
      // Before the repair: a node that is neither set (some binaries new, the record old) is what a
      // kill inside the commit leaves, and what the journal is for.
      const mixed = await isMixed(root, before);
      // status repairs first (under the lock), then reads the record: no drift either way.
      const s = await status(root);
      expect(s.drift, JSON.stringify(s)).toEqual([]);
      const versions = Object.fromEntries(s.components.map((c) => [c.name, c.version]));
      const set = versions.containerd === '2.2.7' ? 'old' : 'new';
      if (r.signal !== 'SIGKILL') expect(r.code).toBe(0); // it finished before the kill
      seen.add(s.interrupted ? `${set}, repaired` : set);
      if (mixed && set === 'old') rolledBackMidway++;
      if (set === 'old') {
        // Rolled back (or never started changing): byte for byte the old tree, apart from the record's own metadata.
        const now = await snapshot(root);
        for (const [p, e] of Object.entries(before)) if (e.type === 'file' && !p.endsWith('manifest.json')) expect(now[p]?.sha256, p).toBe(e.sha256);
        expect(Object.keys(now).filter((p) => now[p]!.type === 'file').sort()).toEqual(Object.keys(before).filter((p) => before[p]!.type === 'file').sort());
      } else {
        expect(versions).toMatchObject({ containerd: '2.3.4', runc: '1.4.3', nerdctl: '2.3.0', cni: '1.9.1', crictl: '1.36.0' });
      }
      // The dead run's partial downloads go with the next run that uses the cache.
      expect((await leftovers(root, cache)).filter((p) => !p.startsWith('cache/')), `kill ${JSON.stringify(kill)}`).toEqual([]);

      // And the next install finishes the job.
      const again = await runCli(args(root, cache, []), { timeoutMs: 120_000 });
      expect(again.code, again.stdout).toBe(0);
      expect((await status(root)).components.find((c) => c.name === 'containerd')?.version).toBe('2.3.4');
      expect(await leftovers(root, cache)).toEqual([]);
    }
    // The kills landed before the commit, inside it and after it: both outcomes were seen.
    expect([...seen].some((x) => x.startsWith('old'))).toBe(true);
    expect([...seen].some((x) => x.includes('repaired'))).toBe(true);
    // Some kill landed with files changed and the record not yet: the repair rolled them back.
    expect(rolledBackMidway).toBeGreaterThan(0);
  }, 600_000);
});

describe.skipIf(process.getuid?.() !== 0)('a repair never loses an edit made after the run died', () => {
  it('leaves a file changed since the kill as it is, and keeps its previous version', async () => {
    const work = await mkdtemp(path.join(mirror.work, 'crash-edit-'));
    const root = path.join(work, 'root');
    const cache = path.join(work, 'cache');
    expect((await runCli(args(root, cache, OLD), { timeoutMs: 120_000 })).code).toBe(0);
    // Killed once the commit reached the configs: every binary of the new set is in place.
    const r = await killed(root, cache, [], { signal: 'SIGKILL', onWrite: { dir: 'etc/containerd', nth: 1 } });
    expect(r.signal).toBe('SIGKILL');
    const edited = path.join(root, 'usr/local/bin/ctr');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(edited, '#!/bin/sh\n# the operator fixed something by hand\n');
    const s = await status(root);
    expect(s.interrupted).toMatch(/left \/usr\/local\/bin\/ctr as changed since, with the previous versions in \/var\/lib\/node-prep\/tx\/tx-/);
    expect(await readFile(edited, 'utf8')).toContain('fixed something by hand');
    const tx = await readdir(path.join(root, 'var/lib/node-prep/tx'));
    expect(tx).toHaveLength(1);
    expect((await readdir(path.join(root, 'var/lib/node-prep/tx', tx[0]!))).some((n) => /^\d+-ctr$/.test(n))).toBe(true);
  }, 120_000);
});

describe.skipIf(process.getuid?.() !== 0)('an uninstall cut off after it restored a backup', () => {
  it('is finished by the next uninstall: the original stays, nothing is kept as "changed"', async () => {
    const work = await mkdtemp(path.join(mirror.work, 'cut-uninstall-'));
    const root = path.join(work, 'root');
    const cache = path.join(work, 'cache');
    const { mkdir, writeFile } = await import('node:fs/promises');
    const config = path.join(root, 'etc/containerd/config.toml');
    await mkdir(path.dirname(config), { recursive: true });
    await writeFile(config, 'version = 2\n# the image’s own\n');
    expect((await runCli(args(root, cache, []), { timeoutMs: 120_000 })).code).toBe(0);
    // What a kill right after restoring the original leaves: the original in place, the record as before.
    await writeFile(config, 'version = 2\n# the image’s own\n');
    const r = await runCli(['uninstall', '--root', root, '--json']);
    expect(r.code, r.stdout).toBe(0);
    const report = JSON.parse(r.stdout) as { kept: unknown[]; restored: string[]; record?: string };
    expect(report.kept).toEqual([]);
    expect(report.restored).toContain('/etc/containerd/config.toml');
    expect(report.record).toBeUndefined();
    expect(await readFile(config, 'utf8')).toBe('version = 2\n# the image’s own\n');
    expect(await readdir(path.join(root, 'var/lib/node-prep')).catch(() => [])).toEqual([]);
  }, 120_000);
});

describe.skipIf(process.getuid?.() !== 0)('SIGINT and SIGTERM', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s while downloading: rolled back, lock released, exit %d with an INTERRUPTED report', async (signal, code) => {
    const work = await mkdtemp(path.join(mirror.work, `sig-${signal}-`));
    const root = path.join(work, 'root');
    const cache = path.join(work, 'cache');
    expect((await runCli(args(root, cache, OLD), { timeoutMs: 120_000 })).code).toBe(0);
    const before = await snapshot(root);
    const r = await killed(root, cache, ['--json'], { signal, afterMs: 400 });
    expect(r.code).toBe(code);
    const doc = JSON.parse(r.stdout) as { kind: string; exitCode: number; error: { code: string; message: string } };
    expect(doc).toMatchObject({ kind: 'error', exitCode: code, error: { code: 'INTERRUPTED', message: `Stopped by ${signal}.` } });
    const now = await snapshot(root);
    for (const [p, e] of Object.entries(before)) if (e.type === 'file') expect(now[p]?.sha256, p).toBe(e.sha256);
    expect(await leftovers(root, cache)).toEqual([]);
    expect((await status(root)).interrupted).toBeUndefined();
    expect(JSON.parse(await readFile(path.join(root, 'var/lib/node-prep/manifest.json'), 'utf8')).components.containerd.version).toBe('2.2.7');
  }, 120_000);

  it('SIGTERM as the commit starts: whatever was swapped in is put back', async () => {
    const work = await mkdtemp(path.join(mirror.work, 'sig-commit-'));
    const root = path.join(work, 'root');
    const cache = path.join(work, 'cache');
    expect((await runCli(args(root, cache, OLD), { timeoutMs: 120_000 })).code).toBe(0);
    const before = await snapshot(root);
    const r = await killed(root, cache, ['--json'], { signal: 'SIGTERM', onJournal: true });
    // The signal may land after the last change, when the run is as good as done: then it finishes.
    const finished = r.code === 0;
    if (!finished) {
      expect(r.code).toBe(143);
      const now = await snapshot(root);
      for (const [p, e] of Object.entries(before)) if (e.type === 'file' && !p.endsWith('manifest.json')) expect(now[p]?.sha256, p).toBe(e.sha256);
    }
    expect((await status(root)).drift).toEqual([]);
    expect(await leftovers(root, cache)).toEqual([]);
  }, 120_000);
});
