/**
 * `node-prep status`: what node-prep installed here (versions, files) and what changed since.
 */
import { lstat, readlink } from 'node:fs/promises';
import type { Context } from './context.ts';
import { COMPONENTS } from '../components/index.ts';
import type { ComponentName } from '../components/types.ts';
import { inRoot, NODE_PATHS } from '../node/paths.ts';
import { describeRepair, hasLeftovers, readJournal, repairInterrupted } from '../apply/journal.ts';
import { acquireLock, LockHeldError } from '../state/lock.ts';
import { diffFiles, observeFiles, readManifest, type Drift } from '../state/manifest.ts';

/** Drift as status reports it: the record's content drift, and a mode changed on a file that is as written. */
export type StatusDrift =
  | Drift
  | { kind: 'mode'; path: string; component: string; expectedMode: number; actualMode: number }
  /** A link node-prep made (the unit's wants link) that is gone or points elsewhere; `actual` null: gone. */
  | { kind: 'link'; path: string; component: string; expectedTarget: string; actualTarget: string | null };

export interface StatusReport {
  kind: 'status';
  installed: boolean;
  root: string;
  installedAt?: string;
  arch?: string;
  prefix?: string;
  components: Array<{ name: ComponentName; version: string; asset: string }>;
  files: number;
  drift: StatusDrift[];
  backups: Array<{ path: string; backupPath: string; reason: string }>;
  /** A killed install's journal was found: what was done about it. */
  interrupted?: string;
  /** The registries node-prep wrote hosts.toml files for (folder names under certs.d). */
  registryHosts?: string[];
}

/** ctr reads no certs.d unless told: the command that pulls as the CRI plugin does. */
export const CTR_HOSTS_DIR_HINT = `ctr reads these only when told: \`ctr -n k8s.io images pull --hosts-dir ${NODE_PATHS.certsDir} IMAGE\` (crictl pull and the kubelet use them as they are).`;

/** A killed install is finished before its record is read: under the lock, or said when that cannot be. */
async function repairFirst(root: string): Promise<string | undefined> {
  if (!(await hasLeftovers(root))) return undefined;
  let lock;
  try {
    lock = await acquireLock(root);
  } catch (err) {
    if (err instanceof LockHeldError) return 'an install is in progress; this status may show it half done';
    if (!(await readJournal(root))) return undefined;
    return `an install was interrupted; run node-prep install (as root) to finish it (${(err as Error).message})`;
  }
  try {
    const repaired = describeRepair(await repairInterrupted(root));
    if (repaired) return repaired;
    return lock.tookOverFrom ? `a run (pid ${lock.tookOverFrom.pid}) had died before changing anything; removed what it left` : undefined;
  } finally {
    await lock.release();
  }
}

export async function statusCommand(ctx: Context): Promise<{ report: StatusReport; text: string }> {
  const root = ctx.options.root;
  const interrupted = await repairFirst(root);
  const said = interrupted ? `Note: ${interrupted}.\n` : '';
  const m = await readManifest(root);
  if (!m) {
    const report: StatusReport = { kind: 'status', installed: false, root, components: [], files: 0, drift: [], backups: [], ...(interrupted ? { interrupted } : {}) };
    return { report, text: `${said}node-prep has installed nothing in ${root === '/' ? 'this machine' : root}.\n` };
  }
  // status is asked for explicitly: hash every file rather than trust size and mtime.
  const contentDrift = diffFiles(m, await observeFiles(root, Object.keys(m.files)));
  const drift: StatusDrift[] = [...contentDrift];
  const drifted = new Set(contentDrift.map((d) => d.path));
  for (const [p, f] of Object.entries(m.files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (drifted.has(p)) continue;
    const st = await lstat(inRoot(root, p)).catch(() => undefined);
    if (st?.isFile() && (st.mode & 0o7777) !== f.mode) drift.push({ kind: 'mode', path: p, component: f.component, expectedMode: f.mode, actualMode: st.mode & 0o7777 });
  }
  for (const [p, target] of Object.entries(m.links ?? {})) {
    const actual = await readlink(inRoot(root, p)).catch(() => null);
    if (actual !== target) drift.push({ kind: 'link', path: p, component: 'containerd', expectedTarget: target, actualTarget: actual });
  }
  const report: StatusReport = {
    kind: 'status',
    installed: true,
    root,
    installedAt: m.installedAt,
    arch: m.arch,
    prefix: m.prefix,
    components: Object.entries(m.components).map(([name, c]) => ({ name: name as ComponentName, version: c!.version, asset: c!.asset })),
    files: Object.keys(m.files).length,
    drift,
    backups: Object.entries(m.backups).map(([path, b]) => ({ path, backupPath: b.backupPath, reason: b.reason })),
    ...(interrupted ? { interrupted } : {}),
  };
  const hosts = Object.keys(m.files).flatMap((p) => (p.startsWith(`${NODE_PATHS.certsDir}/`) && p.endsWith('/hosts.toml') ? [p.split('/').at(-2)!] : [])).sort();
  if (hosts.length > 0) report.registryHosts = hosts;
  // An uninstall that kept changed files leaves a record of just those (and the originals they replaced).
  const leftovers = report.components.length === 0;
  const lines = leftovers
    ? [`node-prep was uninstalled from ${root === '/' ? 'this machine' : root}, but kept what had changed since it wrote it (\`node-prep uninstall --force\` removes it):`]
    : [`Installed by node-prep ${m.nodePrepVersion} on ${m.installedAt} (linux/${m.arch}, prefix ${m.prefix}):`];
  for (const c of report.components) lines.push(`  ${COMPONENTS[c.name].title.padEnd(12)} ${c.version}`);
  lines.push(`${report.files} files${Object.keys(m.links ?? {}).length > 0 ? ` and ${Object.keys(m.links ?? {}).length} link` : ''} recorded.`);
  if (drift.length === 0) lines.push('No drift: every file is as node-prep wrote it.');
  for (const d of drift) {
    const octal = (mode: number) => `0${mode.toString(8)}`;
    lines.push(
      d.kind === 'missing'
        ? `  missing  ${inRoot(root, d.path)}`
        : d.kind === 'mode'
          ? `  mode     ${inRoot(root, d.path)} (${octal(d.actualMode)}, written as ${octal(d.expectedMode)})`
          : d.kind === 'link'
            ? `  link     ${inRoot(root, d.path)} (${d.actualTarget === null ? 'gone' : `-> ${d.actualTarget}`}, made as -> ${d.expectedTarget})`
          : `  changed  ${inRoot(root, d.path)} (sha256 ${d.actual.slice(0, 12)}…, written as ${d.expected.slice(0, 12)}…)`,
    );
  }
  for (const b of report.backups) lines.push(`  backup of ${b.path} (${b.reason}) kept at ${inRoot(root, b.backupPath)}`);
  if (hosts.length > 0) lines.push(`Registry hosts in ${inRoot(root, NODE_PATHS.certsDir)}: ${hosts.join(', ')}.`, `  ${CTR_HOSTS_DIR_HINT}`);
  return { report, text: `${said}${lines.join('\n')}\n` };
}
