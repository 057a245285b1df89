/**
 * Where things live in a containerd config, per config version: the CRI tables, the plugin IDs whose
 * presence in `disabled_plugins` turns CRI off, and the listener addresses. Version 2 is read by 1.x,
 * 3 by 2.0–2.2, 4 by 2.3+ (which still reads 3 and migrates it in memory):
 * https://github.com/containerd/containerd/blob/main/RELEASES.md#daemon-configuration
 * Adding a config version is one row here (and its template).
 */

import { parse } from 'smol-toml';
import type { TemplateName } from './templates.ts';

/** A value in a parsed TOML document: the tables leading to it, then its key. */
export interface KeyPath {
  table: readonly string[];
  key: string;
}

/** The daemon's listeners: unix sockets (grpc, ttrpc, debug) and TCP addresses (grpcTcp, metrics). */
export interface Listeners {
  grpc: KeyPath;
  ttrpc: KeyPath;
  grpcTcp: KeyPath;
  debug: KeyPath;
  metrics: KeyPath;
}

export interface ConfigLayout {
  version: 2 | 3 | 4;
  /** The template node-prep renders config.toml from in this version (templates/), if it writes it. */
  template: TemplateName | undefined;
  /** Runtimes, CNI and runtime knobs. */
  criRuntime: readonly string[];
  /** Sandbox image, registry hosts dir, snapshotter. */
  criImages: readonly string[];
  /** The CRI gRPC service (in 2.x only its streaming server settings). */
  criService: readonly string[];
  /** The sandbox image key inside criImages. */
  sandboxImage: KeyPath;
  /** Plugin IDs that disable CRI when listed in `disabled_plugins`. */
  criPluginIds: readonly string[];
  listeners: Listeners;
  /** Listener keys of older layouts that this one ignores without a warning (so a config in it must not hold them). */
  ignoredListenerKeys: readonly KeyPath[];
}

const CRI_V1 = ['plugins', 'io.containerd.grpc.v1.cri'] as const;
const TOP_LEVEL_LISTENERS: Listeners = {
  grpc: { table: ['grpc'], key: 'address' },
  ttrpc: { table: ['ttrpc'], key: 'address' },
  grpcTcp: { table: ['grpc'], key: 'tcp_address' },
  debug: { table: ['debug'], key: 'address' },
  metrics: { table: ['metrics'], key: 'address' },
};
const server = (id: string): readonly string[] => ['plugins', `io.containerd.server.v1.${id}`];
const SPLIT_CRI = {
  criRuntime: ['plugins', 'io.containerd.cri.v1.runtime'],
  criImages: ['plugins', 'io.containerd.cri.v1.images'],
  criService: CRI_V1,
  sandboxImage: { table: ['plugins', 'io.containerd.cri.v1.images', 'pinned_images'], key: 'sandbox' },
  criPluginIds: ['cri', 'io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.runtime', 'io.containerd.cri.v1.images'],
} as const;

export const CONFIG_LAYOUTS: Readonly<Record<2 | 3 | 4, ConfigLayout>> = {
  2: {
    version: 2,
    template: 'containerd/config-v2.toml',
    criRuntime: CRI_V1,
    criImages: CRI_V1,
    criService: CRI_V1,
    sandboxImage: { table: CRI_V1, key: 'sandbox_image' },
    criPluginIds: ['cri', 'io.containerd.grpc.v1.cri'],
    listeners: TOP_LEVEL_LISTENERS,
    ignoredListenerKeys: [],
  },
  3: { version: 3, template: 'containerd/config-v3.toml', ...SPLIT_CRI, listeners: TOP_LEVEL_LISTENERS, ignoredListenerKeys: [] },
  // "In version 4 configs, server settings are configured directly under [plugins."<plugin-id>"]";
  // top-level [grpc], [ttrpc], [metrics] and [debug] address are ignored without a warning.
  // https://github.com/containerd/containerd/blob/v2.3.0/cmd/containerd/server/config/config.go
  4: {
    version: 4,
    template: 'containerd/config-v4.toml',
    ...SPLIT_CRI,
    listeners: {
      grpc: { table: server('grpc'), key: 'address' },
      ttrpc: { table: server('ttrpc'), key: 'address' },
      grpcTcp: { table: server('grpc-tcp'), key: 'address' },
      debug: { table: server('debug'), key: 'address' },
      metrics: { table: server('metrics'), key: 'address' },
    },
    ignoredListenerKeys: [
      { table: [], key: 'grpc' },
      { table: [], key: 'ttrpc' },
      { table: [], key: 'metrics' },
      { table: ['debug'], key: 'address' },
      { table: ['debug'], key: 'uid' },
      { table: ['debug'], key: 'gid' },
    ],
  },
};

/**
 * The layout of a parsed config. A file without `version` is version 1 (containerd's rule), which
 * 1.x reads like 2 for everything node-prep looks at; a version newer than 4 is read as 4.
 */
export function layoutOf(config: Record<string, unknown>): ConfigLayout {
  const v = Number(config.version ?? 1);
  if (!Number.isFinite(v) || v < 3) return CONFIG_LAYOUTS[2];
  return v >= 4 ? CONFIG_LAYOUTS[4] : CONFIG_LAYOUTS[3];
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

/** The table at `tablePath`, or an empty one (not attached) when any part is missing. */
export function tableAt(config: Table, tablePath: readonly string[]): Table {
  let t: Table = config;
  for (const part of tablePath) {
    const next = t[part];
    if (!isTable(next)) return {};
    t = next;
  }
  return t;
}

/** The table at `tablePath`, created where missing. */
export function ensureTable(config: Table, tablePath: readonly string[]): Table {
  let t: Table = config;
  for (const part of tablePath) {
    if (!isTable(t[part])) t[part] = {};
    t = t[part] as Table;
  }
  return t;
}

export function valueAt(config: Table, at: KeyPath): unknown {
  return tableAt(config, at.table)[at.key];
}

export function setValue(config: Table, at: KeyPath, value: unknown): void {
  ensureTable(config, at.table)[at.key] = value;
}

export function deleteValue(config: Table, at: KeyPath): void {
  delete tableAt(config, at.table)[at.key];
}

/**
 * Where containerd's shim manager puts the shims' sockets, where the version has the setting (2.3+;
 * before it the dir is hardcoded to /run/containerd/s). The full socket path is the dir, "/" and a
 * sha256 in hex, and must fit sockaddr_un (107 bytes and a NUL): the dir may have 42 bytes
 * (containerd's ShimConfig.SocketDir and maxSocketDirLen).
 */
export const SHIM_SOCKET_DIR: KeyPath = { table: ['plugins', 'io.containerd.shim.v1.manager'], key: 'socket_dir' };
export const MAX_SHIM_SOCKET_DIR = 42;
export const DEFAULT_SHIM_SOCKET_DIR = '/run/containerd/s';

/**
 * Whether a config file's text turns CRI off (Docker's containerd.io ships `disabled_plugins =
 * ["cri"]`). Text containerd itself would refuse is still read for what a plain reading shows.
 */
export function criDisabledInText(text: string): { criDisabled: boolean; parseError?: string } {
  try {
    return { criDisabled: criDisabled(parse(text)) };
  } catch (err) {
    const ids = [...new Set(Object.values(CONFIG_LAYOUTS).flatMap((l) => l.criPluginIds))];
    const listed = /^\s*disabled_plugins\s*=\s*\[([^\]]*)\]/m.exec(text)?.[1] ?? '';
    const criDisabled = ids.some((id) => listed.includes(`"${id}"`) || listed.includes(`'${id}'`));
    return { criDisabled, parseError: (err as Error).message.split('\n')[0] };
  }
}

/** Whether `disabled_plugins` turns CRI off in this layout. */
export function criDisabled(config: Table): boolean {
  const disabled = Array.isArray(config.disabled_plugins) ? config.disabled_plugins.map(String) : [];
  const ids = layoutOf(config).criPluginIds;
  return disabled.some((p) => ids.includes(p));
}
