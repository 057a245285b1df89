// Helpers for the real end-to-end smoke tests (root, Debian-built binaries): running the smoke test
// against an image root, starting a containerd of our own, and asserting nothing is left behind.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'smol-toml';
import { expect } from 'vitest';
import { systemExec } from '../../src/exec/exec.ts';
import { installedBinaries } from '../../src/smoke/binaries.ts';
import { runSmoke } from '../../src/smoke/checks.ts';
import { cleanupHost } from '../../src/smoke/cleanup.ts';
import { dumpInstalledConfig } from '../../src/smoke/config.ts';
import { startTemporary, stopTemporary, type TemporaryDaemon } from '../../src/smoke/daemon.ts';
import { cgroupMounts, findProcesses, mountsUnder } from '../../src/smoke/host.ts';
import { temporaryConfig, tempPaths, type TempPaths } from '../../src/smoke/temp-config.ts';
import type { SmokeInput, SmokeReport } from '../../src/smoke/types.ts';
import { ASSETS, expectFor, fixturesPresent, HOW, isRoot, type ImageRoot } from './image-root.ts';

export const VERSIONS = ['1.6.20', '2.1.9'];
const haveFixtures = await fixturesPresent(VERSIONS);
export const runnable = isRoot && haveFixtures;

export function requirePrerequisites(): void {
  if (!isRoot) throw new Error('NODE_PREP_E2E=1 but these tests need root (they start containerd and run a container)');
  if (!haveFixtures) throw new Error(`NODE_PREP_E2E=1 but the Debian-built release assets are missing in .cache/debian-release: ${HOW}`);
}

export const ALL_CHECKS = [
  'containerd version', 'ctr version', 'shim version', 'runc version', 'nerdctl version', 'crictl version',
  'config', 'containerd start', 'socket', 'cri version', 'cri status', 'container run', 'nerdctl ps', 'ctr images', 'cleanup',
];

export interface Run {
  report: SmokeReport;
  image: ImageRoot;
  tmp: string;
  ms: number;
}

/** runSmoke in temporary mode against a fresh image root, with its temp dirs in a dir of our own. */
export async function smoke(base: string, version: string, image: ImageRoot, change: Partial<SmokeInput> = {}): Promise<Run> {
  requirePrerequisites();
  const tmp = await mkdtemp(path.join(base, 't-'));
  const started = performance.now();
  const report = await runSmoke(
    { root: image.root, prefix: '/usr/local', expect: expectFor(version), mode: 'temporary', busybox: ASSETS.busybox, ...change },
    { exec: systemExec, tmpDir: tmp },
  );
  return { report, image, tmp, ms: performance.now() - started };
}

export const check = (report: SmokeReport, name: string) => {
  const found = report.checks.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no check named ${name} in ${report.checks.map((c) => c.name).join(', ')}`);
  return found;
};
export const failures = (report: SmokeReport) => report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);

/** Nothing of the run is left on the host. */
export async function expectNothingLeft(run: Run): Promise<void> {
  const ours = await findProcesses((argv) => argv.some((a) => a.includes(run.tmp) || a.includes(run.image.root)));
  expect(ours.map((p) => `${p.pid} ${p.argv.join(' ')}`)).toEqual([]);
  expect(await mountsUnder(run.tmp)).toEqual([]);
  expect(await mountsUnder(run.image.root)).toEqual([]);
  expect(await readdir(run.tmp)).toEqual([]);
  const id = /container (smoke-\S+) in namespace/.exec(run.report.checks.find((c) => c.name === 'container run')?.detail ?? '')?.[1];
  if (id !== undefined) {
    for (const mount of await cgroupMounts()) expect(existsSync(path.join(mount, 'node-prep-smoke', id)), `${mount}/node-prep-smoke/${id}`).toBe(false);
  }
}

/** The temporary config of the image root's installed config, written to a scratch dir of its own. */
export async function writeTemporaryConfig(base: string, img: Pick<ImageRoot, 'root'>, prefix: string) {
  const scratch = await mkdtemp(path.join(base, prefix));
  const paths = tempPaths(scratch);
  const bins = installedBinaries(img.root, '/usr/local');
  const dump = await dumpInstalledConfig(systemExec, { containerd: bins.containerd, root: img.root, configFile: '/etc/containerd/config.toml', scratchDir: scratch, timeoutMs: 10_000 });
  if (dump.kind !== 'ok') throw new Error(dump.why);
  const tc = temporaryConfig({ effective: dump.config, paths, root: img.root, systemdRunning: false });
  const file = path.join(scratch, 'config.toml');
  await writeFile(file, stringify(tc.config));
  return { scratch, paths, bins, tc, file };
}

/** A containerd of our own from the image root, as a service would run it (cgroupfs: no systemd here). */
export async function startDaemon(base: string, img: Pick<ImageRoot, 'root'>, env: Record<string, string> = {}): Promise<{ paths: TempPaths; daemon: TemporaryDaemon; runDirExisted: boolean; shimSocketDir: string; stop: () => Promise<void> }> {
  const { scratch, paths, bins, tc } = await writeTemporaryConfig(base, img, 'd-');
  await mkdir(paths.cniConfDir, { recursive: true });
  const runDirExisted = existsSync('/run/containerd');
  const started = await startTemporary(systemExec, {
    containerd: bins.containerd, configFile: path.join(scratch, 'config.toml'), paths, logFile: path.join(scratch, 'log'),
    env: { PATH: `${bins.binDir}:${bins.sbinDir}:${process.env.PATH}`, ...env }, timeoutMs: 20_000,
  });
  if (started.kind !== 'started') throw new Error(started.why);
  const stop = async () => {
    await stopTemporary(started.daemon, 10_000);
    await cleanupHost(systemExec, { scratchDir: scratch, containerIds: [], temporary: { socket: paths.socket, runDirExisted, shimSocketDir: tc.shimSocketDir } });
  };
  return { paths, daemon: started.daemon, runDirExisted, shimSocketDir: tc.shimSocketDir, stop };
}
