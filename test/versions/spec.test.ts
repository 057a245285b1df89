import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { parseVersionSpec } from '../../src/versions/spec.ts';

describe('parseVersionSpec', () => {
  it.each([
    [undefined, { kind: 'default' }],
    ['2.2.0', { kind: 'exact', version: '2.2.0' }],
    ['v2.2.0', { kind: 'exact', version: '2.2.0' }],
    ['^2.2', { kind: 'range', range: '^2.2' }],
    ['~2.1', { kind: 'range', range: '~2.1' }],
    ['2.2.x', { kind: 'range', range: '2.2.x' }],
    ['>=2.1 <2.3', { kind: 'range', range: '>=2.1 <2.3' }],
    ['2', { kind: 'range', range: '2' }],
    ['latest', { kind: 'latest' }],
    ['none', { kind: 'none' }],
  ])('%s -> %o', (raw, expected) => {
    expect(parseVersionSpec('containerd', raw)).toEqual(expected);
  });

  it.each(['foo', '2.2.0-beta.1', 'v', '', 'latest2', '2.2.0; rm -rf /', '^two'])('refuses %j as a usage error', (raw) => {
    expect(() => parseVersionSpec('containerd', raw)).toThrow(UsageError);
  });
});
