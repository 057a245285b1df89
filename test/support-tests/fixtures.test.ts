// The synthetic fixtures must match the upstream layouts and checksum formats
// (RELEASES.md §1-5); otherwise tests pass against a GitHub that does not exist.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import {
  cniRelease,
  containerdRelease,
  crictlRelease,
  defaultCatalogReleases,
  nerdctlRelease,
  REPOS,
  runcRelease,
  sha256,
  sha512,
  syntheticOutput,
  testSigner,
} from '../support/fixtures.ts';

interface TarEntry {
  path: string;
  mode: number;
  type: string;
}

async function listTar(buf: Buffer): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  const parser = new tar.Parser({
    onReadEntry: (e) => {
      out.push({ path: e.path, mode: (e.mode ?? 0) & 0o777, type: e.type });
      e.resume();
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', reject);
    parser.end(buf);
  });
  return out;
}

const buf = (b: Buffer | { path: string } | undefined) => b as Buffer;

describe('fixtures', () => {
  it('containerd 2.x: bin/ layout, .sha256sum line, static + attestation assets', async () => {
    const rel = await containerdRelease('2.3.4', ['amd64']);
    expect(rel.tag).toBe('v2.3.4');
    const name = 'containerd-2.3.4-linux-amd64.tar.gz';
    const entries = await listTar(buf(rel.assets[name]));
    expect(entries.map((e) => e.path)).toEqual(['bin/', 'bin/containerd', 'bin/containerd-shim-runc-v2', 'bin/containerd-stress', 'bin/ctr']);
    expect(entries.filter((e) => e.type === 'File').every((e) => e.mode === 0o755)).toBe(true);
    expect(buf(rel.assets[`${name}.sha256sum`]).toString()).toBe(`${sha256(buf(rel.assets[name]))}  ${name}\n`);
    expect(Object.keys(rel.assets)).toEqual(
      expect.arrayContaining(['containerd-static-2.3.4-linux-amd64.tar.gz', 'containerd-2.3.4-attestation.intoto.jsonl']),
    );
    // Deterministic: the same input gives byte-identical archives.
    expect(sha256(buf((await containerdRelease('2.3.4', ['amd64'])).assets[name]))).toBe(sha256(buf(rel.assets[name])));
  });

  it('containerd 1.7 also ships the v1 shims and no attestation', async () => {
    const rel = await containerdRelease('1.7.34', ['arm64'], { static: false });
    const paths = (await listTar(buf(rel.assets['containerd-1.7.34-linux-arm64.tar.gz']))).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['bin/containerd-shim', 'bin/containerd-shim-runc-v1', 'bin/containerd-shim-runc-v2']));
    expect(Object.keys(rel.assets).some((n) => n.includes('attestation') || n.includes('static'))).toBe(false);
  });

  it('runc: bare binaries, clear-signed runc.sha256sum and verifiable .asc files', async () => {
    const signer = await testSigner();
    expect(signer.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    const rel = await runcRelease('1.4.3', ['amd64', 'arm64'], { signer });
    const sums = buf(rel.assets['runc.sha256sum']).toString();
    expect(sums.startsWith('-----BEGIN PGP SIGNED MESSAGE-----\n')).toBe(true);
    const lines = sums.split('\n').filter((l) => /^[0-9a-f]{64}\s+\*?\S+$/.test(l));
    expect(lines).toEqual([
      `${sha256(buf(rel.assets['runc.amd64']))}  runc.amd64`,
      `${sha256(buf(rel.assets['runc.arm64']))}  runc.arm64`,
      `${sha256(buf(rel.assets['runc.tar.xz']))}  runc.tar.xz`,
    ]);
    const verificationKeys = await openpgp.readKey({ armoredKey: signer.publicKeyArmored });
    const clear = await openpgp.verify({ message: await openpgp.readCleartextMessage({ cleartextMessage: sums }), verificationKeys });
    await expect(clear.signatures[0]!.verified).resolves.toBe(true);
    const detached = await openpgp.verify({
      message: await openpgp.createMessage({ binary: buf(rel.assets['runc.arm64']) }),
      signature: await openpgp.readSignature({ armoredSignature: buf(rel.assets['runc.arm64.asc']).toString() }),
      verificationKeys,
    });
    await expect(detached.signatures[0]!.verified).resolves.toBe(true);
    expect(buf(rel.assets['runc.amd64'])).not.toEqual(buf(rel.assets['runc.arm64']));
  });

  it('nerdctl: flat archive, SHA256SUMS over nerdctl-*, detached SHA256SUMS.asc', async () => {
    const signer = await testSigner();
    const rel = await nerdctlRelease('2.3.0', ['amd64'], { signer });
    const name = 'nerdctl-2.3.0-linux-amd64.tar.gz';
    expect((await listTar(buf(rel.assets[name]))).map((e) => e.path)).toEqual(['nerdctl', 'containerd-rootless-setuptool.sh', 'containerd-rootless.sh']);
    const sums = buf(rel.assets.SHA256SUMS).toString();
    expect(sums).toContain(`${sha256(buf(rel.assets[name]))}  ${name}\n`);
    expect(sums).toContain('  nerdctl-full-2.3.0-linux-amd64.tar.gz\n');
    const v = await openpgp.verify({
      message: await openpgp.createMessage({ binary: buf(rel.assets.SHA256SUMS) }),
      signature: await openpgp.readSignature({ armoredSignature: buf(rel.assets['SHA256SUMS.asc']).toString() }),
      verificationKeys: signer.publicKey,
    });
    await expect(v.signatures[0]!.verified).resolves.toBe(true);
  });

  it('CNI: ./-prefixed flat tgz with .sha256 and .sha512 lines', async () => {
    const rel = await cniRelease('1.9.1', ['amd64']);
    const name = 'cni-plugins-linux-amd64-v1.9.1.tgz';
    const paths = (await listTar(buf(rel.assets[name]))).map((e) => e.path);
    expect(paths[0]).toBe('./');
    expect(paths).toEqual(expect.arrayContaining(['./bridge', './host-local', './loopback', './portmap', './README.md', './LICENSE']));
    expect(buf(rel.assets[`${name}.sha256`]).toString()).toBe(`${sha256(buf(rel.assets[name]))}  ${name}\n`);
    expect(buf(rel.assets[`${name}.sha512`]).toString()).toBe(`${sha512(buf(rel.assets[name]))}  ${name}\n`);
  });

  it('crictl: single-file archive, bare-hex .sha256, runnable script', async () => {
    const rel = await crictlRelease('1.36.0', ['amd64']);
    const name = 'crictl-v1.36.0-linux-amd64.tar.gz';
    expect(buf(rel.assets[`${name}.sha256`]).toString()).toBe(`${sha256(buf(rel.assets[name]))}\n`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'np-fx-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.tgz'), buf(rel.assets[name]));
      await tar.x({ file: path.join(dir, 'a.tgz'), cwd: dir });
      expect(fs.readdirSync(dir).sort()).toEqual(['a.tgz', 'crictl']);
      expect(execFileSync(path.join(dir, 'crictl'), ['--version']).toString().trim()).toBe(syntheticOutput('crictl', '1.36.0'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('defaultCatalogReleases has the documented versions and traps', async () => {
    const cat = await defaultCatalogReleases();
    const tags = (repo: string) => cat[repo]!.map((r) => r.tag).sort();
    expect(tags(REPOS.containerd)).toEqual(['api/v1.9.0', 'v1.7.34', 'v2.1.4', 'v2.1.9', 'v2.2.7', 'v2.3.4', 'v2.4.0', 'v2.4.0-beta.0']);
    expect(cat[REPOS.containerd]!.find((r) => r.tag === 'v2.4.0')!.draft).toBe(true);
    expect(cat[REPOS.containerd]!.find((r) => r.tag === 'v2.4.0-beta.0')!.prerelease).toBe(true);
    expect(tags(REPOS.runc)).toEqual(['v1.3.6', 'v1.4.3']);
    expect(tags(REPOS.nerdctl)).toEqual(['v2.2.0', 'v2.3.0']);
    expect(tags(REPOS.cni)).toEqual(['v1.8.0', 'v1.9.1']);
    expect(tags(REPOS.crictl)).toEqual(['v1.35.0', 'v1.36.0']);
    // Fresh containers per call, shared (immutable) buffers underneath.
    const again = await defaultCatalogReleases();
    again[REPOS.runc]!.pop();
    expect(cat[REPOS.runc]).toHaveLength(2);
  });
});
