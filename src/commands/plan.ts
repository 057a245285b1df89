import type { Context } from './context.ts';
import { detectCgroupDriver } from '../config/cgroup.ts';
import { explainRefusal, readDropIns } from '../config/dropins.ts';
import { detectArch } from '../arch.ts';
import { NodePrepError, UsageError } from '../errors.ts';
import { wantsLink } from '../apply/services.ts';
import { systemdIsPid1 } from '../node/init.ts';
import { archRun } from '../node/binfmt.ts';
import { NODE_PATHS, WANTS_LINK } from '../node/paths.ts';
import { decideContainerdBuild } from '../plan/libc.ts';
import { refuseSameHostDigests } from '../plan/artifact.ts';
import { buildPlan } from '../plan/build.ts';
import { blockedChanges, diffRemovals, planChanges, restartReason, type FileChange } from '../plan/changes.ts';
import { redactUrl } from '../net/redact.ts';
import { MAX_REGISTRIES_BYTES, parseRegistries, type RegistriesSpec } from '../config/registries.ts';
import { readRegularFile } from '../util/read-regular.ts';
import { readManifest } from '../state/manifest.ts';
import { renderPlan } from '../plan/render.ts';
import type { Plan } from '../plan/types.ts';
import type { OutsideTable } from '../versions/kubernetes.ts';
import { VERSION } from '../version.ts';

/** `withChanges`: compare with the disk (for `plan`); install makes the same comparison in its compare phase. */
export async function planCommand(ctx: Context, withChanges = false): Promise<{ plan: Plan; text: string }> {
  const o = ctx.options;
  const cgroup = await detectCgroupDriver({ root: o.root, explicit: o.cgroupDriver });
  const plan = await buildPlan(
    {
      specs: o.specs,
      kubernetes: o.kubernetes,
      arch: ctx.arch,
      archReason: ctx.archChoice.reason,
      root: o.root,
      prefix: o.prefix,
      mirror: redactUrl(o.mirror),
      registryMirrors: o.registryMirrors,
      registries: o.registries === undefined ? undefined : await readRegistries(o.registries),
      containerdProxy: o.containerdProxy,
      nodePrepVersion: VERSION,
      cgroup,
      containerdStatic: await decideContainerdBuild(o.containerdFlavor, o.root, ctx.arch),
      sandboxImage: o.sandboxImage,
      namespace: o.namespace,
      dropIns: await readDropIns(o.root),
      host: { systemdPid1: o.root === '/' && (await systemdIsPid1()), arch: detectArch(), runs: await archRun(ctx.arch) },
      start: o.start,
      smoke: o.smoke,
    },
    ctx,
  );
  // Install would refuse these before downloading; plan says so the same way.
  if (o.verify === 'strict') refuseSameHostDigests(plan.artifacts);
  if (o.verify === 'strict') refuseOutsideKubernetes(plan.kubernetes?.minor, plan.kubernetes?.outside ?? []);
  if (withChanges) {
    const manifest = await readManifest(o.root).catch(() => undefined);
    const changes = await planChanges(plan, manifest, { showPrivate: ctx.options.showPrivate });
    for (const f of plan.files) f.change = changes.get(f.path);
    plan.removals = diffRemovals(plan, manifest);
    if (plan.service.manage === 'wants-link') {
      const link = await wantsLink(plan.root);
      if (link.state === 'conflict') plan.service.blocked = blockedLink(link.why);
      else plan.service.link = { path: WANTS_LINK, target: NODE_PATHS.containerdUnit, change: link.state === 'enabled' ? 'same' : 'create' };
    }
    if (plan.service.manage === 'systemd' && plan.service.start) {
      const why = restartReason([...plan.files.filter((f) => f.change?.kind === 'create' || f.change?.kind === 'update'), ...plan.removals]);
      plan.service.restart = why === undefined ? { needed: false, why: 'nothing containerd runs changes' } : { needed: true, why };
    }
  }
  return { plan, text: renderPlan(plan) };
}

/** --registries FILE: read bounded (it may be any file the caller names), then parsed and checked. */
async function readRegistries(file: string): Promise<{ spec: RegistriesSpec; name: string }> {
  const read = await readRegularFile(file, { maxBytes: MAX_REGISTRIES_BYTES, followLinks: true });
  if (read.kind !== 'text') throw new UsageError(`--registries ${file}: cannot be read: ${read.why}.`, 'Give a registries.yaml file (docs/recipes/private-registry.md).');
  return { spec: parseRegistries(read.text, file), name: file };
}

/** `--verify strict`: a version outside the --kubernetes table is an error, before anything is downloaded. */
export function refuseOutsideKubernetes(minor: string | undefined, outside: OutsideTable[]): void {
  if (minor === undefined || outside.length === 0) return;
  throw new NodePrepError('KUBERNETES_SKEW', `--verify strict: ${outside.map((o) => o.message).join(' ')}`, {
    hint: `Leave ${outside.map((o) => `--${o.component}`).join(' and ')} out to get the set for Kubernetes ${minor}, or drop --verify strict to install it with a warning.`,
    fields: { kubernetes: minor, components: outside.map((o) => o.component) },
  });
}

/** Install stops here, before any download, when containerd would refuse to start. */
export function refuseBlockedPlan(plan: Plan): void {
  const refused = plan.containerd.refusedDropIns;
  if (refused.length === 0) return;
  const { message, hint } = explainRefusal(refused);
  throw new NodePrepError('DROP_IN_VERSION', message, { hint, fields: { dropIns: refused.map((r) => r.path) } });
}

/** Why the unit cannot be enabled as planned: something other than its link where the wants link goes. */
export async function serviceBlocked(plan: Plan): Promise<string | undefined> {
  if (plan.service.manage !== 'wants-link') return undefined;
  const link = await wantsLink(plan.root);
  return link.state === 'conflict' ? blockedLink(link.why) : undefined;
}

const blockedLink = (why: string | undefined) => `${why}: move it aside and run again`;

/** Install stops before any download on a change plan shows as blocked, with the same reason. */
export function refuseBlockedChanges(changes: Map<string, FileChange>, root: string, service: string | undefined): void {
  const blocked = [...blockedChanges(changes), ...(service ? [service] : [])];
  if (blocked.length === 0) return;
  throw new NodePrepError('INSTALL_TARGET', `Cannot install into ${root === '/' ? 'this machine' : root}: ${blocked.join('; ')}.`, {
    hint: '`node-prep plan` shows the same; nothing was downloaded or changed.',
    fields: { blocked },
  });
}

/** Whether plan exits 1: something install would refuse. */
export function planBlocked(plan: Plan): boolean {
  return plan.containerd.refusedDropIns.length > 0 || plan.files.some((f) => f.change?.kind === 'blocked') || plan.service.blocked !== undefined;
}
