import path from 'node:path';
import type { Arch } from '../arch.ts';
import { COMPONENTS } from '../components/index.ts';
import { COMPONENT_NAMES, type ComponentName } from '../components/types.ts';
import type { RegistryMirror } from '../config/types.ts';
import { NodePrepError } from '../errors.ts';
import { resolveVersion, type ResolvedVersion } from '../versions/resolve.ts';
import type { VersionSpec } from '../versions/spec.ts';
import { planArtifact, type ArtifactDeps } from './artifact.ts';
import { NODE_PATHS, destinationDir, inRoot } from './paths.ts';
import type { Plan, PlannedArtifact, PlannedFile } from './types.ts';

export interface PlanInputs {
  specs: Record<ComponentName, VersionSpec>;
  arch: Arch;
  root: string;
  prefix: string;
  mirror: string;
  registryMirrors: RegistryMirror[];
  nodePrepVersion: string;
}

/** Resolve every component, describe every artifact, list every file: no change to the host. */
export async function buildPlan(inputs: PlanInputs, deps: ArtifactDeps): Promise<Plan> {
  const resolved = await resolveAll(inputs.specs, deps);
  const chosen = resolved.filter((r): r is ResolvedVersion => r !== undefined);
  const artifacts = await Promise.all(chosen.map((r) => planArtifact(r, inputs.arch, deps)));
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
    files: [...artifacts.flatMap((a) => binaryFiles(a, inputs)), ...configFiles(chosen, inputs)],
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
  const release = COMPONENTS[artifact.component].release(artifact.version, artifact.arch);
  return release.install.map((entry) => ({
    path: inRoot(inputs.root, path.posix.join(destinationDir(entry.dest, inputs.prefix), entry.name)),
    component: artifact.component,
    source: { kind: 'artifact', asset: artifact.name, member: entry.member || artifact.name },
    mode: entry.mode,
    optional: !entry.required,
  }));
}

function configFiles(chosen: ResolvedVersion[], inputs: PlanInputs): PlannedFile[] {
  const has = (c: ComponentName) => chosen.some((r) => r.component === c);
  const file = (nodePath: string, component: PlannedFile['component'], what: string): PlannedFile => ({
    path: inRoot(inputs.root, nodePath),
    component,
    source: { kind: 'config', what },
    mode: 0o644,
    optional: false,
  });
  const out: PlannedFile[] = [
    file(NODE_PATHS.containerdConfig, 'containerd', 'containerd config (CRI plugin enabled)'),
    file(NODE_PATHS.containerdUnit, 'containerd', 'containerd systemd unit'),
    ...inputs.registryMirrors.map((m) => file(`${NODE_PATHS.certsDir}/${m.host}/hosts.toml`, 'containerd', `registry mirror for ${m.host}`)),
  ];
  if (has('crictl')) out.push(file(NODE_PATHS.crictlConfig, 'crictl', 'crictl runtime endpoint'));
  if (has('nerdctl')) out.push(file(NODE_PATHS.nerdctlConfig, 'nerdctl', 'nerdctl address, namespace and CNI paths'));
  out.push(file(NODE_PATHS.modulesLoad, 'node', 'kernel modules: overlay, br_netfilter'));
  out.push(file(NODE_PATHS.sysctl, 'node', 'sysctls: ip_forward, bridge-nf-call-iptables/ip6tables'));
  return out;
}
