import { COMPONENT_NAMES, COMPONENTS, type ComponentName } from '../components/index.ts';

/**
 * The smoke test's checks, by their stable names (scripts and --json readers match on them), and
 * which of them a plan's smoke test runs.
 */
export const CHECK = {
  containerdVersion: 'containerd version',
  ctrVersion: 'ctr version',
  shimVersion: 'shim version',
  runcVersion: 'runc version',
  nerdctlVersion: 'nerdctl version',
  crictlVersion: 'crictl version',
  config: 'config',
  start: 'containerd start',
  socket: 'socket',
  criVersion: 'cri version',
  criStatus: 'cri status',
  containerRun: 'container run',
  nerdctlPs: 'nerdctl ps',
  ctrImages: 'ctr images',
  cleanup: 'cleanup',
} as const;

export type CheckName = (typeof CHECK)[keyof typeof CHECK];

/** The checks in the order they run, for a smoke test in `mode` of these components (catalog order). */
export function plannedChecks(mode: 'service' | 'temporary' | 'emulated', components: readonly ComponentName[]): string[] {
  const installed = COMPONENT_NAMES.filter((n) => components.includes(n));
  // Under user-mode emulation only the binaries and the config run (smoke/checks.ts).
  if (mode === 'emulated') return [...installed.flatMap((n) => COMPONENTS[n].versionChecks.map((v) => v.check)), CHECK.config, CHECK.cleanup];
  return [
    ...installed.flatMap((n) => COMPONENTS[n].versionChecks.map((v) => v.check)),
    CHECK.config,
    ...(mode === 'temporary' ? [CHECK.start] : []),
    CHECK.socket, CHECK.criVersion, CHECK.criStatus, CHECK.containerRun,
    ...(installed.includes('nerdctl') ? [CHECK.nerdctlPs] : []),
    CHECK.ctrImages, CHECK.cleanup,
  ];
}
