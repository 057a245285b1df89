import { describe, expect, it } from 'vitest';
import { nearestVersions } from '../../src/versions/resolve.ts';

const released = ['2.3.4', '2.3.3', '2.2.7', '2.1.9', '2.1.4', '2.0.11', '1.7.34'];

describe('nearestVersions', () => {
  it.each([
    ['9.9.9', ['2.3.4', '2.3.3', '2.2.7', '2.1.9']],
    ['2.1.5', ['2.2.7', '2.1.9', '2.1.4', '2.0.11']],
    ['0.1.0', ['2.1.9', '2.1.4', '2.0.11', '1.7.34']],
    ['^3', ['2.3.4', '2.3.3', '2.2.7', '2.1.9']],
  ])('for %s names %o', (wanted, expected) => {
    expect(nearestVersions(released, wanted)).toEqual(expected);
  });

  it('names nothing when nothing is released', () => {
    expect(nearestVersions([], '1.0.0')).toEqual([]);
  });
});
