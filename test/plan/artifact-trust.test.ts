/**
 * Where an unpinned digest's trust comes from: the download host alone (a mirror), github.com, or
 * GitHub's own API cross-checking what a mirror serves.
 */
import { describe, expect, it } from 'vitest';
import { PinSet } from '../../src/checksums/pins.ts';
import { GitHub } from '../../src/net/github.ts';
import type { Http } from '../../src/net/http.ts';
import { planArtifact, refuseSameHostDigests } from '../../src/plan/artifact.ts';
import type { ResolvedVersion } from '../../src/versions/resolve.ts';

const HEX = 'ab'.repeat(32);
const ASSET = 'containerd-2.2.5-linux-amd64.tar.gz';

async function plan(downloadBase: string, apiBase: string, apiDigest?: string) {
  const github = new GitHub(undefined as unknown as Http, downloadBase, apiBase);
  const resolved: ResolvedVersion = {
    component: 'containerd',
    version: '2.2.5',
    spec: '^2.2',
    from: 'range',
    ...(apiDigest ? { release: { tag: 'v2.2.5', version: '2.2.5', assets: [{ name: ASSET, sha256: apiDigest }] } } : {}),
  };
  return planArtifact(resolved, 'amd64', '/usr/local', {
    github: () => github,
    index: () => github,
    pins: new PinSet(),
    fetchText: async () => `${HEX}  ${ASSET}\n`,
  });
}

describe('same-host digests', () => {
  it('a mirror serving both digest and bytes is flagged with its host', async () => {
    const a = await plan('http://mirror.example:8080/gh', 'http://mirror.example:8080/api');
    expect(a.digestSource).toEqual({ kind: 'published', url: `http://mirror.example:8080/gh/containerd/containerd/releases/download/v2.2.5/${ASSET}.sha256sum`, sameHost: 'mirror.example:8080' });
    expect(() => refuseSameHostDigests([a])).toThrow(/--verify strict: the sha256 of containerd-2\.2\.5-linux-amd64\.tar\.gz \(containerd 2\.2\.5\) comes from mirror\.example:8080/);
  });

  it('a mirror whose digest agrees with a mirrored API is still flagged: the same party answers both', async () => {
    const a = await plan('https://mirror.example/gh', 'https://mirror.example/api', HEX);
    expect(a.digestSource).toMatchObject({ alsoApiDigest: true, sameHost: 'mirror.example' });
  });

  it("a mirror whose digest agrees with GitHub's own API is not flagged", async () => {
    const a = await plan('https://mirror.example/gh', 'https://api.github.com', HEX);
    expect(a.digestSource).toEqual({ kind: 'published', url: `https://mirror.example/gh/containerd/containerd/releases/download/v2.2.5/${ASSET}.sha256sum`, alsoApiDigest: true });
    expect(() => refuseSameHostDigests([a])).not.toThrow();
  });

  it('github.com itself is not flagged', async () => {
    const a = await plan('https://github.com', 'https://api.github.com');
    expect(a.digestSource).not.toHaveProperty('sameHost');
  });

  it('http://github.com is a host like any other (its bytes are not GitHub-authenticated)', async () => {
    const a = await plan('http://github.com', 'https://api.github.com');
    expect(a.digestSource).toMatchObject({ sameHost: 'github.com' });
  });

  it('a pinned digest is never flagged, whatever the mirror', async () => {
    const github = new GitHub(undefined as unknown as Http, 'http://mirror.example', 'http://mirror.example/api');
    const pins = new PinSet(`${HEX}  ${ASSET}\n`, 'pins.txt');
    const a = await planArtifact({ component: 'containerd', version: '2.2.5', spec: '2.2.5', from: 'exact' }, 'amd64', '/usr/local', {
      github: () => github,
      index: () => github,
      pins,
      fetchText: async () => {
        throw new Error('a pinned digest needs no checksum file');
      },
    });
    expect(a.digestSource).toEqual({ kind: 'pinned', from: 'checksums-file', file: 'pins.txt' });
    expect(() => refuseSameHostDigests([a])).not.toThrow();
  });
});
