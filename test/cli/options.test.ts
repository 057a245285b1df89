import { describe, expect, it } from 'vitest';
import { parseArgv } from '../../src/cli/options.ts';
import { UsageError } from '../../src/errors.ts';

const run = (argv: string[], env: Record<string, string> = {}) => {
  const p = parseArgv(argv, env);
  if (p.kind !== 'run') throw new Error(`expected run, got ${p.kind}`);
  return p.options;
};

describe('parseArgv', () => {
  it('plan is install --dry-run', () => {
    expect(run(['plan']).dryRun).toBe(true);
    expect(run(['install']).dryRun).toBe(false);
    expect(run(['install', '--dry-run']).dryRun).toBe(true);
  });

  it('reads the documented environment, flags win', () => {
    const env = { NODE_PREP_MIRROR: 'http://127.0.0.1:1/gh/', NODE_PREP_GITHUB_API: 'http://127.0.0.1:1/api', GITHUB_TOKEN: 't0k3n' };
    const o = run(['plan'], env);
    expect(o.mirror).toBe('http://127.0.0.1:1/gh');
    expect(o.githubApi).toBe('http://127.0.0.1:1/api');
    expect(o.githubToken).toBe('t0k3n');
    expect(run(['plan', '--mirror', 'http://127.0.0.1:2'], env).mirror).toBe('http://127.0.0.1:2');
  });

  it('normalises --root and --prefix, so / always means the live host', () => {
    expect(run(['plan', '--root', '//']).root).toBe('/');
    expect(run(['plan', '--root', '/.']).root).toBe('/');
    expect(run(['plan', '--root', '/tmp//img/']).root).toBe('/tmp/img');
    expect(run(['plan', '--prefix', '/opt/x/../local/']).prefix).toBe('/opt/local');
  });

  it('takes IPv6 and _default registry mirrors, as the rendered hosts.toml does', () => {
    expect(run(['plan', '--registry-mirror', '[::1]:5000=http://[::1]:5001', '--registry-mirror', '_default=https://m.example']).registryMirrors).toEqual([
      { host: '[::1]:5000', url: 'http://[::1]:5001' },
      { host: '_default', url: 'https://m.example' },
    ]);
  });

  it('refuses credentials in a --registry-mirror URL without echoing them, and points to --registries', () => {
    let caught: UsageError | undefined;
    try {
      parseArgv(['plan', '--registry-mirror', 'docker.io=http://user:hunter2pass@mirror.example'], {});
    } catch (err) {
      caught = err as UsageError;
    }
    expect(caught?.exitCode).toBe(2);
    expect(caught?.message).toContain('http://<redacted>@mirror.example');
    expect(`${caught?.message} ${caught?.hint}`).not.toContain('hunter2pass');
    expect(caught?.hint).toContain('--registries FILE');
  });

  it('containerd proxy: the flags, or the install\'s own variables when asked, flags first', () => {
    expect(run(['plan']).containerdProxy).toBeUndefined();
    expect(run(['plan', '--containerd-proxy', 'http://p.example:3128', '--containerd-no-proxy', 'localhost, 10.0.0.0/8,.svc']).containerdProxy).toEqual({
      http: 'http://p.example:3128', https: 'http://p.example:3128', no: 'localhost,10.0.0.0/8,.svc', source: '--containerd-proxy, --containerd-no-proxy',
    });
    const env = { HTTPS_PROXY: 'http://s.example:3128', http_proxy: 'http://h.example:3128', NO_PROXY: '127.0.0.1' };
    // Not asked: the install's own proxy stays the install's.
    expect(run(['plan'], env).containerdProxy).toBeUndefined();
    expect(run(['plan', '--containerd-proxy-from-env'], env).containerdProxy).toEqual({ http: 'http://h.example:3128', https: 'http://s.example:3128', no: '127.0.0.1', source: '--containerd-proxy-from-env' });
    expect(run(['plan', '--containerd-proxy-from-env', '--containerd-no-proxy', '.cluster.local'], env).containerdProxy?.no).toBe('.cluster.local');
  });

  it('normalises arch aliases', () => {
    expect(run(['plan', '--arch', 'aarch64']).arch).toBe('arm64');
    expect(run(['download', '--arch', 'amd64,arm64']).arches).toEqual(['amd64', 'arm64']);
  });

  it.each([
    [['plan', '--arch', 'riscv64'], /riscv64.*amd64 and arm64/],
    [['plan', '--bogus'], /Unknown flag --bogus/],
    [['plan', '--containerd', 'nope'], /not a version spec/],
    [['plan', '--containerd', 'none'], /cannot be skipped/],
    [['frobnicate'], /Unknown command/],
    [['plan', '--arch', 'amd64,arm64'], /one --arch/],
    [['status', '--containerd', '2.2.0'], /does not take --containerd/],
    [['plan', '--mirror', 'ftp://x'], /http/],
    [['plan', '--registry-mirror', 'docker.io'], /HOST=URL/],
    [['plan', '--registry-mirror', '..=https://x'], /registry host/],
    [['plan', '--registry-mirror', 'docker.io=ftp://x'], /http/],
    [['plan', '--containerd-proxy', 'ftp://p.example'], /--containerd-proxy: give a proxy URL/],
    [['plan', '--containerd-proxy', 'http://p.example/\nx'], /--containerd-proxy: give a proxy URL/],
    [['plan', '--containerd-no-proxy', 'localhost'], /needs a proxy to bypass/],
    [['plan', '--containerd-proxy', 'http://p.example', '--containerd-no-proxy', 'a b'], /--containerd-no-proxy: give a comma-separated list/],
    [['plan', '--containerd-proxy-from-env'], /neither HTTPS_PROXY nor HTTP_PROXY is set/],
    [['status', '--registries', '/r.yaml'], /does not take --registries/],
    [['plan', '--root', 'relative/dir'], /absolute/],
    [['plan', '--containerd', '2.2.111111111111111111111111'], /not a version spec/],
    [['plan', '--deadline', '0'], /--deadline "0": give a number of seconds/],
    [['plan', '--timeout', '1e12'], /--timeout "1e12": give a number of seconds/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => parseArgv(argv, {})).toThrow(UsageError);
    expect(() => parseArgv(argv, {})).toThrow(message);
  });

  it.each([
    ['--root', ['plan', '--root', `/${'a'.repeat(100_000)}`], /^--root is 100001 characters long; a value may have at most 4096\.$/],
    ['--root', ['plan', '--root', `/tmp/${'a'.repeat(256)}`], /--root has a part 256 bytes long; a file or folder name may have at most 255/],
    ['--prefix', ['plan', '--prefix', `/${'p'.repeat(5000)}`], /--prefix is 5001 characters long/],
    ['--cache-dir', ['plan', '--cache-dir', `/${'c'.repeat(300)}`], /--cache-dir has a part 300 bytes long/],
    ['--registry-mirror', ['plan', '--registry-mirror', `${'a'.repeat(100_000)}=https://m.example`], /--registry-mirror is 100018 characters long/],
    ['--registry-mirror', ['plan', '--registry-mirror', `${'a'.repeat(254)}=https://m.example`], /^--registry-mirror HOST is 254 characters long; a host name may have at most 253\.$/],
    ['--mirror', ['plan', '--mirror', `https://m.example/${'m'.repeat(3000)}`], /--mirror is 3018 characters long; a URL may have at most 2048/],
    ['--containerd', ['plan', '--containerd', `2.2.${'1'.repeat(296)}`], /^--containerd is 300 characters long; a version spec may have at most 128\.$/],
  ])('a too long %s is a usage error that says how long it may be', (_flag, argv, message) => {
    expect(() => parseArgv(argv, {})).toThrow(UsageError);
    expect(() => parseArgv(argv, {})).toThrow(message);
  });

  it('--deadline and NODE_PREP_DEADLINE in seconds, the flag wins', () => {
    expect(run(['install', '--deadline', '90']).deadlineMs).toBe(90_000);
    expect(run(['download', '--bundle', '/b'], { NODE_PREP_DEADLINE: '2.5' }).deadlineMs).toBe(2_500);
    expect(run(['versions', '--deadline', '7'], { NODE_PREP_DEADLINE: '2.5' }).deadlineMs).toBe(7_000);
    expect(run(['plan']).deadlineMs).toBeUndefined();
    expect(() => run(['plan'], { NODE_PREP_DEADLINE: 'soon' })).toThrow('NODE_PREP_DEADLINE "soon": give a number of seconds');
  });

  it('NODE_PREP_RETRY_DELAYS is bounded: at most 20 retries, each wait at most 10 minutes', () => {
    expect(run(['plan'], { NODE_PREP_RETRY_DELAYS: '0,100,2000' }).retryDelaysMs).toEqual([0, 100, 2000]);
    expect(() => run(['plan'], { NODE_PREP_RETRY_DELAYS: Array(21).fill('0').join(',') })).toThrow(/up to 20 delays/);
    expect(() => run(['plan'], { NODE_PREP_RETRY_DELAYS: '1e12' })).toThrow(/each at most 600000/);
  });

  it('no command at all is the help, as a usage error', () => {
    expect(parseArgv([], {})).toEqual({ kind: 'help', noCommand: true });
  });

  it('help and version', () => {
    expect(parseArgv(['--help'], {})).toEqual({ kind: 'help' });
    expect(parseArgv(['plan', '--help'], {})).toEqual({ kind: 'help', command: 'plan' });
    expect(parseArgv(['--version'], {})).toEqual({ kind: 'version' });
  });
});
