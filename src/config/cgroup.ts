import type { Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveInRoot } from '../node/resolve.ts';
import type { CgroupDriver } from './types.ts';

export interface CgroupDetectInputs {
  /** --root: '/' for this machine, else an image root whose own init decides. */
  root: string;
  /** --cgroup-driver, which wins over detection. */
  explicit?: CgroupDriver | undefined;
  /** Where /proc is (tests point it at a temp dir). */
  procDir?: string;
}

export interface CgroupDecision {
  driver: CgroupDriver;
  /** Why, in words for the plan. */
  reason: string;
}

/** Where distributions put the systemd binary; /sbin/init links to one of them when systemd is init. */
const SYSTEMD_PATHS = ['/lib/systemd/systemd', '/usr/lib/systemd/systemd'];

/**
 * The kubelet and containerd must agree on the cgroup driver, and when systemd is init it owns the
 * cgroup tree, so it must be `systemd` there (https://kubernetes.io/docs/setup/production-environment/container-runtimes/#cgroup-drivers).
 */
export async function detectCgroupDriver(inputs: CgroupDetectInputs): Promise<CgroupDecision> {
  if (inputs.explicit !== undefined) return { driver: inputs.explicit, reason: `--cgroup-driver ${inputs.explicit} was given` };
  return inputs.root === '/' ? fromPid1(inputs.procDir ?? '/proc') : fromImageInit(inputs.root);
}

async function fromPid1(procDir: string): Promise<CgroupDecision> {
  const commPath = path.join(procDir, '1/comm');
  let comm: string;
  try {
    comm = (await readFile(commPath, 'utf8')).trim();
  } catch (error) {
    return { driver: 'cgroupfs', reason: `cannot read ${commPath} (${(error as NodeJS.ErrnoException).code ?? String(error)}), so init is not known to be systemd` };
  }
  return comm === 'systemd'
    ? { driver: 'systemd', reason: `PID 1 is systemd (${commPath})` }
    : { driver: 'cgroupfs', reason: `PID 1 is ${JSON.stringify(comm)}, not systemd (${commPath})` };
}

async function fromImageInit(root: string): Promise<CgroupDecision> {
  const init = await resolveInRoot(root, '/sbin/init');
  if (init.kind === 'missing') return { driver: 'cgroupfs', reason: `${root}/sbin/init does not exist (${init.detail}), so systemd is not its init` };
  if (SYSTEMD_PATHS.includes(init.path)) return { driver: 'systemd', reason: `${root}/sbin/init is systemd (${init.path} in the image)` };
  // A hard link or a copy: same file as the image's systemd binary.
  for (const candidate of SYSTEMD_PATHS) {
    const systemd = await resolveInRoot(root, candidate);
    if (systemd.kind === 'found' && sameFile(systemd.stats, init.stats)) {
      return { driver: 'systemd', reason: `${root}/sbin/init is the same file as ${candidate} in the image` };
    }
  }
  return { driver: 'cgroupfs', reason: `${root}/sbin/init is ${init.path} in the image, not systemd` };
}

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;

