import { NodePrepError, UsageError } from './errors.ts';

export const ARCHES = ['amd64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];

/** The names machines and tools use for the two architectures node-prep supports. */
const ALIASES: Record<string, Arch> = {
  amd64: 'amd64',
  x86_64: 'amd64',
  x64: 'amd64',
  arm64: 'arm64',
  aarch64: 'arm64',
  aarch64_be: 'arm64',
};

/** Map a machine or user arch name (`x86_64`, `aarch64`, `arm64`, node's `x64`) to ours, or undefined. */
export function normalizeArch(name: string): Arch | undefined {
  return ALIASES[name.trim().toLowerCase()];
}

export function parseArch(name: string, from: string): Arch {
  const arch = normalizeArch(name);
  if (!arch) {
    throw new UsageError(
      `${from} ${JSON.stringify(name)} is not supported: node-prep installs for ${ARCHES.join(' and ')} only.`,
      'Use --arch amd64 or --arch arm64 (x86_64 and aarch64 are accepted too).',
    );
  }
  return arch;
}

/** The running machine's architecture, from node's process.arch (`x64`, `arm64`, ...). */
export function detectArch(processArch: string = process.arch): Arch {
  const arch = normalizeArch(processArch);
  if (!arch) {
    throw new NodePrepError(
      'UNSUPPORTED_ARCH',
      `This machine's architecture (${processArch}) is not supported: node-prep installs for ${ARCHES.join(' and ')} only.`,
      { hint: 'Pass --arch amd64 or --arch arm64 to prepare an image root for another machine.', fields: { arch: processArch } },
    );
  }
  return arch;
}
