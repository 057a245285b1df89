import semver from 'semver';
import { pinnedVersions } from '../checksums/pins.ts';
import type { Context } from './context.ts';
import { COMPONENT_NAMES, COMPONENTS, DEFAULT_VERSIONS } from '../components/index.ts';
import { type ComponentName } from '../components/types.ts';
import { NodePrepError, UsageError } from '../errors.ts';
import { kubernetesSet, KUBERNETES_SOURCES } from '../versions/kubernetes.ts';

export interface VersionsReport {
  kind: 'versions';
  /** --kubernetes: the set node-prep picks for that minor. */
  kubernetes?: { minor: string; containerd: string; runc: string; crictl: string; sandboxImage: string; containerdSupport: string[]; sources: Record<string, string> } | undefined;
  components: Array<{
    name: ComponentName;
    default: string;
    pinned: string[];
    /** Releases the GitHub API lists, newest first; undefined when it could not be asked. */
    releases: string[] | undefined;
    error?: string | undefined;
  }>;
}

export async function versionsCommand(ctx: Context): Promise<{ report: VersionsReport; text: string }> {
  const wanted = ctx.options.positionals[0];
  if (wanted !== undefined && !(COMPONENT_NAMES as readonly string[]).includes(wanted)) {
    throw new UsageError(`Unknown component ${JSON.stringify(wanted)}.`, `Components: ${COMPONENT_NAMES.join(', ')}.`);
  }
  const names = wanted ? [wanted as ComponentName] : [...COMPONENT_NAMES];
  const components = await Promise.all(
    names.map(async (name) => {
      const pinned = pinnedVersions(name, [ctx.arch]).sort(semver.rcompare);
      try {
        const releases = (await ctx.github().listReleases(COMPONENTS[name].repo)).map((r) => r.version);
        return { name, default: DEFAULT_VERSIONS[name], pinned, releases };
      } catch (err) {
        const error = err instanceof NodePrepError ? err.message : String(err);
        return { name, default: DEFAULT_VERSIONS[name], pinned, releases: undefined, error };
      }
    }),
  );
  const lines: string[] = [];
  const set = ctx.options.kubernetes === undefined ? undefined : kubernetesSet(ctx.options.kubernetes);
  if (set) {
    lines.push(
      `Kubernetes ${set.minor} (--kubernetes ${set.minor})`,
      `  containerd ${set.containerd}, runc ${set.runc}, crictl ${set.crictl}, sandbox image ${set.sandboxImage}`,
      `  containerd recommended for it: ${set.containerdSupport.map((v) => `${v}+`).join(', ')}`,
      '  sources: src/data/kubernetes.json (`versions --kubernetes --json` lists them)',
      '',
    );
  }
  for (const c of components) {
    lines.push(`${COMPONENTS[c.name].title} (${COMPONENTS[c.name].repo})`);
    lines.push(`  default   ${c.default}`);
    lines.push(`  pinned    ${c.pinned.join(', ')}`);
    lines.push(c.releases ? `  released  ${c.releases.slice(0, 15).join(', ')}${c.releases.length > 15 ? ', ...' : ''}` : `  released  (not listed: ${c.error})`);
  }
  const kubernetes = set && { minor: set.minor, containerd: set.containerd, runc: set.runc, crictl: set.crictl, sandboxImage: set.sandboxImage, containerdSupport: set.containerdSupport, sources: KUBERNETES_SOURCES };
  return { report: { kind: 'versions', ...(kubernetes ? { kubernetes } : {}), components }, text: `${lines.join('\n')}\n` };
}
