/**
 * `--kubernetes MINOR`: the component set for a Kubernetes minor, from src/data/kubernetes.json (its
 * sources are named there), and how far a set of versions is from it. Pure: the table in, data out.
 */
import semver from 'semver';
import table from '../data/kubernetes.json' with { type: 'json' };
import type { ComponentName } from '../components/types.ts';
import { UsageError } from '../errors.ts';
import type { VersionSpec } from './spec.ts';

export interface KubernetesSet {
  /** `1.36`. */
  minor: string;
  /** The minimum versions RELEASES.md lists for it, newest line first (`2.3.0` means 2.3.0+). */
  containerdSupport: string[];
  containerd: string;
  runc: string;
  crictl: string;
  /** The pause image kubeadm uses for this minor. */
  sandboxImage: string;
}

type Row = { containerdSupport: string[]; containerd: string; runc: string; crictl: string; pause: string };
const ROWS = table.kubernetes as Record<string, Row>;

/** Where each fact of the table comes from (URLs and the commits read). */
export const KUBERNETES_SOURCES: Record<string, string> = { ...table._sources, pickRule: table.pickRule };
/** The minors the table knows, newest first. */
export const KUBERNETES_MINORS = Object.keys(ROWS).sort((a, b) => semver.rcompare(`${a}.0`, `${b}.0`));
/** The components the table picks; the others keep their own defaults. */
export const KUBERNETES_COMPONENTS = ['containerd', 'runc', 'crictl'] as const satisfies readonly ComponentName[];
/** Why containerd 1.x cannot serve a kubelet 1.36+ (src/data/kubernetes.json `_sources.cgroupDriverFromCri`). */
const CGROUP_DRIVER_FROM_CRI = 'https://kubernetes.io/docs/reference/command-line-tools-reference/feature-gates/KubeletCgroupDriverFromCRI/';
/** How far crictl may be from the Kubernetes minor before it is outside the table. */
export const CRICTL_SKEW = 1;

/**
 * `1.36`, `v1.36`, `1.36.2` or `v1.36.2` (what `kubeadm version -o short` prints) to the minor the
 * table knows it by. Anything else, or a minor not in the table, is a usage error.
 */
export function parseKubernetesVersion(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const m = /^v?(\d{1,3})\.(\d{1,3})(?:\.(\d{1,6}))?$/.exec(raw.trim());
  if (!m) {
    throw new UsageError(`--kubernetes ${JSON.stringify(raw.slice(0, 40))} is not a Kubernetes version.`, 'Give the minor (1.36) or a release (v1.36.2, as `kubeadm version -o short` prints it).');
  }
  const minor = `${Number(m[1])}.${Number(m[2])}`;
  if (!(minor in ROWS)) {
    throw new UsageError(
      `--kubernetes ${raw.trim()}: node-prep knows the component set for Kubernetes ${KUBERNETES_MINORS.at(-1)} to ${KUBERNETES_MINORS[0]}, not ${minor}.`,
      'Choose the versions with --containerd, --runc, --crictl and --sandbox-image instead, or leave --kubernetes out.',
    );
  }
  return minor;
}

export function kubernetesSet(minor: string): KubernetesSet {
  const row = ROWS[minor];
  if (row === undefined) throw new Error(`no Kubernetes ${minor} in src/data/kubernetes.json`);
  return { minor, containerdSupport: row.containerdSupport, containerd: row.containerd, runc: row.runc, crictl: row.crictl, sandboxImage: `registry.k8s.io/pause:${row.pause}` };
}

/** The runc each containerd release tests with (its script/setup/runc-version), where the table has it. */
export const RUNC_TESTED_WITH: Readonly<Record<string, string>> = table.runcTestedWith;

/**
 * The table's versions for every component the user left at its default; an explicit flag wins. runc
 * follows the containerd: an exact --containerd the table knows gets the runc it tests with.
 */
export function kubernetesSpecs<T extends Partial<Record<ComponentName, VersionSpec>>>(specs: T, set: KubernetesSet): { specs: T; picked: ComponentName[] } {
  const out = { ...specs };
  const picked: ComponentName[] = [];
  const given = specs.containerd?.kind === 'exact' ? specs.containerd.version : undefined;
  const versions = { ...set, runc: (given !== undefined ? RUNC_TESTED_WITH[given] : undefined) ?? set.runc };
  for (const name of KUBERNETES_COMPONENTS) {
    if (out[name]?.kind !== 'default') continue;
    (out as Record<string, VersionSpec>)[name] = { kind: 'exact', version: versions[name] };
    picked.push(name);
  }
  return { specs: out, picked };
}

export interface OutsideTable {
  component: 'containerd' | 'crictl';
  version: string;
  message: string;
}

/**
 * The versions of a set that are outside the table for this Kubernetes: a containerd RELEASES.md
 * does not recommend for it, a crictl more than one minor away. Empty: all within.
 */
export function outsideTable(set: KubernetesSet, versions: Partial<Record<ComponentName, string>>): OutsideTable[] {
  const out: OutsideTable[] = [];
  const containerd = versions.containerd;
  if (containerd !== undefined && !containerdSupports(set, containerd)) {
    const listed = set.containerdSupport.map((v) => `${v}+`).join(', ');
    const major = semver.coerce(containerd)?.major;
    const why = major === 1
      ? semver.gte(`${set.minor}.0`, '1.36.0')
        ? `; the kubelet ${set.minor} asks the runtime for its cgroup driver and no longer falls back to its own setting, and containerd answers that call from 2.0.0 (${CGROUP_DRIVER_FROM_CRI})`
        : `; containerd 1.x does not tell the kubelet its cgroup driver (the RuntimeConfig call, from containerd 2.0.0), so the kubelet's own cgroupDriver must match SystemdCgroup`
      : '';
    out.push({ component: 'containerd', version: containerd, message: `containerd ${containerd} is not one containerd's RELEASES.md recommends for Kubernetes ${set.minor} (${listed})${why}.` });
  }
  const crictl = versions.crictl;
  const c = crictl === undefined ? null : semver.coerce(crictl);
  const k = semver.coerce(set.minor)!;
  if (crictl !== undefined && c !== null && (c.major !== k.major || Math.abs(c.minor - k.minor) > CRICTL_SKEW)) {
    out.push({ component: 'crictl', version: crictl, message: `crictl ${crictl} is more than ${CRICTL_SKEW} minor away from Kubernetes ${set.minor}: cri-tools makes crictl ${set.minor} for it (${set.crictl}).` });
  }
  return out;
}

/** Whether RELEASES.md lists this containerd for the set's Kubernetes: its line, at or above the listed patch. */
export function containerdSupports(set: KubernetesSet, version: string): boolean {
  const v = semver.coerce(version);
  if (v === null) return false;
  return set.containerdSupport.some((min) => {
    const m = semver.parse(min)!;
    return v.major === m.major && v.minor === m.minor && semver.gte(v, m);
  });
}
