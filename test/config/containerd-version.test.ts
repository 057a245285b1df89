import { describe, expect, it } from 'vitest';
import { containerdLine, containerdUnitVariant, usesCniBinDirs } from '../../src/config/containerd-version.ts';
import { containerdConfigVersion, defaultSandboxImage } from '../../src/config/render.ts';

describe('per containerd version', () => {
  it.each([
    // version, config version, pause tag, CNI bin_dirs list
    ['1.6.20', 2, '3.8', false],
    ['1.7.34', 2, '3.8', false],
    ['v1.7.0', 2, '3.8', false],
    ['2.0.0', 3, '3.10', false],
    ['2.0.11', 3, '3.10', false],
    ['2.1.0', 3, '3.10', true],
    ['2.1.9+ds1', 3, '3.10', true],
    ['2.2.0', 3, '3.10.1', true],
    ['2.2.7', 3, '3.10.1', true],
    ['2.3.0-rc.1', 4, '3.10.2', true],
    ['2.3.4', 4, '3.10.2', true],
    ['2.4.0', 4, '3.10.2', true],
  ] as const)('%s → version %i, pause:%s, bin_dirs %s', (version, configVersion, pause, binDirs) => {
    expect(containerdConfigVersion(version)).toBe(configVersion);
    expect(defaultSandboxImage(version)).toBe(`registry.k8s.io/pause:${pause}`);
    expect(usesCniBinDirs(version)).toBe(binDirs);
  });

  it.each(['1.5.18', '0.2.0', 'latest', ''])('refuses %j', (version) => {
    expect(() => containerdLine(version)).toThrow(/cannot configure containerd/);
  });

  it.each([
    ['1.7.34', 'network.target local-fs.target dbus.service', true],
    ['2.0.6', 'network.target local-fs.target dbus.service', false],
    ['2.1.0', 'network.target dbus.service', false],
    ['2.3.4', 'network.target dbus.service', false],
  ] as const)('unit for %s: After=%s, LimitNOFILE %s', (version, after, limitNofile) => {
    expect(containerdUnitVariant(version)).toEqual({ after, limitNofile });
  });
});
