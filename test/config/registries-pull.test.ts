/**
 * Pulls as the kubelet makes them (the CRI image service) from real registries, through what
 * `install --root --registries FILE --containerd-proxy URL` writes: Debian's containerd (1.6 and
 * 2.x) started on a private socket with the installed config, Debian's docker-registry on
 * 127.0.0.1 anonymous, with htpasswd basic auth, behind TLS with a CA made here, and under a path
 * prefix, and a forward proxy on loopback for the proxy drop-in. The secrets are looked for in every
 * output, the record and the logs. Needs root; NODE_PREP_E2E=1 makes a skip a failure.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criPullImage } from '../../src/smoke/cri.ts';
import { runCli, type CliResult } from '../support/cli.ts';
import { debianRelease, E2E_REQUIRED, e2eSkipReason, type DebianRelease } from '../support/debian.ts';
import { startProxy, type TestProxy } from '../support/proxy.ts';
import { busyboxImage, freePort, haveRegistryTools, makeTls, pushImage, startPrefixProxy, startRegistry, type TestRegistry } from '../support/registry.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';
import { violations } from '../schemas/validate.ts';
import { startDaemon } from '../smoke/e2e.ts';

const skip = e2eSkipReason() ?? (haveRegistryTools ? undefined : 'needs docker-registry, apache2-utils and openssl (Debian packages)');
if (skip && E2E_REQUIRED) throw new Error(`NODE_PREP_E2E=1 but ${skip}`);
const fx = debianRelease() as DebianRelease;

const USER = 'puller';
const PASSWORD = 'pw-7f3a91c2e8';
const WRONG = 'not-the-password';
const PROXY_USER_PASSWORD = 'proxypw-55d1';
const REPO = 'test/busybox';
/** Every form a secret could leak in: as is, and inside the basic auth header. */
const SECRETS = [PASSWORD, WRONG, PROXY_USER_PASSWORD, Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), Buffer.from(`${USER}:${WRONG}`).toString('base64')];

let work: string;
let gh: ReleaseServer;
const registries: Record<'anon' | 'auth' | 'tls', TestRegistry> = {} as never;
let ca: string;
let prefix: Awaited<ReturnType<typeof startPrefixProxy>>;
let wrongFront: Awaited<ReturnType<typeof startPrefixProxy>>;
let forward: TestProxy;
/** Registry names nothing listens on: the mirrors stand in for them. */
const upstream: Record<'anon' | 'auth' | 'tls' | 'prefix' | 'wrong', string> = {} as never;
let proxied: string;
let registriesFile: string;

beforeAll(async () => {
  if (skip) return;
  work = await mkdtemp(path.join(os.tmpdir(), 'np-registries-'));
  const tls = await makeTls(path.join(work, 'tls'));
  ca = tls.ca;
  registries.anon = await startRegistry(path.join(work, 'anon'));
  registries.auth = await startRegistry(path.join(work, 'auth'), { auth: { user: USER, password: PASSWORD } });
  registries.tls = await startRegistry(path.join(work, 'tls-registry'), { tls });
  const image = await busyboxImage(fx.busybox);
  await pushImage(registries.anon.url, REPO, '1', image);
  await pushImage(registries.auth.url, REPO, '1', image, { auth: { user: USER, password: PASSWORD } });
  await pushImage(registries.tls.url, REPO, '1', image, { ca });
  prefix = await startPrefixProxy(registries.anon.url, '/v2/hub');
  wrongFront = await startPrefixProxy(registries.auth.url, '/v2/front');
  for (const k of ['anon', 'auth', 'tls', 'prefix', 'wrong'] as const) upstream[k] = `127.0.0.1:${await freePort()}`;
  // containerd (Go) never proxies a loopback address: the proxied registry goes by a name only the proxy resolves.
  proxied = `registry.proxied.test:${new URL(registries.anon.url).port}`;
  forward = await startProxy({ names: { 'registry.proxied.test': '127.0.0.1' } });
  const host = (u: string) => new URL(u).host;
  registriesFile = path.join(work, 'registries.yaml');
  await writeFile(registriesFile, `# what a node pulls through
mirrors:
  "${upstream.anon}":
    endpoint: ["${registries.anon.url}"]
  "${upstream.auth}":
    endpoint: ["${registries.auth.url}"]
  "${upstream.tls}":
    endpoint: ["${registries.tls.url}"]
  "${upstream.prefix}":
    endpoint: ["${prefix.url}"]
  "${upstream.wrong}":
    endpoint: ["${wrongFront.url}"]
  "${proxied}":
    endpoint: ["http://${proxied}"]
configs:
  "${host(registries.auth.url)}":
    auth:
      username: ${USER}
      password: ${PASSWORD}
  "${host(registries.tls.url)}":
    tls:
      ca_file: ${ca}
  "${host(wrongFront.url)}":
    auth:
      username: ${USER}
      password: ${WRONG}
`);
  gh = await startReleaseServer({ repos: fx.repos });
}, 120_000);

afterAll(async () => {
  await Promise.all([...Object.values(registries).map((r) => r.close()), prefix?.close(), wrongFront?.close(), forward?.close(), gh?.close()]);
  if (work) await rm(work, { recursive: true, force: true });
});

const versions = (containerd: string) => ['--containerd', containerd, '--runc', fx.versions.runc, '--cni', fx.versions.cni, '--nerdctl', fx.versions.nerdctl, '--crictl', fx.versions.crictl];
const source = () => ['--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', fx.checksums, '--cache-dir', path.join(work, 'cache')];
const proxyFlags = () => ['--containerd-proxy', `http://${USER}:${PROXY_USER_PASSWORD}@${new URL(forward.url).host}`, '--containerd-no-proxy', 'localhost,127.0.0.1,::1'];

function expectNoSecret(where: string, text: string): void {
  for (const s of SECRETS) expect(text.includes(s), `${where} holds a secret (${s.slice(0, 4)}…)`).toBe(false);
}
const output = (r: CliResult) => `${r.stdout}\n${r.stderr}`;

/** Every file under dir, recursively (the install record, its backups, logs). */
async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The Environment= assignments of the proxy drop-in, as systemd would hand them to containerd. */
function dropInEnvironment(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^Environment="((?:[^"\\]|\\.)*)"$/gm)) {
    const assignment = m[1]!.replace(/\\(.)/g, '$1').replace(/%%/g, '%');
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  return env;
}

describe.skipIf(skip)('pulls through --registries and --containerd-proxy', () => {
  it.each(fx?.versions.containerd ?? [])('containerd %s pulls through each kind of mirror and fails clearly with wrong credentials', async (containerd) => {
    const root = path.join(work, `root-${containerd}`);
    await mkdir(root);
    const planArgs = ['--root', root, ...versions(containerd), ...source(), '--registries', registriesFile, ...proxyFlags()];
    const args = [...planArgs, '--skip-smoke'];

    const plan = await runCli(['plan', ...planArgs, '--json'], { timeoutMs: 120_000 });
    expect(plan.code, plan.stderr).toBe(0);
    expectNoSecret('plan --json', output(plan));
    expect(violations('plan', JSON.parse(plan.stdout))).toEqual([]);
    const planned = JSON.parse(plan.stdout).files.filter((f: { path: string }) => f.path.includes('certs.d') || f.path.includes('containerd.service.d'));
    expect(planned.filter((f: { private?: boolean }) => f.private).map((f: { path: string }) => f.path).sort()).toEqual(
      [`/etc/containerd/certs.d/${upstream.auth}/hosts.toml`, `/etc/containerd/certs.d/${upstream.wrong}/hosts.toml`, `/etc/containerd/certs.d/${new URL(registries.auth.url).host}/hosts.toml`, `/etc/containerd/certs.d/${new URL(wrongFront.url).host}/hosts.toml`, '/etc/systemd/system/containerd.service.d/http-proxy.conf'].sort(),
    );
    const humanPlan = await runCli(['plan', ...planArgs], { timeoutMs: 120_000 });
    expectNoSecret('plan', output(humanPlan));

    const install = await runCli(['install', ...args, '--json', '--verbose'], { timeoutMs: 180_000 });
    expect(install.code, install.stderr).toBe(0);
    expectNoSecret('install --json --verbose', output(install));

    // Root only where a secret is; the folders above are not writable by others.
    const certs = path.join(root, 'etc/containerd/certs.d');
    for (const [name, mode] of [[upstream.auth, 0o600], [upstream.wrong, 0o600], [upstream.anon, 0o644], [upstream.tls, 0o644]] as const) {
      expect((await stat(path.join(certs, name, 'hosts.toml'))).mode & 0o7777, name).toBe(mode);
      expect((await stat(path.join(certs, name))).mode & 0o002, `${name}/`).toBe(0);
    }
    const dropIn = path.join(root, 'etc/systemd/system/containerd.service.d/http-proxy.conf');
    expect((await stat(dropIn)).mode & 0o7777).toBe(0o600);
    for (const f of await allFiles(path.join(root, 'var/lib/node-prep'))) expectNoSecret(f, await readFile(f, 'utf8'));
    // The record holds their digests: root only as well.
    expect((await stat(path.join(root, 'var/lib/node-prep/manifest.json'))).mode & 0o7777).toBe(0o600);

    // The same inputs again: nothing changes.
    const again = await runCli(['install', ...args, '--json'], { timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).changed).toBe(false);
    // One more registry in the file: its hosts.toml is written, and nothing else.
    const more = path.join(work, `registries-more-${containerd}.yaml`);
    await writeFile(more, `${await readFile(registriesFile, 'utf8')}  "extra.example":\n    auth: { username: ${USER}, password: ${PASSWORD} }\n`);
    const grown = await runCli(['install', ...args.map((a) => (a === registriesFile ? more : a)), '--json'], { timeoutMs: 120_000 });
    expect(grown.code, grown.stderr).toBe(0);
    const written = JSON.parse(grown.stdout).files.filter((f: { outcome: { kind: string } }) => f.outcome.kind !== 'unchanged').map((f: { path: string }) => f.path);
    expect(written).toEqual(['/etc/containerd/certs.d/extra.example/hosts.toml']);
    expectNoSecret('install --json', output(grown));

    const env = dropInEnvironment(await readFile(dropIn, 'utf8'));
    expect(env).toEqual({ HTTP_PROXY: proxyFlags()[1], HTTPS_PROXY: proxyFlags()[1], NO_PROXY: 'localhost,127.0.0.1,::1' });
    const d = await startDaemon(work, { root }, env);
    const logs: string[] = [];
    try {
      const pull = (registry: string) => criPullImage(d.paths.socket, `${registry}/${REPO}:1`, { timeoutMs: 60_000 });
      for (const kind of ['anon', 'auth', 'tls', 'prefix'] as const) {
        await expect(pull(upstream[kind]), kind).resolves.toMatch(/^sha256:[0-9a-f]{64}$/);
      }
      // Under the mirror's API root as given (override_path: no second /v2 after it).
      expect(prefix.paths.some((p) => p.startsWith(`/v2/hub/${REPO}/manifests/1`))).toBe(true);
      // The proxied registry is reached through the proxy the drop-in names, with its credentials.
      await expect(pull(proxied)).resolves.toMatch(/^sha256:/);
      expect(forward.entries.some((e) => e.target.startsWith(`http://${proxied}/v2/${REPO}/manifests/1`))).toBe(true);
      // Wrong credentials: the pull fails, and says the registry refused them (containerd 1.6 names
      // the 401; 2.x says "authorization failed: no basic auth credentials").
      const wrong = await pull(upstream.wrong).then(() => undefined, (err: Error) => err);
      expect(wrong?.message).toMatch(/401 Unauthorized|authorization failed/);
      expectNoSecret('the CRI error', wrong?.message ?? '');
    } finally {
      logs.push(await readFile(path.join(d.paths.dir, 'log'), 'utf8').catch(() => ''));
      await d.stop();
    }
    expect(logs.join('')).not.toBe('');
    for (const log of logs) expectNoSecret("containerd's log", log);

    // status: drift on a root-only file is seen, and no secret is shown.
    await writeFile(path.join(certs, upstream.auth, 'hosts.toml'), 'server = "https://changed.example"\n');
    const status = await runCli(['status', '--root', root, '--json'], { timeoutMs: 60_000 });
    const statusDoc = JSON.parse(status.stdout);
    expect(violations('status', statusDoc)).toEqual([]);
    expect(statusDoc.drift.map((x: { path: string }) => x.path)).toContain(`/etc/containerd/certs.d/${upstream.auth}/hosts.toml`);
    expect(statusDoc.registryHosts).toContain(upstream.prefix);
    const statusText = await runCli(['status', '--root', root], { timeoutMs: 60_000 });
    expect(statusText.stdout).toContain('`ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d IMAGE`');
    expectNoSecret('status', output(status) + output(statusText));

    // Uninstall takes them away with everything else.
    // --force: the file changed above goes too (without it, uninstall keeps changed files).
    const u = await runCli(['uninstall', '--root', root, '--force', '--json'], { timeoutMs: 60_000 });
    expect(u.code, u.stderr).toBe(0);
    expect(await readdir(path.join(root, 'etc/containerd')).catch(() => [])).not.toContain('certs.d');
    expect(await stat(dropIn).then(() => true, () => false)).toBe(false);
  }, 400_000);
});
