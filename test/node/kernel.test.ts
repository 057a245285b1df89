import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moduleProvided } from '../../src/node/kernel.ts';

let base: string;
beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'np-kernel-'));
});
afterAll(() => rm(base, { recursive: true, force: true }));

/** A fake /proc and /sys with the given files. */
async function tree(name: string, files: string[]): Promise<{ proc: string; sys: string }> {
  const root = path.join(base, name);
  for (const f of files) {
    await mkdir(path.dirname(path.join(root, f)), { recursive: true });
    await writeFile(path.join(root, f), f.endsWith('filesystems') ? 'nodev\tproc\nnodev\toverlay\n' : '1\n');
  }
  return { proc: path.join(root, 'proc'), sys: path.join(root, 'sys') };
}

describe('moduleProvided', () => {
  it.each<[string, string[], string, RegExp | undefined]>([
    ['loaded', ['sys/module/br_netfilter/refcnt'], 'br_netfilter', /sys\/module\/br_netfilter exists$/],
    ['br_netfilter built in: no /sys/module, but its sysctls', ['proc/sys/net/bridge/bridge-nf-call-iptables'], 'br_netfilter', /bridge-nf-call-iptables exists$/],
    ['overlay built in: the filesystem is registered', ['proc/filesystems'], 'overlay', /overlay is in .*\/filesystems$/],
    ['neither', ['proc/version'], 'br_netfilter', undefined],
  ])('%s', async (name, files, module, want) => {
    const t = await tree(name.replace(/\W+/g, '-'), files);
    const got = await moduleProvided(module, t.proc, t.sys);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(want);
  });
});
