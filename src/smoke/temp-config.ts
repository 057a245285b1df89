/**
 * The config a temporary containerd runs with: the installed config's effective values (its
 * `config dump`, drop-ins merged), with everything that would touch the host moved into a temp dir,
 * and the one thing the build host cannot do (the systemd cgroup driver without systemd) adapted and
 * reported. The installed file is never changed.
 */
import path from 'node:path';
import type { TomlTable } from 'smol-toml';
import { inRoot } from '../plan/paths.ts';
import { criTables } from './config.ts';

export interface TempPaths {
  dir: string;
  socket: string;
  root: string;
  state: string;
  opt: string;
  /** runc state for CRI-created containers (runtimes.*.options.Root). */
  criRuncRoot: string;
  /** A private CNI conf dir: containerd creates its conf_dir (mode 0700) and watches it. */
  cniConfDir: string;
}

export function tempPaths(dir: string): TempPaths {
  return {
    dir,
    socket: path.join(dir, 'containerd.sock'),
    root: path.join(dir, 'root'),
    state: path.join(dir, 'state'),
    opt: path.join(dir, 'opt'),
    criRuncRoot: path.join(dir, 'runc-cri'),
    cniConfDir: path.join(dir, 'net.d'),
  };
}

export interface TemporaryConfig {
  config: TomlTable;
  /** Settings changed from the intended config because this host cannot do them, and why. */
  adaptations: string[];
  /** The isolation overrides, for the report (not adaptations: every temporary run has them). */
  overrides: string[];
  /** The node's CNI conf dir (inside the root): its network configs are copied to cniConfDir. */
  cniConfSource: string | undefined;
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
const child = (t: Table, key: string): Table => {
  if (!isTable(t[key])) t[key] = {};
  return t[key] as Table;
};

export interface TemporaryConfigInputs {
  /** The parsed `config dump` of the installed config. */
  effective: TomlTable;
  paths: TempPaths;
  /** --root: node paths in the config (runc, CNI, certs.d) are read inside it. */
  root: string;
  systemdRunning: boolean;
}

export function temporaryConfig(inputs: TemporaryConfigInputs): TemporaryConfig {
  const config = structuredClone(inputs.effective) as TomlTable;
  const { paths, root } = inputs;
  const adaptations: string[] = [];
  const here = (p: string) => (p.startsWith('/') ? inRoot(root, p) : p);

  // The dump already merged the drop-ins; importing them again would let a 1.x drop-in replace the
  // CRI section and undo the overrides below.
  config.imports = [];
  config.root = paths.root;
  config.state = paths.state;
  child(config, 'grpc').address = paths.socket;
  child(config, 'grpc').tcp_address = '';
  // Empty: derived from the grpc address (<socket>.ttrpc), so it stays in the temp dir.
  child(config, 'ttrpc').address = '';
  child(config, 'debug').address = '';
  child(config, 'metrics').address = '';
  const overrides = [`root, state and socket in ${paths.dir}`, 'no debug/metrics listeners'];

  const cgroup = child(config, 'cgroup');
  if (typeof cgroup.path === 'string' && cgroup.path !== '') {
    adaptations.push(`[cgroup] path = ${JSON.stringify(cgroup.path)} is not applied to the temporary containerd (it would move this host's containerd process into that cgroup); the installed config keeps it.`);
    cgroup.path = '';
  }

  const plugins = child(config, 'plugins');
  child(plugins, 'io.containerd.internal.v1.opt').path = paths.opt;
  overrides.push('opt path in it');
  if (isTable(plugins['io.containerd.nri.v1.nri'])) {
    // NRI listens on /var/run/nri/nri.sock; no NRI plugin is part of the smoke test.
    (plugins['io.containerd.nri.v1.nri'] as Table).disable = true;
    overrides.push('NRI off');
  }

  const { layout, runtime, images } = criTables(config);
  const runtimes = child(child(runtime, 'containerd'), 'runtimes');
  for (const [name, rt] of Object.entries(runtimes)) {
    if (!isTable(rt)) continue;
    const type = typeof rt.runtime_type === 'string' ? rt.runtime_type : '';
    if (type !== '' && !type.startsWith('io.containerd.runc.')) continue;
    const options = child(rt, 'options');
    options.Root = paths.criRuncRoot;
    if (typeof options.BinaryName === 'string' && options.BinaryName !== '') options.BinaryName = here(options.BinaryName);
    if (options.SystemdCgroup === true && !inputs.systemdRunning) {
      options.SystemdCgroup = false;
      adaptations.push(
        `SystemdCgroup = true → false for runtime ${name} in the temporary config: systemd is not running here (no /run/systemd/system), ` +
          'so runc cannot use the systemd cgroup driver; the installed config keeps SystemdCgroup = true.',
      );
    }
  }
  if (layout === '1.x' && runtime.systemd_cgroup === true && !inputs.systemdRunning) {
    runtime.systemd_cgroup = false;
    adaptations.push('systemd_cgroup = true → false in the temporary config (systemd is not running here); the installed config keeps it.');
  }
  if (Object.keys(runtimes).length > 0) overrides.push('CRI runc state (options.Root) in it');

  const cni = child(runtime, 'cni');
  const cniConfSource = typeof cni.conf_dir === 'string' && cni.conf_dir !== '' ? here(cni.conf_dir) : undefined;
  cni.conf_dir = paths.cniConfDir;
  if (typeof cni.bin_dir === 'string' && cni.bin_dir !== '') cni.bin_dir = here(cni.bin_dir);
  if (Array.isArray(cni.bin_dirs)) cni.bin_dirs = cni.bin_dirs.map((d) => here(String(d)));
  overrides.push("a private copy of the CNI conf_dir");

  const registry = child(images, 'registry');
  if (typeof registry.config_path === 'string' && registry.config_path !== '' && root !== '/') {
    registry.config_path = registry.config_path.split(':').map(here).join(':');
  }
  if (root !== '/') overrides.push(`runc, CNI and certs.d paths inside ${root}`);
  return { config, adaptations, overrides, cniConfSource };
}
