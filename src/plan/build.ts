import path from 'node:path';
import type { Arch } from '../arch.ts';
import { COMPONENT_NAMES, type ComponentName } from '../components/types.ts';
import type { CgroupDecision } from '../config/cgroup.ts';
import { refusedDropIns, type DropIn } from '../config/dropins.ts';
import { containerdConfigVersion, defaultSandboxImage, renderNodeFiles, type NodeFile } from '../config/render.ts';
import type { RegistryMirror } from '../config/types.ts';
import { NodePrepError } from '../errors.ts';
import { sha256Data } from '../install/hash.ts';
import { resolveVersion, type ResolvedVersion } from '../versions/resolve.ts';
import type { VersionSpec } from '../versions/spec.ts';
import { planArtifact, releaseOf, type ArtifactDeps } from './artifact.ts';
import { destinationDir } from './paths.ts';
import { inRoot } from '../node/paths.ts';
import type { Plan, PlannedArtifact, PlannedFile } from './types.ts';

export interface PlanInputs {
  specs: Record<ComponentName, VersionSpec>;
  arch: Arch;
  root: string;
  prefix: string;
  mirror: string;
  registryMirrors: RegistryMirror[];
  nodePrepVersion: string;
  cgroup: CgroupDecision;
  /** containerd's static build instead of the glibc-linked one, and why. */
  containerdStatic: { static: boolean; reason: string };
  sandboxImage: string | undefined;
  namespace: string;
  /** The drop-ins in the root's conf.d, which the config node-prep writes imports. */
  dropIns: DropIn[];
}

/** Resolve every component, describe every artifact, list every file: no change to the host. */
export async function buildPlan(inputs: PlanInputs, deps: ArtifactDeps): Promise<Plan> {
  const resolved = await resolveAll(inputs.specs, deps);
  const chosen = resolved.filter((r): r is ResolvedVersion => r !== undefined);
  const artifacts = await Promise.all(
    chosen.map((r) => planArtifact(r, inputs.arch, deps, r.component === 'containerd' ? { static: inputs.containerdStatic.static } : {})),
  );
  const containerdVersion = chosen.find((r) => r.component === 'containerd')!.version;
  const nodeFiles = await renderNodeFiles({
    containerdVersion,
    prefix: inputs.prefix,
    cgroupDriver: inputs.cgroup.driver,
    sandboxImage: inputs.sandboxImage,
    registryMirrors: inputs.registryMirrors,
    namespace: inputs.namespace,
    withCrictl: chosen.some((r) => r.component === 'crictl'),
    withNerdctl: chosen.some((r) => r.component === 'nerdctl'),
  });
  return {
    kind: 'plan',
    schemaVersion: 1,
    nodePrepVersion: inputs.nodePrepVersion,
    arch: inputs.arch,
    root: inputs.root,
    prefix: inputs.prefix,
    mirror: inputs.mirror,
    components: chosen.map((r) => ({ name: r.component, version: r.version, spec: r.spec, resolvedFrom: r.from })),
    skipped: COMPONENT_NAMES.filter((c) => !chosen.some((r) => r.component === c)),
    artifacts,
    containerd: {
      configVersion: containerdConfigVersion(containerdVersion),
      cgroupDriver: inputs.cgroup.driver,
      cgroupDriverReason: inputs.cgroup.reason,
      sandboxImage: inputs.sandboxImage ?? defaultSandboxImage(containerdVersion),
      build: inputs.containerdStatic.static ? 'static' : 'dynamic',
      buildReason: inputs.containerdStatic.reason,
      refusedDropIns: refusedDropIns(containerdVersion, containerdConfigVersion(containerdVersion), inputs.dropIns),
    },
    files: [...artifacts.flatMap((a) => binaryFiles(a, inputs)), ...nodeFiles.map((f) => configFile(f, inputs.root))],
  };
}

/** All components resolve at once; each resolution makes at most one request (or a paginated listing). */
export async function resolveAll(specs: Record<ComponentName, VersionSpec>, deps: Pick<ArtifactDeps, 'index' | 'defaults'>): Promise<Array<ResolvedVersion | undefined>> {
  const resolved = await Promise.all(COMPONENT_NAMES.map((c) => resolveVersion(c, specs[c], deps.index, deps.defaults)));
  for (const name of ['containerd', 'runc'] as const) {
    if (!resolved.some((r) => r?.component === name)) {
      throw new NodePrepError('MISSING_COMPONENT', `No ${name} version to install: the bundle holds none.`, {
        hint: `Make the bundle with ${name}, or pass --${name} VERSION.`,
      });
    }
  }
  return resolved;
}

function binaryFiles(artifact: PlannedArtifact, inputs: PlanInputs): PlannedFile[] {
  const release = releaseOf(artifact);
  return release.install.map((entry) => ({
    path: inRoot(inputs.root, path.posix.join(destinationDir(entry.dest, inputs.prefix), entry.name)),
    component: artifact.component,
    source: { kind: 'artifact', asset: artifact.name, member: entry.member || artifact.name },
    mode: entry.mode,
    optional: !entry.required,
  }));
}

function configFile(f: NodeFile, root: string): PlannedFile {
  return {
    path: inRoot(root, f.nodePath),
    component: f.component,
    source: { kind: 'config', what: f.what },
    mode: f.mode,
    optional: false,
    content: f.content,
    sha256: sha256Data(f.content),
  };
}
