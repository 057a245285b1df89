import type { Context } from '../cli/context.ts';
import { detectCgroupDriver } from '../config/cgroup.ts';
import { buildPlan } from '../plan/build.ts';
import { renderPlan } from '../plan/render.ts';
import type { Plan } from '../plan/types.ts';
import { VERSION } from '../version.ts';

export async function planCommand(ctx: Context): Promise<{ plan: Plan; text: string }> {
  const o = ctx.options;
  const cgroup = await detectCgroupDriver({ root: o.root, explicit: o.cgroupDriver });
  const plan = await buildPlan(
    {
      specs: o.specs,
      arch: ctx.arch,
      root: o.root,
      prefix: o.prefix,
      mirror: o.mirror,
      registryMirrors: o.registryMirrors,
      nodePrepVersion: VERSION,
      cgroup,
      sandboxImage: o.sandboxImage,
      namespace: o.namespace,
    },
    ctx,
  );
  return { plan, text: renderPlan(plan) };
}
