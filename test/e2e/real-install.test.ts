/**
 * End to end with real binaries: Debian's containerd (1.6 from Debian 12 and 2.x from sid), runc and
 * CNI plugins packed as upstream release assets, served by the test release server, installed by the
 * built CLI, and proven by the smoke test, which starts that containerd and runs a real container.
 * nerdctl and crictl are stand-ins that say so. Needs root; NODE_PREP_E2E=1 makes a skip a failure.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, testEnv } from '../support/cli.ts';
import { debianRelease, e2eSkipReason, type DebianRelease } from '../support/debian.ts';
import { withHostLock } from '../support/host-lock.ts';
import { contentOf, snapshot } from '../support/layout.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';

const skip = e2eSkipReason();
const fx = debianRelease() as DebianRelease;
let gh: ReleaseServer;
let work: string;

beforeAll(async () => {
  if (skip) return;
  gh = await startReleaseServer({ repos: fx.repos });
  work = await mkdtemp(path.join(os.tmpdir(), 'np-e2e-'));
});
afterAll(async () => {
  await gh?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const versions = (containerd: string) => [
  '--containerd', containerd, '--runc', fx.versions.runc, '--cni', fx.versions.cni, '--nerdctl', fx.versions.nerdctl, '--crictl', fx.versions.crictl,
];
const source = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', fx.checksums, '--cache-dir', path.join(work, 'cache'), '--busybox', fx.busybox];

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** A port nothing listens on now (the site drop-in's metrics address). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

// Inside the namespace: a tmpfs on /run, the host's containerd on the default paths, the smoke test,
// then what became of the host's sockets, as key=value lines.
const SCENARIO = String.raw`
set -eu
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/containerd
PATH="$ROOT/usr/local/bin:$ROOT/usr/local/sbin:$PATH"
"$ROOT/usr/local/bin/containerd" --config "$WORK/host.toml" >"$WORK/host.log" 2>&1 &
host=$!
for i in $(seq 1 100); do [ -S /run/containerd/containerd.sock.ttrpc ] && break; sleep 0.1; done
inode() { awk -v p="$1" '$8 == p && $4 == "00010000" { print $7 }' /proc/$host/net/unix; }
owned() { ls -l /proc/$host/fd 2>/dev/null | grep -c "socket:\[$1\]" || true; }
before=$(inode /run/containerd/containerd.sock.ttrpc)
echo "ttrpc_owned_before=$(owned "$before")"
set +e
set -- "$CLI0"; [ -z "$CLI1" ] || set -- "$CLI0" "$CLI1" # node and bin/node-prep.js, or the executable
"$@" smoke --root "$ROOT" --busybox "$BUSYBOX" --json >"$WORK/smoke.json" 2>"$WORK/smoke.err"
echo "smoke_exit=$?"
set -e
for s in containerd.sock containerd.sock.ttrpc; do
  if [ -S /run/containerd/$s ]; then echo "$s=socket"; else echo "$s=missing"; fi
  if "$NODE" -e 'require("net").connect(process.argv[1]).on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))' /run/containerd/$s; then echo "$s.answers=yes"; else echo "$s.answers=no"; fi
done
after=$(inode /run/containerd/containerd.sock.ttrpc)
echo "ttrpc_same_socket=$([ -n "$after" ] && [ "$after" = "$before" ] && echo yes || echo no)"
echo "ttrpc_owned_after=$(owned "$after")"
if ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then echo "ctr_version=ok"; else echo "ctr_version=failed"; fi
echo "run_entries=$(ls /run/containerd | tr '\n' ' ')"
kill $host; wait $host || true
`;

describe.skipIf(skip !== undefined)('real binaries, real containers', () => {
  it.each(fx?.versions.containerd ?? [])('install --root with containerd %s: the smoke test runs a container', async (containerd) => {
    const root = await mkdtemp(path.join(work, 'root-'));
    const r = await runCli(['install', '--root', root, ...versions(containerd), ...source(), '--json'], { timeoutMs: 180_000 });
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.smoke.ok).toBe(true);
    const checks = report.smoke.checks as Check[];
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    for (const name of ['containerd version', 'runc version', 'config', 'socket', 'cri version', 'cri status', 'container run', 'nerdctl ps', 'ctr images']) {
      expect(checks.find((c) => c.name === name), name).toMatchObject({ ok: true });
    }
    expect(checks.find((c) => c.name === 'cri version')!.detail).toContain('containerd');
    expect(report.smoke.mode).toBe('temporary');
  }, 240_000);

  it('the systemd cgroup driver, which this host cannot run, is adapted in the temporary run and said so', async () => {
    const root = await mkdtemp(path.join(work, 'root-'));
    const containerd = fx.versions.containerd.at(-1)!;
    const r = await runCli(['install', '--root', root, '--cgroup-driver', 'systemd', ...versions(containerd), ...source(), '--json'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(await readFile(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toContain('SystemdCgroup = true');
    expect(report.smoke.ok).toBe(true);
    expect(report.smoke.adaptations.join('\n')).toMatch(/SystemdCgroup/);
    expect((report.smoke.checks as Check[]).find((c) => c.name === 'config')).toMatchObject({ ok: true });
  }, 240_000);

  it('a broken setting fails the smoke test and names the check', async () => {
    const root = await mkdtemp(path.join(work, 'root-'));
    const containerd = fx.versions.containerd.at(-1)!;
    expect((await runCli(['install', '--root', root, '--skip-smoke', ...versions(containerd), ...source()], { timeoutMs: 120_000 })).code).toBe(0);

    const config = path.join(root, 'etc/containerd/config.toml');
    const good = await readFile(config, 'utf8');
    await writeFile(config, good.replace('SystemdCgroup = false', 'SystemdCgroup = true'));
    const wrongCgroup = await runCli(['smoke', '--root', root, '--busybox', fx.busybox], { timeoutMs: 120_000 });
    expect(wrongCgroup.code).toBe(1);
    expect(wrongCgroup.stdout).toMatch(/config.*SystemdCgroup/);

    await writeFile(config, good);
    await unlink(path.join(root, 'usr/local/sbin/runc'));
    const noRunc = await runCli(['smoke', '--root', root, '--busybox', fx.busybox, '--json'], { timeoutMs: 120_000 });
    expect(noRunc.code).toBe(1);
    const failed = (JSON.parse(noRunc.stdout).checks as Check[]).filter((c) => !c.ok).map((c) => c.name);
    expect(failed).toContain('runc version');
    expect(failed).toContain('container run');
  }, 240_000);

  // This machine runs no systemd: a failed smoke test on its real paths puts everything back.
  it('a smoke test that fails on the real paths of this machine leaves them as they were', async () => {
    await withHostLock(async () => {
      const watched = ['/usr/local/bin', '/usr/local/sbin', '/opt/cni', '/etc/containerd', '/etc/systemd/system', '/etc/crictl.yaml', '/etc/nerdctl', '/etc/modules-load.d', '/etc/sysctl.d', '/var/lib/node-prep'];
      const before = await Promise.all(watched.map(async (p) => contentOf(await snapshot(p))));
      const containerd = fx.versions.containerd.at(-1)!;
      // A busybox that is not static: the container check fails (Debian's runc is not static either).
      const args = source().map((a) => (a === fx.busybox ? '/bin/ls' : a));
      const r = await runCli(['install', ...versions(containerd), ...args, '--json'], { timeoutMs: 240_000 });
      try {
        expect(r.code, r.stderr).toBe(1);
        const err = JSON.parse(r.stdout).error;
        expect(err.code).toBe('SMOKE');
        expect(err.hint).toBe('Nothing had been installed before: the new files were removed.');
        expect(err.report.rolledBack).toBe(true);
        expect(await Promise.all(watched.map(async (p) => contentOf(await snapshot(p))))).toEqual(before);
      } finally {
        // Should this fail, this machine is not left with an install on it.
        if (existsSync('/var/lib/node-prep/manifest.json')) await runCli(['uninstall', '--force'], { timeoutMs: 60_000 });
      }
    });
  }, 300_000);

  it('installs into the real paths of this machine, smoke-tests, and uninstalls back to how it was', async () => {
    await withHostLock(async () => {
      const watched = ['/usr/local/bin', '/usr/local/sbin', '/opt/cni', '/etc/containerd', '/etc/systemd/system', '/etc/crictl.yaml', '/etc/nerdctl', '/etc/modules-load.d', '/etc/sysctl.d', '/var/lib/node-prep'];
      const before = await Promise.all(watched.map(async (p) => contentOf(await snapshot(p))));
      const containerd = fx.versions.containerd.at(-1)!;
      const r = await runCli(['install', ...versions(containerd), ...source(), '--json'], { timeoutMs: 240_000 });
      try {
        expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0);
        const report = JSON.parse(r.stdout);
        expect(report.service).toMatchObject({ kind: 'enabled-in-image', link: '/etc/systemd/system/multi-user.target.wants/containerd.service' });
        expect(report.service.reason).toContain('systemd is not PID 1');
        expect(report.smoke.ok).toBe(true);
        const smoke = await runCli(['smoke', '--busybox', fx.busybox], { timeoutMs: 120_000 });
        expect(smoke.code, smoke.stdout + smoke.stderr).toBe(0);
        expect(smoke.stdout).toContain('container run');
        const again = await runCli(['install', ...versions(containerd), ...source(), '--skip-smoke', '--json'], { timeoutMs: 60_000 });
        expect(JSON.parse(again.stdout).changed).toBe(false);
      } finally {
        const u = await runCli(['uninstall'], { timeoutMs: 60_000 });
        expect(u.code, u.stderr).toBe(0);
      }
      expect(await Promise.all(watched.map(async (p) => contentOf(await snapshot(p))))).toEqual(before);
    });
  }, 400_000);

  // A build host that runs its own containerd on the default paths: smoke --root starts a temporary
  // containerd beside it, and afterwards the host's gRPC and ttrpc sockets still exist, answer and
  // belong to the host's daemon. All in a private mount namespace with a tmpfs on /run, so neither
  // the "host" containerd nor a broken smoke test touches this machine's real /run.
  it('a containerd already running on the build host keeps its sockets through smoke --root, even with a site drop-in that names them', async () => {
    const containerd = fx.versions.containerd.filter((v) => !v.startsWith('1.')).at(-1)!;
    const root = await mkdtemp(path.join(work, 'root-'));
    const install = await runCli([
      'install', '--root', root, '--skip-smoke', '--containerd', containerd, '--runc', fx.versions.runc, '--cni', fx.versions.cni,
      '--nerdctl', 'none', '--crictl', 'none', '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', fx.checksums,
      '--cache-dir', path.join(work, 'cache'),
    ], { timeoutMs: 120_000 });
    expect(install.code, install.stderr).toBe(0);

    const metrics = await freePort();
    await mkdir(path.join(root, 'etc/containerd/conf.d'), { recursive: true });
    await writeFile(path.join(root, 'etc/containerd/conf.d/50-site.toml'), [
      'version = 3',
      '[ttrpc]', '  address = "/run/containerd/containerd.sock.ttrpc"',
      '[debug]', '  address = "/run/containerd/debug.sock"',
      '[metrics]', `  address = "127.0.0.1:${metrics}"`,
      '[plugins."io.containerd.server.v1.ttrpc"]', '  address = "/run/containerd/containerd.sock.ttrpc"',
      '[plugins."io.containerd.server.v1.debug"]', '  address = "/run/containerd/debug.sock"',
      '',
    ].join('\n'));
    await writeFile(path.join(work, 'host.toml'), [
      'version = 3', `root = "${work}/host-root"`, 'state = "/run/containerd"',
      '[plugins."io.containerd.nri.v1.nri"]', '  disable = true',
      // This machine lacks CAP_SYS_RESOURCE (not needed on real nodes).
      '[plugins."io.containerd.cri.v1.runtime"]', '  restrict_oom_score_adj = true', '',
    ].join('\n'));

    const r = await execa('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', SCENARIO], {
      env: { ...testEnv(), ROOT: root, WORK: work, NODE: process.execPath, CLI0: CLI[0], CLI1: CLI[1] ?? '', BUSYBOX: fx.busybox },
      reject: false,
      timeout: 120_000,
    });
    expect(r.exitCode, `${r.stderr}\n${await readFile(path.join(work, 'host.log'), 'utf8').catch(() => '')}`).toBe(0);
    const seen = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const report = JSON.parse(await readFile(path.join(work, 'smoke.json'), 'utf8'));
    const start = report.checks.find((c: { name: string }) => c.name === 'containerd start');

    expect(seen.smoke_exit, `${JSON.stringify(report.checks.filter((c: { ok: boolean }) => !c.ok))}`).toBe('0');
    expect(start.detail).toMatch(/listens only on \/tmp\/np-smoke-\w+\/containerd\.sock, \/tmp\/np-smoke-\w+\/containerd\.sock\.ttrpc/);
    expect(start.detail).not.toContain('/run/containerd/debug.sock');
    expect(start.detail).not.toContain(`:${metrics}`);
    expect(seen).toMatchObject({
      ttrpc_owned_before: '1',
      'containerd.sock': 'socket', 'containerd.sock.answers': 'yes',
      'containerd.sock.ttrpc': 'socket', 'containerd.sock.ttrpc.answers': 'yes',
      ttrpc_same_socket: 'yes', ttrpc_owned_after: '1', ctr_version: 'ok',
    });
    expect(seen.run_entries).not.toContain('debug.sock');
  }, 180_000);
});
