/**
 * The config check: what `containerd config dump` says the installed config means (defaults, the
 * file, its drop-ins), held against what node-prep intended. Values, not text: 1.x silently ignores
 * a version 3 file and dumps its own defaults, so a clean exit code proves nothing.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify, type TomlTable } from 'smol-toml';
import { criDisabled, ensureTable, layoutOf, tableAt, valueAt, type ConfigLayout } from '../config/layout.ts';
import { inRoot } from '../node/paths.ts';
import type { Exec } from '../exec/exec.ts';
import { resolveInRoot } from '../node/resolve.ts';
import { readRegularFile } from '../util/read-regular.ts';
import { runTool } from './exec.ts';
import type { SmokeExpect } from './types.ts';

/** containerd's own config files are small; a larger one is not read. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** The CRI settings node-prep writes, as they are in effect. */
export interface CriSettings {
  /** The config version of the dump (2 for 1.x, 3 for 2.0–2.2, 4 for 2.3+). */
  configVersion: 2 | 3 | 4;
  criDisabled: boolean;
  defaultRuntime: string;
  systemdCgroup: boolean | undefined;
  sandboxImage: string | undefined;
  configPath: string | undefined;
  cniBinDirs: string[];
  cniConfDir: string | undefined;
}

type Table = Record<string, unknown>;
const table = (v: unknown): Table => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Table) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Where the CRI tables are, in the layout of the config's version. */
export function criTables(config: Table): { layout: ConfigLayout; runtime: Table; images: Table } {
  const layout = layoutOf(config);
  return { layout, runtime: ensureTable(config, layout.criRuntime), images: ensureTable(config, layout.criImages) };
}

/** Read the effective CRI settings from a parsed `config dump`. */
export function criSettings(config: Table): CriSettings {
  const layout = layoutOf(config);
  const runtime = tableAt(config, layout.criRuntime);
  const images = tableAt(config, layout.criImages);
  const containerd = table(runtime.containerd);
  const defaultRuntime = str(containerd.default_runtime_name) ?? 'runc';
  const options = table(table(table(containerd.runtimes)[defaultRuntime]).options);
  const cni = table(runtime.cni);
  const binDirs = Array.isArray(cni.bin_dirs) ? cni.bin_dirs.filter((d): d is string => typeof d === 'string') : [];
  const binDir = str(cni.bin_dir);
  return {
    configVersion: layout.version,
    criDisabled: criDisabled(config),
    defaultRuntime,
    systemdCgroup: typeof options.SystemdCgroup === 'boolean' ? options.SystemdCgroup : undefined,
    sandboxImage: str(valueAt(config, layout.sandboxImage)),
    configPath: str(table(images.registry).config_path),
    cniBinDirs: [...binDirs, ...(binDir ? [binDir] : [])],
    cniConfDir: str(cni.conf_dir),
  };
}

/** Each intended value that is not in effect, as `name: want X, effective Y`. Empty: all hold. */
export function configMismatches(s: CriSettings, expect: SmokeExpect): string[] {
  const out: string[] = [];
  const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
  if (s.criDisabled) out.push('the cri plugin is in disabled_plugins');
  if ((s.systemdCgroup ?? false) !== expect.systemdCgroup) {
    out.push(`SystemdCgroup (runtime ${s.defaultRuntime}): want ${expect.systemdCgroup}, effective ${show(s.systemdCgroup)}`);
  }
  const sandboxKey = s.configVersion === 2 ? 'sandbox_image' : 'pinned_images.sandbox';
  if (s.sandboxImage !== expect.sandboxImage) out.push(`${sandboxKey}: want ${show(expect.sandboxImage)}, effective ${show(s.sandboxImage)}`);
  if (s.configPath !== expect.configPath) out.push(`registry config_path: want ${show(expect.configPath)}, effective ${show(s.configPath)}`);
  if (!s.cniBinDirs.includes(expect.cniBinDir)) out.push(`cni bin dir: want ${show(expect.cniBinDir)}, effective ${show(s.cniBinDirs)}`);
  if (s.cniConfDir !== expect.cniConfDir) out.push(`cni conf_dir: want ${show(expect.cniConfDir)}, effective ${show(s.cniConfDir)}`);
  return out;
}

/**
 * What containerd logs when it loads a file of an older config version (the main file or a
 * drop-in): it converts it in memory at every start, "Configuration migrated from version %d, use
 * `containerd config migrate` to avoid migration" (cmd/containerd/server/config/config.go, 2.0+).
 * A node-prep node has nothing to migrate: the file it writes is in the current version.
 */
export function migrationWarning(warnings: readonly string[]): { fromVersion: number; line: string } | undefined {
  for (const line of warnings) {
    const m = /Configuration migrated from version (\d+)/.exec(line);
    if (m) return { fromVersion: Number(m[1]), line: line.trim() };
  }
  return undefined;
}

/** The failure for a migrated config: which file it can be and what to do. */
export function explainMigration(m: { fromVersion: number }, configFile: string, effectiveVersion: number): string {
  return `containerd migrates a version ${m.fromVersion} config in memory at every start ("Configuration migrated from version ${m.fromVersion}"): ` +
    `it reads version ${effectiveVersion}, so ${configFile} or a drop-in it imports is older. Rewrite that file as version ${effectiveVersion} ` +
    `(\`containerd config migrate\` prints it; it does not migrate drop-ins), or run \`node-prep install\` again for config.toml`;
}

export type DumpResult =
  | { kind: 'ok'; config: TomlTable; warnings: string[] }
  | { kind: 'failed'; why: string };

/**
 * `containerd --config FILE config dump` for the installed file. In an image root the file's
 * `imports` name node paths, so a copy with them moved into the root is dumped instead (this host's
 * /etc/containerd/conf.d must not leak in); every other value stays as installed.
 */
export async function dumpInstalledConfig(exec: Exec, opts: { containerd: string; root: string; configFile: string; scratchDir: string; timeoutMs: number }): Promise<DumpResult> {
  const installed = inRoot(opts.root, opts.configFile);
  // containerd 2.x dumps its defaults with exit 0 when --config names a missing file; a FIFO would
  // block a plain read. In an image root a link is followed inside the root only.
  const at = opts.root === '/' ? { kind: 'found' as const, path: opts.configFile } : await resolveInRoot(opts.root, opts.configFile);
  const read = at.kind === 'found' ? await readRegularFile(inRoot(opts.root, at.path), { maxBytes: MAX_CONFIG_BYTES, followLinks: opts.root === '/' }) : { kind: 'refused' as const, why: at.detail.replace(` at ${opts.configFile}`, '') };
  if (read.kind === 'refused') return { kind: 'failed', why: `cannot read ${installed} (${read.why})` };
  const text = read.text;
  let file = installed;
  if (opts.root !== '/') {
    let parsed: TomlTable;
    try {
      parsed = parse(text);
    } catch (err) {
      return { kind: 'failed', why: `${installed} is not valid TOML: ${(err as Error).message.split('\n')[0]}` };
    }
    if (Array.isArray(parsed.imports)) {
      parsed.imports = parsed.imports.map((p) => inRoot(opts.root, path.posix.resolve(path.posix.dirname(opts.configFile), String(p))));
    }
    file = path.join(opts.scratchDir, 'installed-config.toml');
    await writeFile(file, stringify(parsed));
  }
  return dumpConfig(exec, opts.containerd, file, opts.timeoutMs);
}

/** `containerd --config FILE config dump`: the config as this containerd reads it, in its own layout. */
export async function dumpConfig(exec: Exec, containerd: string, file: string, timeoutMs: number): Promise<DumpResult> {
  const run = await runTool(exec, containerd, ['--config', file, 'config', 'dump'], { timeoutMs });
  if (!run.ok) return { kind: 'failed', why: run.why };
  try {
    const warnings = run.stderr.split('\n').filter((l) => /level=(warning|error)/.test(l));
    return { kind: 'ok', config: parse(run.stdout), warnings };
  } catch (err) {
    return { kind: 'failed', why: `cannot parse the output of \`containerd config dump\`: ${(err as Error).message.split('\n')[0]}` };
  }
}
