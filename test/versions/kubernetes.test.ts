// The --kubernetes table held to the upstream tables it comes from, copied here as read
// (src/data/kubernetes.json names each source and commit): a row that drifts from them fails.
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { pinnedVersions } from '../../src/checksums/pins.ts';
import {
  containerdSupports,
  KUBERNETES_MINORS,
  kubernetesSet,
  kubernetesSpecs,
  outsideTable,
  parseKubernetesVersion,
  RUNC_TESTED_WITH,
} from '../../src/versions/kubernetes.ts';
import type { VersionSpec } from '../../src/versions/spec.ts';
import { UsageError } from '../../src/errors.ts';
import { forKubernetes } from '../../src/plan/build.ts';
import table from '../../src/data/kubernetes.json' with { type: 'json' };

/** containerd RELEASES.md "Kubernetes Support" at 301026e5. */
const RELEASES_MATRIX: Record<string, string> = {
  '1.32': '2.1.0+, 2.0.1+, 1.7.24+, 1.6.36+',
  '1.33': '2.1.0+, 2.0.4+, 1.7.24+, 1.6.36+',
  '1.34': '2.1.3+, 2.0.6+, 1.7.28+, 1.6.39+',
  '1.35': '2.2.0+, 2.1.5+, 1.7.28+',
  '1.36': '2.3.0+, 2.2.0+',
};
/** containerd RELEASES.md support table at 301026e5: lines past their end of life. */
const END_OF_LIFE = ['2.1'];
/** containerd script/setup/runc-version per tag. */
const RUNC_VERSION_FILE: Record<string, string> = { '2.3.4': '1.4.3', '2.2.7': '1.3.6', '2.1.9': '1.3.6', '2.0.11': '1.3.6', '1.7.34': '1.3.6' };
/** kubespray pod_infra_supported_versions (kubeadm's pause per minor). */
const KUBEADM_PAUSE: Record<string, string> = { '1.32': '3.10', '1.33': '3.10', '1.34': '3.10.1', '1.35': '3.10.1', '1.36': '3.10.2' };

const line = (v: string) => `${semver.major(v)}.${semver.minor(v)}`;
const BOTH = ['amd64', 'arm64'] as const;

describe('the --kubernetes table, row by row, against the upstream tables', () => {
  it('has the minors of the RELEASES.md matrix, newest first', () => {
    expect(KUBERNETES_MINORS).toEqual(['1.36', '1.35', '1.34', '1.33', '1.32']);
    expect(Object.keys(RELEASES_MATRIX).sort()).toEqual([...KUBERNETES_MINORS].sort());
  });

  describe.each(KUBERNETES_MINORS)('Kubernetes %s', (minor) => {
    const set = kubernetesSet(minor);

    it('lists the containerd versions RELEASES.md recommends', () => {
      expect(set.containerdSupport.map((v) => `${v}+`).join(', ')).toBe(RELEASES_MATRIX[minor]);
    });

    it('picks the newest listed containerd line not past its end of life, at its newest pinned patch', () => {
      const line0 = set.containerdSupport.map(line).find((l) => !END_OF_LIFE.includes(l))!;
      const pinned = pinnedVersions('containerd', BOTH).filter((v) => line(v) === line0).sort(semver.rcompare);
      expect(line(set.containerd)).toBe(line0);
      expect(set.containerd).toBe(pinned[0]);
      expect(containerdSupports(set, set.containerd)).toBe(true);
    });

    it('picks the runc that containerd tests with, pinned for amd64 and arm64', () => {
      expect(set.runc).toBe(RUNC_VERSION_FILE[set.containerd]);
      expect(pinnedVersions('runc', BOTH)).toContain(set.runc);
    });

    it('picks crictl of the same minor', () => {
      expect(line(set.crictl)).toBe(minor);
    });

    it("picks kubeadm's pause image", () => {
      expect(set.sandboxImage).toBe(`registry.k8s.io/pause:${KUBEADM_PAUSE[minor]}`);
    });

    it('is inside its own table', () => {
      expect(outsideTable(set, { containerd: set.containerd, runc: set.runc, crictl: set.crictl })).toEqual([]);
    });
  });

  it('says which lines are past their end of life as the support table does', () => {
    expect(table.endOfLife).toEqual(END_OF_LIFE);
  });

  it('knows the runc every picked containerd tests with, as the runc-version files say', () => {
    expect(RUNC_TESTED_WITH).toEqual(RUNC_VERSION_FILE);
  });

  it('carries pins for every pick but crictl 1.32.0 (verified against its published digest)', () => {
    const unpinned = KUBERNETES_MINORS.flatMap((m) => {
      const s = kubernetesSet(m);
      return (['containerd', 'runc', 'crictl'] as const).filter((c) => !pinnedVersions(c, BOTH).includes(s[c])).map((c) => `${c} ${s[c]}`);
    });
    expect([...new Set(unpinned)]).toEqual(['crictl 1.32.0']);
  });
});

describe('parseKubernetesVersion', () => {
  it.each([
    ['1.36', '1.36'],
    ['v1.36', '1.36'],
    ['v1.36.2', '1.36'],
    ['1.35.0', '1.35'],
    [' v1.32.11 ', '1.32'],
    ['01.034', '1.34'],
  ])('%j → %s', (raw, minor) => {
    expect(parseKubernetesVersion(raw)).toBe(minor);
  });

  it.each(['1', 'v1', '1.36.2-rc.0', 'latest', '', 'kubeadm v1.36.2', '1.36.x'])('refuses %j as a usage error', (raw) => {
    expect(() => parseKubernetesVersion(raw)).toThrow(UsageError);
    expect(() => parseKubernetesVersion(raw)).toThrow(/is not a Kubernetes version/);
  });

  it.each(['1.31', '1.37', 'v2.0.0'])('refuses %s, a minor the table does not know, naming the ones it does', (raw) => {
    expect(() => parseKubernetesVersion(raw)).toThrow(/knows the component set for Kubernetes 1\.32 to 1\.36, not/);
  });

  it('leaves an absent flag absent', () => {
    expect(parseKubernetesVersion(undefined)).toBeUndefined();
  });
});

describe('kubernetesSpecs', () => {
  const defaults: Record<string, VersionSpec> = { containerd: { kind: 'default' }, runc: { kind: 'default' }, cni: { kind: 'default' }, nerdctl: { kind: 'default' }, crictl: { kind: 'default' } };

  it('replaces the defaults of containerd, runc and crictl and keeps the others', () => {
    const { specs, picked } = kubernetesSpecs(defaults, kubernetesSet('1.35'));
    expect(specs).toEqual({ ...defaults, containerd: { kind: 'exact', version: '2.2.7' }, runc: { kind: 'exact', version: '1.3.6' }, crictl: { kind: 'exact', version: '1.35.0' } });
    expect(picked).toEqual(['containerd', 'runc', 'crictl']);
  });

  it('lets a component flag win, and gives an exact --containerd the runc it tests with', () => {
    const given: Record<string, VersionSpec> = { ...defaults, containerd: { kind: 'exact', version: '2.3.4' }, crictl: { kind: 'none' } };
    const { specs, picked } = kubernetesSpecs(given, kubernetesSet('1.35'));
    expect(specs.containerd).toEqual({ kind: 'exact', version: '2.3.4' });
    expect(specs.runc).toEqual({ kind: 'exact', version: '1.4.3' });
    expect(specs.crictl).toEqual({ kind: 'none' });
    expect(picked).toEqual(['runc']);
  });

  it("keeps the table's runc for a --containerd it has no runc-version file of", () => {
    const given: Record<string, VersionSpec> = { ...defaults, containerd: { kind: 'range', range: '~2.3' } };
    const { specs } = kubernetesSpecs(given, kubernetesSet('1.36'));
    expect(specs.runc).toEqual({ kind: 'exact', version: '1.4.3' });
  });
});

describe('forKubernetes', () => {
  const defaults: Record<string, VersionSpec> = { containerd: { kind: 'default' }, runc: { kind: 'default' } };

  it('replaces built-in defaults, and keeps the versions an offline bundle holds (they are judged instead)', () => {
    expect(forKubernetes(defaults, '1.36', undefined)).toMatchObject({ picked: ['containerd', 'runc'], specs: { containerd: { kind: 'exact', version: '2.3.4' } } });
    const bundled = forKubernetes(defaults, '1.36', { containerd: '2.1.9', runc: '1.3.6' });
    expect(bundled).toMatchObject({ picked: [], specs: defaults, set: { minor: '1.36' } });
    expect(forKubernetes(defaults, undefined, undefined)).toEqual({ specs: defaults, set: undefined, picked: [] });
  });
});

describe('outsideTable', () => {
  it.each([
    // Kubernetes, containerd, crictl, components outside the table
    ['1.36', '2.3.4', '1.36.0', []],
    ['1.36', '2.2.0', '1.35.0', []],
    ['1.36', '2.3.0-rc.1', '1.37.0', []],
    ['1.36', '2.1.9', '1.36.0', ['containerd']],
    ['1.36', '1.6.20', '1.36.0', ['containerd']],
    ['1.36', '2.3.4', '1.34.0', ['crictl']],
    ['1.35', '1.7.28', '1.35.0', []],
    ['1.35', '1.7.27', '1.35.0', ['containerd']],
    ['1.34', '1.6.39', '1.33.0', []],
    ['1.34', '1.6.20', '2.34.0', ['containerd', 'crictl']],
  ])('Kubernetes %s with containerd %s and crictl %s: %j', (minor, containerd, crictl, outside) => {
    expect(outsideTable(kubernetesSet(minor), { containerd, crictl }).map((o) => o.component)).toEqual(outside);
  });

  it('says why containerd 1.x cannot serve a kubelet 1.36, and what RELEASES.md recommends', () => {
    const [o] = outsideTable(kubernetesSet('1.36'), { containerd: '1.6.20' });
    expect(o!.message).toMatch(/^containerd 1\.6\.20 is not one containerd's RELEASES\.md recommends for Kubernetes 1\.36 \(2\.3\.0\+, 2\.2\.0\+\); the kubelet 1\.36 asks the runtime for its cgroup driver/);
    const [older] = outsideTable(kubernetesSet('1.35'), { containerd: '1.6.20' });
    expect(older!.message).toContain("so the kubelet's own cgroupDriver must match SystemdCgroup");
  });

  it('judges nothing it was not given (crictl none)', () => {
    expect(outsideTable(kubernetesSet('1.36'), { containerd: '2.3.4' })).toEqual([]);
  });
});
