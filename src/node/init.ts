import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** Whether systemd runs this machine as PID 1 (what `systemctl` needs to start anything). */
export async function systemdIsPid1(procDir = '/proc'): Promise<boolean> {
  const comm = await readFile(path.join(procDir, '1/comm'), 'utf8').then((t) => t.trim(), () => '');
  return comm === 'systemd';
}
