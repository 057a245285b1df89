/**
 * Whether the kernel already provides a module, loaded or built in: a built-in module has no
 * /sys/module entry, so what it provides is looked at too (overlay registers a filesystem,
 * br_netfilter the net.bridge.bridge-nf-call-* sysctls).
 */
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';

const exists = (p: string) => lstat(p).then(() => true, () => false);

/** How the module shows, in words, or undefined when the kernel does not show it. */
export async function moduleProvided(name: string, procDir = '/proc', sysDir = '/sys'): Promise<string | undefined> {
  if (await exists(path.join(sysDir, 'module', name))) return `${sysDir}/module/${name} exists`;
  if (name === 'overlay') {
    const fs = await readFile(path.join(procDir, 'filesystems'), 'utf8').catch(() => '');
    if (/\toverlay$/m.test(fs)) return `overlay is in ${procDir}/filesystems`;
  }
  if (name === 'br_netfilter' && (await exists(path.join(procDir, 'sys/net/bridge/bridge-nf-call-iptables')))) {
    return `${procDir}/sys/net/bridge/bridge-nf-call-iptables exists`;
  }
  return undefined;
}
