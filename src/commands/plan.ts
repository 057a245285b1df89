import type { Context } from './context.ts';
import { detectCgroupDriver } from '../config/cgroup.ts';
import { explainRefusal, readDropIns } from '../config/dropins.ts';
import { NodePrepError } from '../errors.ts';
import { decideContainerdBuild } from '../plan/libc.ts';
import { buildPlan } from '../plan/build.ts';
import { planChanges } from '../plan/changes.ts';
import { redactUrl } from '../net/redact.ts';
import { readManifest } from '../state/manifest.ts';
import { renderPlan } from '../plan/render.ts';
import type { Plan } from '../plan/types.ts';
import { VERSION } from '../version.ts';

/** `withChanges`: compare with the disk (for `plan`); install does its own, finer comparison. */
export async function planCommand(ctx: Context, withChanges = false): Promise<{ plan: Plan; text: string }> {
  const o = ctx.options;
  const cgroup = await detectCgroupDriver({ root: o.root, explicit: o.cgroupDriver });
  const plan = await buildPlan(
    {
      specs: o.specs,
      arch: ctx.arch,
      root: o.root,
      prefix: o.prefix,
      mirror: redactUrl(o.mirror),
      registryMirrors: o.registryMirrors,
      nodePrepVersion: VERSION,
      cgroup,
      containerdStatic: await decideContainerdBuild(o.containerdFlavor, o.root, ctx.arch),
      sandboxImage: o.sandboxImage,
      namespace: o.namespace,
      dropIns: await readDropIns(o.root),
    },
    ctx,
  );
  if (withChanges) {
    const changes = await planChanges(plan, await readManifest(o.root).catch(() => undefined));
    for (const f of plan.files) f.change = changes.get(f.path);
  }
  return { plan, text: renderPlan(plan) };
}

/** Install stops here, before any download, when containerd would refuse to start. */
export function refuseBlockedPlan(plan: Plan): void {
  const refused = plan.containerd.refusedDropIns;
  if (refused.length === 0) return;
  const { message, hint } = explainRefusal(refused);
  throw new NodePrepError('DROP_IN_VERSION', message, { hint, fields: { dropIns: refused.map((r) => r.path) } });
}
