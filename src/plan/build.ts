import type { Arch } from '../arch.ts';
import type { ArchRun } from '../node/binfmt.ts';
import { COMPONENT_NAMES, COMPONENTS, type ComponentName } from '../components/index.ts';
import type { CgroupDecision } from '../config/cgroup.ts';
import { refusedDropIns, type DropIn } from '../config/dropins.ts';
import { containerdConfigVersion, defaultSandboxImage, renderNodeFiles, type NodeConfigInputs, type NodeFile } from '../config/render.ts';
import type { RegistryMirror } from '../config/types.ts';
import { NodePrepError } from '../errors.ts';
import { sha256Data } from '../install/hash.ts';
import { kubernetesSet, kubernetesSpecs, outsideTable, type KubernetesSet } from '../versions/kubernetes.ts';
import { resolveVersion, type ResolvedVersion } from '../versions/resolve.ts';
import type { VersionSpec } from '../versions/spec.ts';
import { planArtifact, type ArtifactDeps } from './artifact.ts';
import { NODE_PATHS } from '../node/paths.ts';
import { plannedChecks } from './smoke-checks.ts';
import type { Plan, PlannedArtifact, PlannedFile, PlannedService, PlannedSmoke } from './types.ts';

export interface PlanInputs {
  specs: Record<ComponentName, VersionSpec>;
  /** --kubernetes: the minor whose component set replaces the built-in defaults. */
  kubernetes?: string | undefined;
  arch: Arch;
  archReason: string;
  root: string;
  prefix: string;
  mirror: string;
  registryMirrors: RegistryMirror[];
  registries?: NodeConfigInputs['registries'];
  containerdProxy?: NodeConfigInputs['containerdProxy'];
  nodePrepVersion: string;
  cgroup: CgroupDecision;
  /** containerd's static build instead of the glibc-linked one, and why. */
  containerdStatic: { static: boolean; reason: string };
  sandboxImage: string | undefined;
  namespace: string;
  /** The drop-ins in the root's conf.d, which the config node-prep writes imports. */
  dropIns: DropIn[];
  /** This machine: whether systemd is PID 1 (live host only), its arch, and how it runs binaries of the plan's arch. */
  host: { systemdPid1: boolean; arch: Arch; runs: ArchRun };
  /** --no-start, --skip-smoke. */
  start: boolean;
  smoke: boolean;
}

/** Resolve every component, describe every artifact, list every file: no change to the host. */
export async function buildPlan(inputs: PlanInputs, deps: ArtifactDeps): Promise<Plan> {
  const k8s = forKubernetes(inputs.specs, inputs.kubernetes, deps.defaults);
  const resolved = await resolveAll(k8s.specs, deps);
  const chosen = resolved.filter((r): r is ResolvedVersion => r !== undefined);
  const sandboxImage = inputs.sandboxImage ?? k8s.set?.sandboxImage;
  const artifacts = await Promise.all(
    chosen.map((r) => planArtifact(r, inputs.arch, inputs.prefix, deps, r.component === 'containerd' ? { static: inputs.containerdStatic.static } : {})),
  );
  const containerdVersion = chosen.find((r) => r.component === 'containerd')!.version;
  const nodeFiles = await renderNodeFiles({
    containerdVersion,
    prefix: inputs.prefix,
    cgroupDriver: inputs.cgroup.driver,
    sandboxImage,
    registryMirrors: inputs.registryMirrors,
    registries: inputs.registries,
    containerdProxy: inputs.containerdProxy,
    namespace: inputs.namespace,
    components: chosen.map((r) => r.component),
  });
  return {
    kind: 'plan',
    schemaVersion: 1,
    nodePrepVersion: inputs.nodePrepVersion,
    arch: inputs.arch,
    archReason: inputs.archReason,
    root: inputs.root,
    prefix: inputs.prefix,
    mirror: inputs.mirror,
    components: chosen.map((r) => (k8s.picked.includes(r.component)
      ? { name: r.component, version: r.version, spec: `kubernetes ${k8s.set!.minor}`, resolvedFrom: 'kubernetes' as const }
      : { name: r.component, version: r.version, spec: r.spec, resolvedFrom: r.from })),
    skipped: COMPONENT_NAMES.filter((c) => !chosen.some((r) => r.component === c)),
    artifacts,
    containerd: {
      configVersion: containerdConfigVersion(containerdVersion),
      cgroupDriver: inputs.cgroup.driver,
      cgroupDriverReason: inputs.cgroup.reason,
      sandboxImage: sandboxImage ?? defaultSandboxImage(containerdVersion),
      build: inputs.containerdStatic.static ? 'static' : 'dynamic',
      buildReason: inputs.containerdStatic.reason,
      refusedDropIns: refusedDropIns(containerdVersion, containerdConfigVersion(containerdVersion), inputs.dropIns),
    },
    ...(k8s.set ? { kubernetes: kubernetesSection(k8s.set, k8s.picked, chosen) } : {}),
    files: [...artifacts.flatMap(binaryFiles), ...nodeFiles.map(configFile)],
    ...serviceAndSmoke(inputs, chosen.map((r) => r.component)),
  };
}

/**
 * --kubernetes: the table's versions for the components left at their default. An offline bundle
 * holds the versions it holds: they are judged against the table, not replaced.
 */
export function forKubernetes<T extends Partial<Record<ComponentName, VersionSpec>>>(specs: T, minor: string | undefined, bundleDefaults: unknown): { specs: T; set: KubernetesSet | undefined; picked: ComponentName[] } {
  if (minor === undefined) return { specs, set: undefined, picked: [] };
  const set = kubernetesSet(minor);
  return bundleDefaults === undefined ? { ...kubernetesSpecs(specs, set), set } : { specs, set, picked: [] };
}

function kubernetesSection(set: KubernetesSet, picked: ComponentName[], chosen: ResolvedVersion[]): NonNullable<Plan['kubernetes']> {
  const versions = Object.fromEntries(chosen.map((r) => [r.component, r.version]));
  return { minor: set.minor, picked, containerdSupport: set.containerdSupport, sandboxImage: set.sandboxImage, outside: outsideTable(set, versions) };
}

/** All components resolve at once; each resolution makes at most one request (or a paginated listing). */
export async function resolveAll(specs: Record<ComponentName, VersionSpec>, deps: Pick<ArtifactDeps, 'index' | 'defaults'>): Promise<Array<ResolvedVersion | undefined>> {
  const resolved = await Promise.all(COMPONENT_NAMES.map((c) => resolveVersion(c, specs[c], deps.index, deps.defaults)));
  for (const name of COMPONENT_NAMES.filter((n) => COMPONENTS[n].required)) {
    if (!resolved.some((r) => r?.component === name)) {
      throw new NodePrepError('MISSING_COMPONENT', `No ${name} version to install: the bundle holds none.`, {
        hint: `Make the bundle with ${name}, or pass --${COMPONENTS[name].flag} VERSION.`,
      });
    }
  }
  return resolved;
}

/** The service decision and the smoke test that follows it: the same rules install applies. */
function serviceAndSmoke(inputs: PlanInputs, components: ComponentName[]): { service: PlannedService; smoke: PlannedSmoke } {
  const systemd = inputs.root === '/' && inputs.host.systemdPid1;
  const service: PlannedService = systemd
    ? { unit: NODE_PATHS.containerdUnit, manage: 'systemd', start: inputs.start, reason: inputs.start ? 'systemd runs this machine' : '--no-start: enabled for the next boot, not started' }
    : {
        unit: NODE_PATHS.containerdUnit,
        manage: 'wants-link',
        start: false,
        reason: inputs.root !== '/' ? 'an image root: systemd starts it when the image boots' : 'systemd is not PID 1 here, as in a container, chroot or image build: it starts at the next boot',
      };
  const mode = systemd && inputs.start ? 'service' : 'temporary';
  const smoke: PlannedSmoke = !inputs.smoke
    ? { mode: 'skipped', reason: '--skip-smoke', checks: [] }
    : inputs.host.runs.kind === 'cannot'
      ? { mode: 'skipped', reason: inputs.host.runs.why, checks: [] }
      : inputs.host.runs.kind === 'emulated'
      ? {
          mode: 'emulated',
          reason: `the binaries and the config only, under user-mode emulation (binfmt handler ${inputs.host.runs.handler.name}); containerd and the container are checked on an ${inputs.arch} machine`,
          checks: plannedChecks('emulated', components),
        }
      : {
          mode,
          reason: mode === 'service' ? 'against the containerd service' : 'a containerd of its own from the installed files, with a temporary root, state and sockets',
          checks: plannedChecks(mode, components),
        };
  return { service, smoke };
}

function binaryFiles(artifact: PlannedArtifact): PlannedFile[] {
  return artifact.install.map((entry) => ({
    path: entry.path,
    component: artifact.component,
    source: { kind: 'artifact', asset: artifact.name, member: entry.member || artifact.name },
    mode: entry.mode,
    optional: !entry.required,
  }));
}

function configFile(f: NodeFile): PlannedFile {
  return {
    path: f.nodePath,
    // The renderer names catalog components (or `node`) only.
    component: f.component as PlannedFile['component'],
    source: { kind: 'config', what: f.what },
    mode: f.mode,
    optional: false,
    content: f.content,
    sha256: sha256Data(f.content),
    ...(f.shown !== undefined ? { private: true as const, shown: f.shown } : {}),
  };
}
