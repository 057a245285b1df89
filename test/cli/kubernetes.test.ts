/**
 * `--kubernetes` end to end: the built CLI picks the set for a Kubernetes minor from pinned versions
 * (no network: the tripwire proxy fails any request), says what is outside it, and under --verify
 * strict refuses it before anything is downloaded.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

let tmp: string;
let root: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'np-k8s-'));
  root = path.join(tmp, 'img');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const plan = async (...args: string[]) => {
  const r = await runCli(['plan', '--root', root, '--arch', 'amd64', '--json', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};
const versionsOf = (p: { components: Array<{ name: string; version: string; resolvedFrom: string }> }) => p.components.map((c) => `${c.name}@${c.version} (${c.resolvedFrom})`);

describe('--kubernetes', () => {
  it('takes what `kubeadm version -o short` prints and picks the set for its minor, with its pause image', async () => {
    const p = await plan('--kubernetes', 'v1.35.4');
    expect(versionsOf(p)).toEqual(['containerd@2.2.7 (kubernetes)', 'runc@1.3.6 (kubernetes)', 'cni@1.9.1 (default)', 'nerdctl@2.3.0 (default)', 'crictl@1.35.0 (kubernetes)']);
    expect(p.components[0].spec).toBe('kubernetes 1.35');
    expect(p.containerd).toMatchObject({ configVersion: 3, sandboxImage: 'registry.k8s.io/pause:3.10.1' });
    expect(p.kubernetes).toEqual({ minor: '1.35', picked: ['containerd', 'runc', 'crictl'], containerdSupport: ['2.2.0', '2.1.5', '1.7.28'], sandboxImage: 'registry.k8s.io/pause:3.10.1', outside: [] });
    const config = p.files.find((f: { path: string }) => f.path === '/etc/containerd/config.toml');
    expect(config.content).toContain('sandbox = "registry.k8s.io/pause:3.10.1"');
  });

  it('lets component flags and --sandbox-image win; the rest still comes from the set', async () => {
    const p = await plan('--kubernetes', '1.36', '--containerd', '2.2.7', '--sandbox-image', 'mirror.example/pause:3.10.2');
    expect(versionsOf(p)).toEqual(['containerd@2.2.7 (exact)', 'runc@1.3.6 (kubernetes)', 'cni@1.9.1 (default)', 'nerdctl@2.3.0 (default)', 'crictl@1.36.0 (kubernetes)']);
    expect(p.containerd.sandboxImage).toBe('mirror.example/pause:3.10.2');
    expect(p.kubernetes.outside).toEqual([]);
  });

  it('warns about a containerd 1.x for Kubernetes 1.36 and a crictl two minors away, and installs them', async () => {
    const r = await runCli(['plan', '--root', root, '--arch', 'amd64', '--kubernetes', '1.36', '--containerd', '1.7.34', '--crictl', '1.34.0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Kubernetes 1.36:\n  containerd recommended: 2.3.0+, 2.2.0+; pause image registry.k8s.io/pause:3.10.2\n');
    expect(r.stdout).toMatch(/^ {2}warning: containerd 1\.7\.34 is not one containerd's RELEASES\.md recommends for Kubernetes 1\.36 \(2\.3\.0\+, 2\.2\.0\+\); the kubelet 1\.36 asks the runtime for its cgroup driver/m);
    expect(r.stdout).toMatch(/^ {2}warning: crictl 1\.34\.0 is more than 1 minor away from Kubernetes 1\.36/m);
    // runc follows the containerd asked for: the one its release tests with.
    expect(r.stdout).toMatch(/^ {2}runc +1\.3\.6 +\(for Kubernetes 1\.36\)$/m);
  });

  it('under --verify strict: plan, install and download refuse it before any download', async () => {
    const strict = ['--kubernetes', '1.36', '--containerd', '1.7.34', '--verify', 'strict', '--json'];
    const cache = path.join(tmp, 'cache');
    for (const args of [
      ['plan', '--root', root, '--arch', 'amd64', ...strict],
      ['install', '--root', root, '--arch', 'amd64', '--cache-dir', cache, ...strict],
      ['download', '--bundle', path.join(tmp, 'bundle'), '--arch', 'amd64', '--cache-dir', cache, ...strict],
    ]) {
      const r = await runCli(args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(1);
      const err = JSON.parse(r.stdout).error;
      expect(err.code).toBe('KUBERNETES_SKEW');
      expect(err.message).toMatch(/^--verify strict: containerd 1\.7\.34 is not one containerd's RELEASES\.md recommends for Kubernetes 1\.36/);
      expect(err.hint).toContain('Leave --containerd out to get the set for Kubernetes 1.36');
    }
    expect(existsSync(cache)).toBe(false);
    expect(existsSync(path.join(tmp, 'bundle'))).toBe(false);
    expect(existsSync(path.join(root, 'usr/local/bin/containerd'))).toBe(false);
  });

  it.each([
    ['1.3x', /is not a Kubernetes version/],
    ['1.31', /knows the component set for Kubernetes 1\.32 to 1\.36, not 1\.31/],
  ])('refuses --kubernetes %s as a usage error', async (value, message) => {
    const r = await runCli(['plan', '--root', root, '--kubernetes', value, '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.message).toMatch(message);
  });

  it('versions --kubernetes shows the set and where its facts come from', async () => {
    const r = await runCli(['versions', 'crictl', '--kubernetes', 'v1.36.2', '--mirror', 'http://127.0.0.1:9', '--github-api', 'http://127.0.0.1:9', '--json'], { env: { NODE_PREP_RETRY_DELAYS: '0' } });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.kubernetes).toMatchObject({ minor: '1.36', containerd: '2.3.4', runc: '1.4.3', crictl: '1.36.0', sandboxImage: 'registry.k8s.io/pause:3.10.2', containerdSupport: ['2.3.0', '2.2.0'] });
    expect(report.kubernetes.sources.containerdSupport).toMatch(/^containerd RELEASES\.md.*https:\/\/github\.com\/containerd\/containerd\/blob\/301026e5/);
    const text = await runCli(['versions', 'crictl', '--kubernetes', '1.34', '--mirror', 'http://127.0.0.1:9', '--github-api', 'http://127.0.0.1:9'], { env: { NODE_PREP_RETRY_DELAYS: '0' } });
    expect(text.stdout).toContain('Kubernetes 1.34 (--kubernetes 1.34)\n  containerd 2.0.11, runc 1.3.6, crictl 1.34.0, sandbox image registry.k8s.io/pause:3.10.1\n');
  });
});
