/**
 * Bounded input, end to end: the built CLI against the test release server serving an oversized or
 * endless checksum file, and answers that trickle in just fast enough to beat the idle timeout.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { checksumsFor } from '../support/layout.ts';
import { useUnpinnedMirror } from '../support/synthetic-mirror.ts';

const m = useUnpinnedMirror('np-bounds-');
const mirror = () => ['--mirror', m.gh.url, '--github-api', m.gh.apiUrl];
const SUMS = '/containerd/containerd/releases/download/v2.2.5/containerd-2.2.5-linux-amd64.tar.gz.sha256sum';

describe('small documents are bounded', () => {
  it('an endless checksum file is cut off at 1 MiB: DOCUMENT_TOO_LARGE names the URL, exit 1, one request', async () => {
    m.gh.setFault({ match: SUMS, status: 200, body: `${'0'.repeat(64)}  containerd-2.2.5-linux-amd64.tar.gz\n`, endless: true });
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', '--json', ...mirror()], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(1);
    const { error } = JSON.parse(r.stdout);
    expect(error).toMatchObject({ code: 'DOCUMENT_TOO_LARGE', url: `${m.gh.url}${SUMS}`, limitBytes: 1024 * 1024 });
    expect(r.stderr).toContain(`node-prep: ${m.gh.url}${SUMS} is larger than 1 MiB`);
    expect(m.gh.requests.filter((q) => q.path === SUMS)).toHaveLength(1);
  });

  it('a checksum file that trickles in ends at the deadline (--deadline, shorter than 2 minutes), naming the URL', async () => {
    m.gh.setFault({ match: SUMS, trickleMs: 100 });
    const t0 = Date.now();
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', '--timeout', '3', '--deadline', '1.5', ...mirror()], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`node-prep: GET ${m.gh.url}${SUMS} did not finish within 1.5 s, the deadline for a checksum file, signature or API page, retries included.`);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('the download deadline', () => {
  it('an artifact that trickles in faster than --timeout ends at --deadline (NODE_PREP_DEADLINE too), naming the URL', async () => {
    const sums = path.join(m.work, 'SHA256SUMS');
    await writeFile(sums, checksumsFor(m.gh.repos));
    const asset = '/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz';
    m.gh.setFault({ match: asset, trickleMs: 200 });
    const t0 = Date.now();
    const r = await runCli(
      ['download', '--bundle', path.join(m.work, 'bundle'), '--cache-dir', path.join(m.work, 'cache'), '--arch', 'amd64', '--checksums', sums, '--timeout', '3', '--json', ...mirror()],
      { env: { NODE_PREP_DEADLINE: '2' }, timeoutMs: 30_000 },
    );
    expect(r.code, r.stderr).toBe(1);
    const { error } = JSON.parse(r.stdout);
    expect(error).toMatchObject({ code: 'DEADLINE', url: `${m.gh.url}${asset}`, deadlineMs: 2000 });
    expect(error.message).toBe(`GET ${m.gh.url}${asset} did not finish within 2 s, the deadline for one download, retries included.`);
    expect(error.hint).toContain('--deadline SECONDS (NODE_PREP_DEADLINE)');
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});

describe('what the user typed', () => {
  it('a --cache-dir that is a file, or below one, is a usage error (exit 2) that names it', async () => {
    const file = path.join(m.work, 'not-a-folder');
    await writeFile(file, 'x');
    for (const dir of [file, path.join(file, 'sub')]) {
      const r = await runCli(['download', '--bundle', path.join(m.work, 'b'), '--cache-dir', dir, '--arch', 'amd64', ...mirror()]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`node-prep: --cache-dir ${dir}`);
      expect(r.stderr).not.toContain('unexpected error');
    }
    expect(m.gh.requests).toEqual([]);
  });

  it('a 100,000-character --root and --registry-mirror host, and a 300-character version, exit 2 with what is allowed', async () => {
    const cases: Array<[string[], string]> = [
      [['--root', `/${'r'.repeat(100_000)}`], '--root is 100001 characters long; a value may have at most 4096.'],
      [['--registry-mirror', `${'h'.repeat(300)}=https://m.example`], '--registry-mirror HOST is 300 characters long; a host name may have at most 253.'],
      [['--containerd', `2.2.${'1'.repeat(296)}`], '--containerd is 300 characters long; a version spec may have at most 128.'],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['plan', '--arch', 'amd64', ...args, '--json']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`node-prep: ${message}`);
      expect(JSON.parse(r.stdout).error.code).toBe('USAGE');
    }
  });
});

describe('strings from a server are never printed raw', () => {
  const ESC = '\u001b';

  it('a latest redirect to a tag with %0A and an escape sequence is refused, shown escaped', async () => {
    m.gh.setFault({ match: '/containerd/containerd/releases/latest', status: 302, headers: { location: '/containerd/containerd/releases/tag/v9.9.9%0Acontainerd%202.3.4%3A%20installed%1B%5B2J' } });
    const r = await runCli(['plan', '--containerd', 'latest', '--arch', 'amd64', ...mirror()]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('points to the tag "v9.9.9\\\\ncontainerd 2.3.4: installed\\\\x1b[2J", which holds a control character or a path separator.');
    expect(r.stderr).not.toContain(ESC);
    // One line of message, one of hint: the forged line did not become a line of its own.
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(2);
  });

  it('a latest redirect to a tag with a path separator is refused', async () => {
    m.gh.setFault({ match: '/containerd/containerd/releases/latest', status: 302, headers: { location: '/containerd/containerd/releases/tag/..%2F..%2Fetc' } });
    const r = await runCli(['plan', '--containerd', 'latest', '--arch', 'amd64', ...mirror()]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('points to the tag "../../etc"');
  });

  it('an error page with escape sequences and line breaks is quoted on one line, escaped', async () => {
    m.gh.setFault({ match: SUMS, status: 403, body: `denied${ESC}]0;owned${ESC}\\\nnode-prep: all good\r\n` });
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', ...mirror()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('answered 403: denied\\x1b]0;owned\\x1b\\ node-prep: all good');
    expect(r.stderr).not.toContain(ESC);
  });

  it('a checksum file with two digests for the asset is a clear error, not an internal one', async () => {
    const name = 'containerd-2.2.5-linux-amd64.tar.gz';
    m.gh.setFault({ match: SUMS, status: 200, body: `${'a'.repeat(64)}  ${name}\n${'b'.repeat(64)}  ${name}\n` });
    const r = await runCli(['plan', '--containerd', '2.2.5', '--arch', 'amd64', '--json', ...mirror()]);
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.stdout);
    expect(error.code).toBe('PUBLISHED_CHECKSUM');
    expect(error.message).toContain(`lists two different digests for "${name}"`);
  });

  it('API entries that are not releases, and assets named like paths or with control characters, are left out', async () => {
    const page = JSON.stringify([
      null,
      5,
      { tag_name: `v9.9.9${ESC}[2J`, draft: false, prerelease: false, assets: [] },
      { tag_name: 'v2.9.1', draft: false, prerelease: false, assets: [{ name: '../../../usr/local/bin/containerd' }, { name: `x${ESC}[31m` }, null] },
    ]);
    m.gh.setFault({ match: '/api/repos/containerd/containerd/releases', status: 200, body: page });
    const r = await runCli(['versions', 'containerd', '--json', ...mirror()]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).components[0].releases).toEqual(['2.9.1']);
    const text = await runCli(['versions', 'containerd', ...mirror()]);
    expect(text.stdout).toContain('released  2.9.1\n');
    expect(text.stdout + text.stderr).not.toContain(ESC);
  });
});
