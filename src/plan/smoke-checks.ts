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

/** The checks in the order they run, for a smoke test in `mode` with the optional tools installed or not. */
export function plannedChecks(mode: 'service' | 'temporary', tools: { nerdctl: boolean; crictl: boolean }): CheckName[] {
  return [
    CHECK.containerdVersion, CHECK.ctrVersion, CHECK.shimVersion, CHECK.runcVersion,
    ...(tools.nerdctl ? [CHECK.nerdctlVersion] : []),
    ...(tools.crictl ? [CHECK.crictlVersion] : []),
    CHECK.config,
    ...(mode === 'temporary' ? [CHECK.start] : []),
    CHECK.socket, CHECK.criVersion, CHECK.criStatus, CHECK.containerRun,
    ...(tools.nerdctl ? [CHECK.nerdctlPs] : []),
    CHECK.ctrImages, CHECK.cleanup,
  ];
}
