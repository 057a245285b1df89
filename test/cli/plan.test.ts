/**
 * `node-prep plan` end to end: the built CLI against the test release server on loopback.
 */
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { containerdRelease, defaultCatalogReleases, sha256 } from '../support/fixtures.ts';
import { rateLimitFault, startReleaseServer, type ReleaseServer } from '../support/release-server.ts';

let gh: ReleaseServer;
const mirror = () => ['--mirror', gh.url, '--github-api', gh.apiUrl];

beforeAll(async () => {
  gh = await startReleaseServer({ repos: await defaultCatalogReleases({ signer: null }), maxPerPage: 2 });
  // A containerd release with no built-in pin, amd64 only.
  gh.addRelease('containerd/containerd', await containerdRelease('2.2.5', ['amd64']));
});
afterAll(() => gh.close());
beforeEach(() => {
  gh.clearFaults();
  gh.requests.length = 0;
});

describe('node-prep plan', () => {
  it('plans nerdctl 2.2.0 with its pinned digest and the defaults for the rest, with no network', async () => {
    const r = await runCli(['plan', '--nerdctl', '2.2.0', '--arch', 'amd64', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.components.map((c: { name: string; version: string }) => `${c.name}@${c.version}`)).toEqual([
      'containerd@2.3.4',
      'runc@1.4.3',
      'cni@1.9.1',
      'nerdctl@2.2.0',
      'crictl@1.36.0',
    ]);
    const nerdctl = plan.artifacts.find((a: { component: string }) => a.component === 'nerdctl');
    expect(nerdctl).toMatchObject({
      name: 'nerdctl-2.2.0-linux-amd64.tar.gz',
      url: 'https://github.com/containerd/nerdctl/releases/download/v2.2.0/nerdctl-2.2.0-linux-amd64.tar.gz',
      sha256: '1b3390a832eaeaa1459cf42357da983205da2dd72300a015ad018b3499fc455e',
      digestSource: { kind: 'pinned', from: 'built-in' },
    });
    expect(plan.files.map((f: { path: string }) => f.path)).toEqual(
      expect.arrayContaining(['/usr/local/bin/containerd', '/usr/local/sbin/runc', '/opt/cni/bin/bridge', '/usr/local/bin/nerdctl', '/etc/containerd/config.toml']),
    );
  });

  it('prints a readable plan that says nothing changed', async () => {
    const image = await mkdtemp(path.join(os.tmpdir(), 'np-plan-image-'));
    const r = await runCli(['plan', '--arch', 'arm64', '--root', image]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Plan for image root ${image} (linux/arm64`);
    expect(r.stdout).toContain('  arch: --arch arm64 (the image has no ELF binary that names its arch)');
    expect(r.stdout).toContain('runc.arm64');
    // Paths are node paths: where the file goes in the image.
    expect(r.stdout).toMatch(/^  \/usr\/local\/sbin\/ +runc\n/m);
    expect(r.stdout).toContain('Nothing was changed.');
  });

  it('resolves a range to the newest release the mirror serves, through paginated API answers', async () => {
    const r = await runCli(['plan', '--containerd', '^2.1', '--arch', 'amd64', '--json', ...mirror()]);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.components[0]).toMatchObject({ name: 'containerd', version: '2.3.4', spec: '^2.1', resolvedFrom: 'range' });
    expect(plan.artifacts[0].url).toBe(`${gh.url}/containerd/containerd/releases/download/v2.3.4/containerd-2.3.4-linux-amd64.tar.gz`);
    const pages = gh.requests.filter((q) => q.path.startsWith('/api/repos/containerd/containerd/releases'));
    expect(pages.length).toBeGreaterThan(2);
  });

  it.each([
    ['~2.1', '2.1.9'],
    ['2.2.x', '2.2.7'],
    ['1.7.x', '1.7.34'],
  ])('range %s resolves to %s, skipping drafts, pre-releases and api/ tags', async (spec, version) => {
    const r = await runCli(['plan', '--containerd', spec, '--arch', 'amd64', '--json', ...mirror()], { env: { GITHUB_TOKEN: 'test-token-1234' } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).components[0].version).toBe(version);
  });

  it('latest follows the /releases/latest redirect and makes no API call', async () => {
    const r = await runCli(['plan', '--runc', 'latest', '--arch', 'amd64', '--json', ...mirror()]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).components[1]).toMatchObject({ name: 'runc', version: '1.4.3', resolvedFrom: 'latest' });
    expect(gh.requests.map((q) => q.path)).toEqual(['/opencontainers/runc/releases/latest']);
  });

  it('latest from a mirror that cannot redirect says what to do instead', async () => {
    gh.setFault({ match: '/opencontainers/runc/releases/latest', status: 404 });
    const r = await runCli(['plan', '--runc', 'latest', '--arch', 'amd64', ...mirror()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not a redirect to the latest release');
    expect(r.stderr).toContain('A plain file-server mirror cannot answer `latest`');
  });

  it('a range with the API out of reach names the API, not the mirror', async () => {
    const r = await runCli(['plan', '--runc', '^1.4', '--arch', 'amd64', '--mirror', gh.url, '--github-api', 'http://127.0.0.1:9']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('connection refused');
    expect(r.stderr).toContain('Ranges need the GitHub API');
  });

  it('sends GITHUB_TOKEN to the API only, never to downloads, even on the same host', async () => {
    // The range resolves to the unpinned 2.2.5, whose published checksum file comes from the same host.
    const r = await runCli(['plan', '--containerd', '>=2.2.5 <2.2.7', '--arch', 'amd64', ...mirror()], { env: { GITHUB_TOKEN: 'secret-token-5678' } });
    expect(r.code, r.stderr).toBe(0);
    const api = gh.requests.filter((q) => q.path.startsWith('/api/'));
    const other = gh.requests.filter((q) => !q.path.startsWith('/api/'));
    expect(api.length).toBeGreaterThan(0);
    expect(other.map((q) => q.path)).toContain('/containerd/containerd/releases/download/v2.2.5/containerd-2.2.5-linux-amd64.tar.gz.sha256sum');
    expect(api.every((q) => q.headers.authorization === 'Bearer secret-token-5678')).toBe(true);
    expect(other.every((q) => q.headers.authorization === undefined)).toBe(true);
    expect(r.stdout + r.stderr).not.toContain('secret-token-5678');
  });

  it('an unpinned version is checked against the digest its release publishes', async () => {
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', '--json', ...mirror()]);
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout).artifacts[0];
    const tarball = gh.repos['containerd/containerd']!.find((x) => x.tag === 'v2.2.5')!.assets['containerd-2.2.5-linux-amd64.tar.gz'] as Buffer;
    expect(a.sha256).toBe(sha256(tarball));
    expect(a.digestSource).toEqual({
      kind: 'published',
      url: `${gh.url}/containerd/containerd/releases/download/v2.2.5/containerd-2.2.5-linux-amd64.tar.gz.sha256sum`,
      // The mirror serves both the digest and the bytes, and nothing else vouches for it.
      sameHost: new URL(gh.url).host,
    });
  });

  it('says in the text plan that only the mirror vouches for an unpinned digest', async () => {
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', ...mirror()]);
    expect(r.code, r.stderr).toBe(0);
    const host = new URL(gh.url).host;
    expect(r.stdout).toContain(`.sha256sum), by the same host that serves the download\n`);
    expect(r.stdout).toContain(`    warning: containerd-2.2.5-linux-amd64.tar.gz: its sha256 and its bytes both come from ${host}, and nothing independent vouches for the digest`);
    // Pinned artifacts carry no such warning.
    expect(r.stdout.match(/warning:/g)).toHaveLength(1);
  });

  it('--verify strict refuses a digest only the mirror vouches for: exit 1, naming the artifact and host, nothing downloaded', async () => {
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', '--verify', 'strict', '--json', ...mirror()]);
    expect(r.code, r.stderr).toBe(1);
    const host = new URL(gh.url).host;
    expect(r.stderr).toContain(`node-prep: --verify strict: the sha256 of containerd-2.2.5-linux-amd64.tar.gz (containerd 2.2.5) comes from ${host}, the same host that serves the download, and nothing independent vouches for it.`);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'UNVOUCHED_DIGEST', host, artifacts: ['containerd-2.2.5-linux-amd64.tar.gz'] });
    expect(gh.requests.filter((q) => q.path.endsWith('.tar.gz'))).toEqual([]);
  });

  it('--verify strict takes a mirror when every digest is pinned', async () => {
    const r = await runCli(['plan', '--arch', 'amd64', '--verify', 'strict', ...mirror()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('warning:');
  });

  it('a version that does not exist exits 1 and names versions that do', async () => {
    const r = await runCli(['plan', '--containerd', '9.9.9', '--arch', 'amd64', ...mirror()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('containerd has no release matching 9.9.9');
    expect(r.stderr).toMatch(/Nearest that exist: 2\.3\.4, 2\.2\.7, 2\.2\.5, 2\.1\.9/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a range that matches nothing exits 1 naming the newest releases', async () => {
    const r = await runCli(['plan', '--crictl', '^2', '--arch', 'amd64', ...mirror()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('crictl has no release matching ^2. Nearest that exist: 1.36.0, 1.35.0');
  });

  it('a release without an asset for the arch says so', async () => {
    const image = await mkdtemp(path.join(os.tmpdir(), 'np-plan-image-'));
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'arm64', '--root', image, ...mirror()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('containerd 2.2.5 publishes no linux/arm64 asset');
  });

  it('turns a rate-limit answer into the reset time and the GITHUB_TOKEN hint', async () => {
    gh.setFault(rateLimitFault(1_900_000_000));
    const r = await runCli(['plan', '--containerd', '^2.1', '--arch', 'amd64', ...mirror()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('rate limit is used up until 2030-03-17T17:46:40.000Z');
    expect(r.stderr).toContain('Set GITHUB_TOKEN');
  });

  it('--checksums pins win over the built-in ones', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'np-plan-'));
    const file = path.join(dir, 'SHA256SUMS');
    await writeFile(file, `${'ab'.repeat(32)}  containerd-2.3.4-linux-amd64.tar.gz\n`);
    const r = await runCli(['plan', '--arch', 'amd64', '--json', '--checksums', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).artifacts[0]).toMatchObject({ sha256: 'ab'.repeat(32), digestSource: { kind: 'pinned', from: 'checksums-file', file } });
  });

  it('NODE_PREP_MIRROR and NODE_PREP_GITHUB_API replace the bases', async () => {
    const r = await runCli(['plan', '--cni', '~1.8', '--arch', 'amd64', '--json'], { env: { NODE_PREP_MIRROR: gh.url, NODE_PREP_GITHUB_API: gh.apiUrl } });
    expect(r.code, r.stderr).toBe(0);
    const cni = JSON.parse(r.stdout).artifacts.find((a: { component: string }) => a.component === 'cni');
    expect(cni.url).toBe(`${gh.url}/containernetworking/plugins/releases/download/v1.8.0/cni-plugins-linux-amd64-v1.8.0.tgz`);
  });

  it.each([
    ['glibc 2.31', { 'lib/x86_64-linux-gnu/libc-2.31.so': 'elf' }, { 'lib/x86_64-linux-gnu/libc.so.6': 'libc-2.31.so' }, 'containerd-static-2.3.4-linux-amd64.tar.gz', /glibc 2\.31, older than the 2\.35/],
    ['musl', { 'lib/ld-musl-x86_64.so.1': 'elf' }, {}, 'containerd-static-2.3.4-linux-amd64.tar.gz', /musl/],
    ['glibc 2.36', { 'lib/x86_64-linux-gnu/libc-2.36.so': 'elf' }, { 'lib/x86_64-linux-gnu/libc.so.6': 'libc-2.36.so' }, 'containerd-2.3.4-linux-amd64.tar.gz', /glibc 2\.36/],
  ])('an image root with %s gets the right containerd build', async (_name, files, links, asset, reason) => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'np-libc-'));
    for (const [f, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, f)), { recursive: true });
      await writeFile(path.join(root, f), body);
    }
    for (const [l, target] of Object.entries(links)) await symlink(target, path.join(root, l));
    const r = await runCli(['plan', '--root', root, '--arch', 'amd64', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.artifacts[0]).toMatchObject({ name: asset, digestSource: { kind: 'pinned', from: 'built-in' } });
    expect(plan.containerd.buildReason).toMatch(reason);
  });

  it('none skips an optional component', async () => {
    const r = await runCli(['plan', '--nerdctl', 'none', '--crictl', 'none', '--arch', 'amd64', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.skipped).toEqual(['nerdctl', 'crictl']);
    expect(plan.files.some((f: { path: string }) => f.path.endsWith('nerdctl.toml'))).toBe(false);
  });
});

describe('node-prep versions', () => {
  it('lists the default, the pinned versions and the released ones', async () => {
    const r = await runCli(['versions', 'containerd', '--arch', 'amd64', '--json', ...mirror()]);
    expect(r.code, r.stderr).toBe(0);
    const [c] = JSON.parse(r.stdout).components;
    expect(c).toMatchObject({ name: 'containerd', default: '2.3.4' });
    expect(c.pinned).toContain('1.7.34');
    expect(c.releases).toEqual(['2.3.4', '2.2.7', '2.2.5', '2.1.9', '2.1.4', '1.7.34']);
  });

  it('still lists defaults and pins when the API cannot be reached', async () => {
    const r = await runCli(['versions', 'runc', '--arch', 'amd64', '--github-api', 'http://127.0.0.1:9']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('default   1.4.3');
    expect(r.stdout).toMatch(/released  \(not listed: .*connection refused/);
  });
});

describe('usage errors exit 2 with one clear line', () => {
  it.each([
    [['plan', '--arch', 'riscv64'], 'riscv64" is not supported: node-prep installs for amd64 and arm64 only'],
    [['plan', '--containerd', 'two'], '--containerd "two" is not a version spec'],
    [['plan', '--frobnicate'], 'Unknown flag --frobnicate'],
  ])('%j', async (argv, message) => {
    const r = await runCli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toContain(message);
    expect(r.stdout).toBe('');
  });

  it('with --json the error is the one JSON document on stdout', async () => {
    const r = await runCli(['plan', '--arch', 'riscv64', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'error', exitCode: 2, error: { code: 'USAGE' } });
  });
});

describe('help and version', () => {
  it('--help lists every command and --version prints the version', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['install', 'plan', 'download', 'smoke', 'status', 'uninstall', 'versions', 'doctor']) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    const version = await runCli(['--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
