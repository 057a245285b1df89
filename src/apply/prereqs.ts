/**
 * Kernel prerequisites of a Kubernetes node: the overlay and br_netfilter modules and three sysctls.
 * The files in /etc/modules-load.d and /etc/sysctl.d make them stick across boots; on a live host they
 * are also applied now. A kernel that refuses (a container without the capability, a module that is
 * not built) gets a warning, not a failure: containerd itself runs without them.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Exec } from '../exec/exec.ts';
import { moduleProvided } from '../node/kernel.ts';
import { MODULES, SYSCTLS } from '../node/paths.ts';
import type { Emit } from '../events.ts';

export interface PrereqReport {
  modules: Array<{ name: string; state: 'loaded' | 'was-loaded' | 'failed'; detail?: string }>;
  sysctls: Array<{ key: string; state: 'set' | 'was-set' | 'failed'; detail?: string }>;
}

const sysctlPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;

export async function applyPrerequisites(exec: Exec, emit: Emit): Promise<PrereqReport> {
  const report: PrereqReport = { modules: [], sysctls: [] };
  for (const name of MODULES) {
    // Loaded or built in (br_netfilter built into the kernel has no /sys/module entry).
    if ((await moduleProvided(name)) !== undefined) {
      report.modules.push({ name, state: 'was-loaded' });
      continue;
    }
    const r = await exec.run('modprobe', [name], { timeoutMs: 15_000 });
    if (r.exitCode === 0) report.modules.push({ name, state: 'loaded' });
    else {
      const missing = r.spawnError === 'ENOENT';
      const detail = missing ? 'modprobe is not installed (package kmod)' : lastLine(String(r.stderr)) || `modprobe exited ${r.exitCode ?? r.signal}`;
      report.modules.push({ name, state: 'failed', detail });
      emit({ type: 'warn', message: `could not load kernel module ${name}: ${detail}` });
    }
  }
  for (const [key, want] of Object.entries(SYSCTLS)) {
    const file = sysctlPath(key);
    const now = await readFile(file, 'utf8').then((t) => t.trim(), () => undefined);
    if (now === want) {
      report.sysctls.push({ key, state: 'was-set' });
      continue;
    }
    try {
      if (now === undefined) throw new Error(`${file} does not exist (is the module loaded?)`);
      await writeFile(file, want);
      report.sysctls.push({ key, state: 'set' });
    } catch (err) {
      const detail = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      report.sysctls.push({ key, state: 'failed', detail });
      emit({ type: 'warn', message: `could not set ${key}=${want}: ${detail}; it is written to /etc/sysctl.d for the next boot` });
    }
  }
  return report;
}


function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}
