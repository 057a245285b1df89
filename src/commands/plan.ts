import type { Context } from '../cli/context.ts';
import { buildPlan } from '../plan/build.ts';
import { renderPlan } from '../plan/render.ts';
import type { Plan } from '../plan/types.ts';
import { VERSION } from '../version.ts';

export async function planCommand(ctx: Context): Promise<{ plan: Plan; text: string }> {
  const o = ctx.options;
  const plan = await buildPlan(
    {
      specs: o.specs,
      arch: ctx.arch,
      root: o.root,
      prefix: o.prefix,
      mirror: o.mirror,
      registryMirrors: o.registryMirrors,
      nodePrepVersion: VERSION,
    },
    ctx,
  );
  return { plan, text: renderPlan(plan) };
}
