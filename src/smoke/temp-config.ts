/**
 * The config a temporary containerd runs with: the installed config's effective values (its
 * `config dump`, drop-ins merged), with everything that would touch the host moved into a temp dir
 * (in the layout of the dump's config version: 2.3's version 4 keeps the listeners in plugin
 * sections), and the one thing the build host cannot do (the systemd cgroup driver without systemd)
 * adapted and reported. The installed file is never changed. What the daemon then really listens
 * on is observed after it starts (listeners.ts), not assumed from this.
 */
import path from 'node:path';
import type { TomlTable } from 'smol-toml';
import {
  DEFAULT_SHIM_SOCKET_DIR,
  deleteValue,
  ensureTable,
  layoutOf,
  MAX_SHIM_SOCKET_DIR,
  setValue,
  SHIM_SOCKET_DIR,
  tableAt,
  valueAt,
} from '../config/layout.ts';
import { inRoot } from '../node/paths.ts';
import { criTables } from './config.ts';

export interface TempPaths {
  dir: string;
  socket: string;
  /** The ttrpc socket, named as containerd derives it from the gRPC one up to config version 3. */
  ttrpcSocket: string;
  root: string;
  state: string;
  opt: string;
  /** containerd's `temp` dir, and CDI spec dirs nobody writes. */
  tmp: string;
  cdi: string;
  /** Shim sockets, where the containerd has the setting (2.3+). */
  shimSockets: string;
  /** runc state for CRI-created containers (runtimes.*.options.Root). */
  criRuncRoot: string;
  /** A private CNI conf dir: containerd creates its conf_dir (mode 0700) and watches it. */
  cniConfDir: string;
}

export function tempPaths(dir: string): TempPaths {
  const socket = path.join(dir, 'containerd.sock');
  return {
    dir,
    socket,
    ttrpcSocket: `${socket}.ttrpc`,
    root: path.join(dir, 'root'),
    state: path.join(dir, 'state'),
    opt: path.join(dir, 'opt'),
    tmp: path.join(dir, 'tmp'),
    cdi: path.join(dir, 'cdi'),
    shimSockets: path.join(dir, 's'),
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
  /** Where the shims put their sockets: the scratch dir where this containerd can be told so. */
  shimSocketDir: string;
  /** Why the temporary containerd cannot be started with these paths (a path too long for a socket). */
  refusal: string | undefined;
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
const child = (t: Table, key: string): Table => ensureTable(t, [key]);
/** A unix socket path must fit sockaddr_un: 107 bytes and a NUL. */
const MAX_SOCKET_PATH = 107;

export interface TemporaryConfigInputs {
  /** The parsed `config dump` of the installed config. */
  effective: TomlTable;
  paths: TempPaths;
  /** --root: node paths in the config (runc, CNI, certs.d) are read inside it. */
  root: string;
  systemdRunning: boolean;
  /**
   * Under --root: the private, verified copy of a binary node-prep installed (by node path). A
   * runtime's BinaryName is run from its copy; one that names anything else is not run at all.
   */
  binaryCopy?: (nodePath: string) => string | undefined;
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
  if ('temp' in config) config.temp = paths.tmp;
  // containerd 1.x loads Go plugins from plugin_dir; nothing of the smoke test needs one.
  if (typeof config.plugin_dir === 'string' && config.plugin_dir !== '') config.plugin_dir = '';
  if (isTable(config.proxy_plugins) && Object.keys(config.proxy_plugins).length > 0) {
    adaptations.push(`[proxy_plugins] ${Object.keys(config.proxy_plugins).join(', ')} not loaded in the temporary containerd: they are daemons of this host with their own state; the installed config keeps them.`);
    config.proxy_plugins = {};
  }
  const overrides = [`root, state, temp dir and sockets in ${paths.dir}`];
  let refusal: string | undefined;
  if (paths.ttrpcSocket.length > MAX_SOCKET_PATH) refusal = `the socket path ${paths.ttrpcSocket} is too long for a unix socket: set TMPDIR to a shorter dir`;

  // Every listener, in the layout of the dump (version 4 moved them into plugin sections and ignores
  // the top-level tables). ttrpc is set, not derived: version 4 no longer derives it from grpc.
  const layout = layoutOf(config);
  const l = layout.listeners;
  for (const ignored of layout.ignoredListenerKeys) deleteValue(config, ignored);
  setValue(config, l.grpc, paths.socket);
  setValue(config, l.ttrpc, paths.ttrpcSocket);
  for (const off of [l.grpcTcp, l.debug, l.metrics]) setValue(config, off, '');
  const criService = tableAt(config, layout.criService);
  if (Object.keys(criService).length > 0) {
    // A fixed stream_server_port (10010 in old configs) would collide with the node's containerd.
    criService.stream_server_address = '127.0.0.1';
    criService.stream_server_port = '0';
    if ('disable_tcp_service' in criService) criService.disable_tcp_service = true;
  }

  let shimSocketDir = DEFAULT_SHIM_SOCKET_DIR;
  if (SHIM_SOCKET_DIR.key in tableAt(config, SHIM_SOCKET_DIR.table)) {
    shimSocketDir = paths.shimSockets;
    setValue(config, SHIM_SOCKET_DIR, shimSocketDir);
    if (shimSocketDir.length > MAX_SHIM_SOCKET_DIR) {
      refusal ??= `the shim socket dir ${shimSocketDir} is longer than the ${MAX_SHIM_SOCKET_DIR} bytes containerd allows: set TMPDIR to a shorter dir`;
    }
  } else {
    overrides.push(`shim sockets in ${DEFAULT_SHIM_SOCKET_DIR} (this containerd has no setting for them; removed at cleanup)`);
  }

  // A snapshotter with its own root_path would write outside the temporary root.
  const plugins = child(config, 'plugins');
  for (const [id, settings] of Object.entries(plugins)) {
    if (id.startsWith('io.containerd.snapshotter.v1.') && isTable(settings) && typeof settings.root_path === 'string' && settings.root_path !== '') {
      settings.root_path = '';
      overrides.push(`snapshotter ${id.slice('io.containerd.snapshotter.v1.'.length)} under that root`);
    }
  }

  const cgroup = child(config, 'cgroup');
  if (typeof cgroup.path === 'string' && cgroup.path !== '') {
    adaptations.push(`[cgroup] path = ${JSON.stringify(cgroup.path)} is not applied to the temporary containerd (it would move this host's containerd process into that cgroup); the installed config keeps it.`);
    cgroup.path = '';
  }

  child(plugins, 'io.containerd.internal.v1.opt').path = paths.opt;
  overrides.push('opt path in it');
  if (isTable(plugins['io.containerd.nri.v1.nri'])) {
    // NRI listens on /var/run/nri/nri.sock; no NRI plugin is part of the smoke test.
    (plugins['io.containerd.nri.v1.nri'] as Table).disable = true;
    overrides.push('NRI off');
  }

  const { runtime, images } = criTables(config);
  if (Array.isArray(runtime.cdi_spec_dirs)) runtime.cdi_spec_dirs = [paths.cdi];
  const runtimes = child(child(runtime, 'containerd'), 'runtimes');
  for (const [name, rt] of Object.entries(runtimes)) {
    if (!isTable(rt)) continue;
    // containerd creates a runtime's own CNI conf dir at start: '' means the (private) global one.
    if (typeof rt.cni_conf_dir === 'string' && rt.cni_conf_dir !== '') rt.cni_conf_dir = '';
    const type = typeof rt.runtime_type === 'string' ? rt.runtime_type : '';
    if (type !== '' && !type.startsWith('io.containerd.runc.')) continue;
    const options = child(rt, 'options');
    options.Root = paths.criRuncRoot;
    if (typeof options.BinaryName === 'string' && options.BinaryName !== '') {
      if (inputs.binaryCopy && root !== '/') {
        const copy = inputs.binaryCopy(options.BinaryName);
        if (copy === undefined) refusal ??= `runtime ${name} runs ${options.BinaryName}, which is not a binary node-prep installed and finds as it installed it: the smoke test runs only the binaries it verified`;
        else options.BinaryName = copy;
      } else options.BinaryName = here(options.BinaryName);
    }
    if (options.SystemdCgroup === true && !inputs.systemdRunning) {
      options.SystemdCgroup = false;
      adaptations.push(
        `SystemdCgroup = true → false for runtime ${name} in the temporary config: systemd is not running here (no /run/systemd/system), ` +
          'so runc cannot use the systemd cgroup driver; the installed config keeps SystemdCgroup = true.',
      );
    }
  }
  if (layout.version === 2 && runtime.systemd_cgroup === true && !inputs.systemdRunning) {
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

  // Read-only node paths (hosts dirs, verifier binaries) are read inside the root; the tracing
  // exporter would send this host's spans to the node's collector.
  const nodeDirs: Array<[Table, string]> = [[child(images, 'registry'), 'config_path'], [child(plugins, 'io.containerd.transfer.v1.local'), 'config_path'], [child(plugins, 'io.containerd.image-verifier.v1.bindir'), 'bin_dir']];
  for (const [t, key] of nodeDirs) {
    if (typeof t[key] === 'string' && t[key] !== '' && root !== '/') t[key] = (t[key] as string).split(':').map(here).join(':');
  }
  const otlp = plugins['io.containerd.tracing.processor.v1.otlp'];
  if (isTable(otlp) && typeof otlp.endpoint === 'string' && otlp.endpoint !== '') otlp.endpoint = '';
  if (root !== '/') overrides.push(`runc, CNI and certs.d paths inside ${root}`);
  return { config, adaptations, overrides, cniConfSource, shimSocketDir, refusal };
}

/**
 * The listeners of the temporary config as containerd itself read it back (`config dump`, in the
 * layout of the version it dumps), before it is started: anything that would listen outside the
 * scratch dir, said as `key = value`. A containerd that ignored a key (as 2.3 ignores top-level
 * [ttrpc]) shows its default here, so it is never started on the host's sockets.
 */
export function listenersOutside(dumped: TomlTable, paths: TempPaths): string[] {
  const layout = layoutOf(dumped);
  const l = layout.listeners;
  const show = (at: { table: readonly string[]; key: string }, v: unknown) => `${[...at.table, at.key].join('.')} = ${JSON.stringify(v)}`;
  const out: string[] = [];
  const grpc = valueAt(dumped, l.grpc);
  if (grpc !== paths.socket) out.push(show(l.grpc, grpc));
  const ttrpc = valueAt(dumped, l.ttrpc);
  // Up to version 3 an empty ttrpc address is derived from the gRPC one.
  if (ttrpc !== paths.ttrpcSocket && !(ttrpc === '' && layout.version < 4)) out.push(show(l.ttrpc, ttrpc));
  for (const at of [l.grpcTcp, l.debug, l.metrics]) {
    const v = valueAt(dumped, at);
    if (v !== undefined && v !== '') out.push(show(at, v));
  }
  const shimDir = valueAt(dumped, SHIM_SOCKET_DIR);
  if (shimDir !== undefined && shimDir !== paths.shimSockets) out.push(show(SHIM_SOCKET_DIR, shimDir));
  return out;
}
