/**
 * node-prep on a real systemd host: a booted Debian 12 guest (see harness.ts), default paths, no
 * --root. The guest half is guest/checks.mjs; each of its checks becomes one test here.
 *
 * The test release server serves Debian's real binaries (.cache/debian-release) plus releases that
 * break on purpose, pinned like the rest through --checksums: a runc that runs no container (the
 * smoke test fails), a containerd that exits at start and one that hangs at start.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODULES, SYSCTLS } from '../../src/node/paths.ts';
import { REPO } from '../support/cli.ts';
import { debianRelease, type DebianRelease } from '../support/debian.ts';
import { startProxy, type TestProxy } from '../support/proxy.ts';
import { busyboxImage, pushImage, startRegistry, type TestRegistry } from '../support/registry.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';
import { bootGuest, consoleTail, ensureImage, GUEST_NODE_PREP, nodePayload, printRun, printStages, readChecks, stage, VM_CACHE, type BootResult, type GuestCheck } from './harness.ts';

const fx = debianRelease() as DebianRelease;
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const BROKEN = { runc: '1.1.99', exits: '2.1.90', hangs: '2.1.91' };

let gh: ReleaseServer;
let registry: TestRegistry;
let proxy: TestProxy;
let work: string;
/** The guest reaches the registry by a name only the proxy on the host resolves (to loopback). */
let pullRef = '';
let result: BootResult;
let checks: GuestCheck[] = [];

/** A release of the same layout as the real one, with one binary swapped for a script. */
async function brokenContainerd(version: string, script: string): Promise<{ files: Record<string, string>; lines: string[] }> {
  const dir = await mkdtemp(path.join(work, `containerd-${version}-`));
  const base = `containerd-${fx.versions.containerd.at(-1)}-linux-amd64.tar.gz`;
  const real = path.join(fx.dir, 'containerd/containerd/releases/download', `v${fx.versions.containerd.at(-1)}`, base);
  await tar.x({ file: real, cwd: dir });
  await writeFile(path.join(dir, 'bin/containerd'), script);
  await chmod(path.join(dir, 'bin/containerd'), 0o755);
  const name = `containerd-${version}-linux-amd64.tar.gz`;
  const file = path.join(work, name);
  await tar.c({ gzip: true, file, cwd: dir, portable: true }, await readdir(dir));
  const digest = sha256(await readFile(file));
  await writeFile(`${file}.sha256sum`, `${digest}  ${name}\n`);
  gh.addRelease('containerd/containerd', { tag: `v${version}`, assets: { [name]: { path: file }, [`${name}.sha256sum`]: { path: `${file}.sha256sum` } } });
  return { files: { [name]: file }, lines: [`${digest}  ${name}`] };
}

async function payload(dir: string): Promise<void> {
  // node-prep as users get it: the packed tarball, run by Node 24's own binary.
  await nodePayload(dir, { node: process.execPath, checks: path.join(REPO, 'test/vm/guest/checks.mjs') });
  await mkdir(path.join(dir, 'debs'), { recursive: true });
  // Debian's own containerd and runc packages, for the takeover.
  const debs = path.join(REPO, '.cache/debian/bookworm/debs');
  for (const f of await readdir(debs)) if (/^(containerd|runc)_/.test(f)) await copyFile(path.join(debs, f), path.join(dir, 'debs', f));

  // The broken releases.
  const lines = [(await readFile(fx.checksums, 'utf8')).trimEnd()];
  const runcScript = `#!/bin/sh\n# A runc that answers --version and runs no container.\ncase "$1" in --version|-v) printf 'runc version ${BROKEN.runc}\\ncommit: broken-on-purpose\\nspec: 1.0.2-dev\\n'; exit 0 ;; esac\necho "this runc runs no container (a test release)" >&2\nexit 1\n`;
  const runcFile = path.join(work, 'runc.amd64');
  await writeFile(runcFile, runcScript);
  await writeFile(path.join(work, 'runc.sha256sum'), `${sha256(runcScript)}  runc.amd64\n`);
  gh.addRelease('opencontainers/runc', { tag: `v${BROKEN.runc}`, assets: { 'runc.amd64': { path: runcFile }, 'runc.sha256sum': { path: path.join(work, 'runc.sha256sum') } } });
  lines.push(`${sha256(runcScript)}  v${BROKEN.runc}/runc.amd64`);
  const version = (v: string) => `case "$1" in --version|-v) echo "containerd github.com/containerd/containerd/v2 v${v} broken-on-purpose"; exit 0 ;; esac\n`;
  lines.push(...(await brokenContainerd(BROKEN.exits, `#!/bin/sh\n# A containerd that exits at start.\n${version(BROKEN.exits)}echo "this containerd exits at start (a test release)" >&2\nexit 1\n`)).lines);
  lines.push(...(await brokenContainerd(BROKEN.hangs, `#!/bin/sh\n# A containerd that hangs at start: never ready, never gone.\n${version(BROKEN.hangs)}exec sleep 100000\n`)).lines);
  await writeFile(path.join(dir, 'checksums.txt'), `${lines.join('\n')}\n`);
  const host = pullRef.split('/')[0]!;
  await writeFile(path.join(dir, 'registries.yaml'), `mirrors:\n  "${host}":\n    endpoint:\n      - "http://${host}"\n`);

  await writeFile(path.join(dir, 'config.json'), JSON.stringify({
    nodePrep: GUEST_NODE_PREP,
    mirror: 'http://10.0.2.100',
    apiUrl: 'http://10.0.2.100/api',
    versions: {
      containerdOld: fx.versions.containerd[0], containerdNew: fx.versions.containerd.at(-1),
      runc: fx.versions.runc, cni: fx.versions.cni, nerdctl: fx.versions.nerdctl, crictl: fx.versions.crictl,
    },
    broken: BROKEN,
    proxy: { url: 'http://10.0.2.103:3128', image: pullRef },
    sysctls: SYSCTLS,
    modules: MODULES,
  }, null, 2));
}

beforeAll(async () => {
  if (!fx) throw new Error('no Debian fixtures: run node scripts/fixtures/debian-release.mjs');
  if (process.getuid?.() !== 0) throw new Error('the VM tests run as root (debootstrap, 9p shares)');
  const image = await ensureImage('amd64');
  await mkdir(VM_CACHE, { recursive: true });
  work = await mkdtemp(path.join(VM_CACHE, 'systemd-host-'));
  gh = await startReleaseServer({ repos: structuredClone(fx.repos), advertise: { url: 'http://10.0.2.100', cdnUrl: 'http://10.0.2.101' } });
  registry = await startRegistry(path.join(work, 'registry'));
  await pushImage(registry.url, 'test/busybox', '1', await busyboxImage(fx.busybox));
  pullRef = `registry.proxied.test:${new URL(registry.url).port}/test/busybox:1`;
  proxy = await startProxy({ names: { 'registry.proxied.test': '127.0.0.1' } });
  const payloadDir = path.join(work, 'payload');
  const resultsDir = path.join(work, 'results');
  await mkdir(resultsDir, { recursive: true });
  await stage('payload (npm pack, Node 24, broken releases)', () => payload(payloadDir));
  const ghPort = Number(new URL(gh.url).port);
  const cdnPort = Number(new URL(gh.cdnUrl).port);
  result = await stage('boot, checks, reboot, checks', () =>
    bootGuest({
      image, payloadDir, resultsDir, timeoutMs: 25 * 60_000,
      guestForwards: [
        { guest: '10.0.2.100:80', hostPort: ghPort },
        { guest: '10.0.2.101:80', hostPort: cdnPort },
        { guest: '10.0.2.103:3128', hostPort: Number(new URL(proxy.url).port) },
      ],
    }));
  checks = await readChecks(resultsDir);
  printRun(result, checks, 'amd64');
}, 40 * 60_000);

afterAll(async () => {
  await gh?.close();
  await proxy?.close();
  await registry?.close();
  printStages();
  if (work && process.env.NODE_PREP_VM_KEEP !== '1') await rm(work, { recursive: true, force: true });
});

/** The checks the guest must have run, in order; a missing one fails like a failed one. */
const EXPECTED = [
  'systemd is PID 1 and the system is up',
  /^install containerd .*: files, daemon-reload, enable, start$/,
  'the smoke test passes against the service, CRI answers, its container ran in a systemd scope',
  'a re-run changes nothing and restarts nothing',
  /^upgrade .* one restart, a running container survives$/,
  /^rollback after a failed smoke test/,
  /^rollback after a containerd that exits at start/,
  /^rollback after a containerd that hangs at start/,
  'after systemctl reboot: containerd up, sysctls and modules applied',
  'after the reboot: status is clean and the smoke test passes',
  'containerd.service pulls through the proxy drop-in (a CRI pull, as the kubelet asks)',
  'uninstall refuses while a container runs, and --stop-containers stops it',
  "uninstall leaves the guest as before (files, unit files, systemd's view)",
  "Debian's containerd package installs and runs (before the takeover)",
  "install takes over Debian's containerd",
  "uninstall gives Debian's containerd back as it was",
];

describe('a booted systemd host (Debian 12 guest)', () => {
  it('boots, reboots once and powers off within its time', async () => {
    expect(result.timedOut, await consoleTail(result.consoleLog)).toBe(false);
    expect(result.boots, await consoleTail(result.consoleLog)).toBe(2);
  });
  it('the pull went through the proxy on the host', () => {
    const manifest = `http://${pullRef.split('/')[0]}/v2/test/busybox/manifests/1`;
    expect(proxy.requests, JSON.stringify(proxy.requests)).toContain(manifest);
  });
  it.each(EXPECTED.map((e) => [String(e), e] as const))('%s', async (_, want) => {
    const c = checks.find((x) => (typeof want === 'string' ? x.name === want : want.test(x.name)));
    if (!c) throw new Error(`the guest did not run this check; console:\n${await consoleTail(result.consoleLog)}`);
    expect(c.ok, c.detail).toBe(true);
  });
});
