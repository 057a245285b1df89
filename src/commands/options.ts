/** What a command is asked to do: the options the CLI parsed from argv and the environment. */
import type { Arch } from '../arch.ts';
import type { ComponentName } from '../components/types.ts';
import type { VersionSpec } from '../versions/spec.ts';
import type { ContainerdProxy } from '../config/proxy.ts';

export const COMMANDS = ['install', 'plan', 'download', 'smoke', 'status', 'uninstall', 'versions', 'doctor'] as const;
export type Command = (typeof COMMANDS)[number];

export interface Options {
  command: Command;
  positionals: string[];
  specs: Record<ComponentName, VersionSpec>;
  /** --kubernetes: the Kubernetes minor (`1.36`) whose component set the defaults come from. */
  kubernetes: string | undefined;
  /** undefined: detect from the machine. */
  arch: Arch | undefined;
  /** `download --arch amd64,arm64` */
  arches: Arch[] | undefined;
  root: string;
  prefix: string;
  mirror: string;
  githubApi: string;
  githubToken: string | undefined;
  bundle: string | undefined;
  cacheDir: string | undefined;
  checksums: string | undefined;
  sandboxImage: string | undefined;
  cgroupDriver: 'systemd' | 'cgroupfs' | undefined;
  containerdFlavor: 'auto' | 'dynamic' | 'static';
  registryMirrors: Array<{ host: string; url: string }>;
  /** --registries FILE (a path on this machine, read by plan and install). */
  registries: string | undefined;
  /** containerd's proxy drop-in, from --containerd-proxy, --containerd-no-proxy, --containerd-proxy-from-env. */
  containerdProxy: ContainerdProxy | undefined;
  namespace: string;
  start: boolean;
  smoke: boolean;
  dryRun: boolean;
  /** plan: show the diff of a config file only its owner may read (its content goes to the output). */
  showPrivate: boolean;
  json: boolean;
  yes: boolean;
  verbose: boolean;
  quiet: boolean;
  force: boolean;
  /** install, plan: --arch wins over the arch an image root's binaries say. */
  forceArch: boolean;
  /** uninstall: stop the containers still running under node-prep's containerd (their shims), and unmount their rootfs. */
  stopContainers: boolean;
  purge: boolean;
  verify: 'default' | 'strict';
  keyring: string | undefined;
  busybox: string | undefined;
  /** status --check: exit 1 when anything drifted. */
  check: boolean;
  proxy: { http?: string | undefined; https?: string | undefined; no?: string | undefined };
  retryDelaysMs: number[] | undefined;
  timeoutMs: number | undefined;
  /** --deadline: the longest one download may take, retries included. */
  deadlineMs: number | undefined;
  ci: boolean;
}

