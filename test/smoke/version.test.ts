import { describe, expect, it } from 'vitest';
import { matchVersion, versionCore } from '../../src/smoke/version.ts';

describe('versionCore', () => {
  it.each([
    ['containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3', '1.6.20'],
    ['containerd github.com/containerd/containerd/v2 2.1.9+unknown ', '2.1.9'],
    ['containerd github.com/containerd/containerd v1.7.13 7c3aca7a610df76212171d200ca3811ff6096eb8', '1.7.13'],
    ['runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8', '1.1.5'],
    ['crictl version v1.36.0', '1.36.0'],
    ['nerdctl version 2.3.0 (node-prep test stand-in, not the real nerdctl)', '2.3.0'],
    ['containerd-shim-runc-v2:\n  Version:  2.1.9+unknown\n  Revision: \n', '2.1.9'],
    ['2.3.0-rc.1', '2.3.0'],
    ['v02.01.09', '2.1.9'],
    ['go version go1.22.1 linux/amd64', undefined],
    ['CNI bridge plugin version unknown', undefined],
    ['', undefined],
  ])('%j -> %s', (text, core) => {
    expect(versionCore(text)).toBe(core);
  });
});

describe('matchVersion compares x.y.z only', () => {
  it.each([
    ['1.6.20', 'containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3', 'match', '1.6.20~ds1'],
    ['v2.1.9', 'containerd github.com/containerd/containerd/v2 2.1.9+unknown ', 'match', '2.1.9+unknown'],
    ['1.1.5', 'runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1', 'match', '1.1.5+ds1'],
    ['1.36.0', 'crictl version v1.36.0', 'match', 'v1.36.0'],
    ['2.2.0', 'containerd github.com/containerd/containerd/v2 v2.2.0-rc.1 abc', 'match', 'v2.2.0-rc.1'],
    ['1.6.21', 'ctr github.com/containerd/containerd 1.6.20~ds1', 'mismatch', '1.6.20~ds1'],
    ['1.1.15', 'runc version 1.1.5', 'mismatch', '1.1.5'],
    ['2.1.9', 'no version here', 'unreadable', 'no version here'],
  ] as const)('%s in %j: %s', (expected, output, kind, raw) => {
    const m = matchVersion(expected, output);
    expect(m.kind).toBe(kind);
    expect(m.raw).toBe(raw);
  });
});
