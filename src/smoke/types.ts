/**
 * The smoke test's data: what it is asked to prove (SmokeInput), what it found (SmokeReport), and the
 * side effects it takes from outside (SmokeDeps). Check names are stable: scripts and --json readers
 * match on them.
 */
import type { Emit } from '../events.ts';
import type { Exec } from '../exec/exec.ts';
import type { BinfmtHandler } from '../node/binfmt.ts';

export { CHECK, type CheckName } from '../plan/smoke-checks.ts';
import type { CheckName } from '../plan/smoke-checks.ts';
import type { ComponentName } from '../components/index.ts';

/** What the installed node is meant to be: versions of the binaries and the intended config values. */
export interface SmokeExpect {
  /**
   * The installed version of each component (containerd and runc always). Each one's binaries are
   * version-checked as its catalog entry says; without nerdctl, `nerdctl ps` is not run either.
   */
  versions: Partial<Record<ComponentName, string>> & { containerd: string; runc: string };
  systemdCgroup: boolean;
  sandboxImage: string;
  /** The registry hosts dir (config_path), e.g. /etc/containerd/certs.d. */
  configPath: string;
  cniBinDir: string;
  cniConfDir: string;
}

export interface SmokeInput {
  /** '/' for this machine, else an image root. Node paths (config, CNI dirs) are read inside it. */
  root: string;
  /** --prefix on the node: containerd in <prefix>/bin, runc in <prefix>/sbin. */
  prefix: string;
  expect: SmokeExpect;
  /**
   * service: check the containerd that runs as a service, on `socket`.
   * temporary: start the installed containerd with the installed config but a temporary root, state
   * and socket, check it, stop it and clean up (image builds, hosts without systemd).
   */
  mode: 'service' | 'temporary';
  /** Service mode: the daemon's socket (default /run/containerd/containerd.sock). */
  socket?: string | undefined;
  /** A static busybox for the test container's rootfs; default: searched in the root, then the host. */
  busybox?: string | undefined;
  /** Where the installed config is, as a node path (default /etc/containerd/config.toml). */
  configFile?: string | undefined;
  /**
   * The binaries are for another arch and this kernel runs them through a binfmt_misc handler
   * (qemu-user): only what emulation allows runs (the binaries and the config); the daemon and
   * container checks are listed in `notRun`.
   */
  emulation?: BinfmtHandler | undefined;
}

export interface SmokeCheck {
  name: CheckName;
  ok: boolean;
  durationMs: number;
  /** Pass: what was seen. Fail: what failed and why; a check not run says `skipped: <reason>`. */
  detail: string;
}

export interface SmokeReport {
  kind: 'smoke';
  ok: boolean;
  mode: SmokeInput['mode'];
  /** Settings the temporary run had to change from the installed config, and why. */
  adaptations: string[];
  checks: SmokeCheck[];
  /** Checks that could not run here at all (under emulation), and why; then `ok` covers only those that ran. */
  notRun: NotRunCheck[];
  /** The binfmt_misc handler the binaries ran under, e.g. `qemu-aarch64 (/usr/bin/qemu-aarch64-static)`. */
  emulatedBy?: string | undefined;
}

export interface NotRunCheck {
  name: CheckName;
  why: string;
}

export interface SmokeTimeouts {
  /** A `--version` call, `ctr images ls`, `nerdctl ps`, `config dump`. */
  commandMs: number;
  /** The socket to appear after starting containerd. */
  startMs: number;
  /** One CRI call. */
  criMs: number;
  /** How long CRI may take to report RuntimeReady after the socket answers. */
  criReadyMs: number;
  /** `ctr run` of the test container. */
  containerMs: number;
  /** SIGTERM to containerd before SIGKILL. */
  stopMs: number;
  /** How long a temporary containerd may take to bind its ttrpc socket after gRPC answers. */
  listenersMs: number;
}

export const DEFAULT_TIMEOUTS: SmokeTimeouts = {
  commandMs: 15_000,
  startMs: 20_000,
  criMs: 5_000,
  criReadyMs: 10_000,
  containerMs: 30_000,
  stopMs: 10_000,
  listenersMs: 2_000,
};

export interface SmokeDeps {
  /** Runs the installed tools and the temporary containerd. */
  exec: Exec;
  emit?: Emit;
  /** Monotonic milliseconds, for durations. */
  now?: () => number;
  /** Whether systemd runs this host (runc's own test: /run/systemd/system is a directory). */
  systemdRunning?: () => Promise<boolean>;
  timeouts?: Partial<SmokeTimeouts>;
  /** Where temporary dirs go (default: os.tmpdir()). */
  tmpDir?: string;
}

/** The outcome of one check, before it is timed and named. */
export type CheckOutcome = { ok: true; detail: string } | { ok: false; detail: string };

export const pass = (detail: string): CheckOutcome => ({ ok: true, detail });
export const fail = (detail: string): CheckOutcome => ({ ok: false, detail });
export const skipped = (reason: string): CheckOutcome => ({ ok: false, detail: `skipped: ${reason}` });
