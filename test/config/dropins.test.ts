import { execa } from 'execa';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainRefusal, readDropIns, refusedDropIns, type DropIn } from '../../src/config/dropins.ts';

const nvidia: DropIn = { path: '/etc/containerd/conf.d/99-nvidia.toml', version: 4 };

describe('refusedDropIns', () => {
  it.each<[string, number, DropIn[], string[]]>([
    ['2.3.4', 3, [nvidia], [nvidia.path]],
    ['2.3.0', 3, [nvidia], [nvidia.path]],
    ['v2.3.2', 2, [{ path: '/x.toml', version: 3 }], ['/x.toml']],
    ['2.3.5', 3, [nvidia], []],
    ['2.2.0', 3, [nvidia], []],
    ['1.7.28', 2, [{ path: '/x.toml', version: 3 }], []],
    ['2.3.4', 4, [nvidia], []],
    ['2.3.4', 3, [{ path: '/same.toml', version: 3 }, { path: '/none.toml', version: undefined }, { path: '/old.toml', version: 2 }], []],
  ])('containerd %s with a version %i root file: %j refused as %j', (containerd, rootVersion, dropIns, refused) => {
    expect(refusedDropIns(containerd, rootVersion, dropIns).map((r) => r.path)).toEqual(refused);
  });

  it('names the files, the versions that refuse them, containerd\'s own words and both ways out', () => {
    const { message, hint } = explainRefusal(refusedDropIns('2.3.4', 3, [nvidia]));
    expect(message).toBe(
      'containerd 2.3.4 will not start: /etc/containerd/conf.d/99-nvidia.toml (version 4) declares a higher config version than the config.toml node-prep writes for it (version 3); ' +
        'containerd 2.3.0 to 2.3.4 refuse that ("drop-in config version 4 higher than root config version 3").',
    );
    expect(hint).toBe('Set `version = 3` in the drop-in (its keys mean the same there), or choose a containerd that accepts it (--containerd 2.2.x, or 2.3.5 and later).');
  });
});

describe('readDropIns', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'np-dropins-'));
    const dir = path.join(root, 'etc/containerd/conf.d');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, '99-nvidia.toml'), 'version = 4\n[plugins."io.containerd.cri.v1.runtime".containerd]\n  default_runtime_name = "nvidia"\n');
    await writeFile(path.join(dir, '10-none.toml'), '[plugins]\n');
    await writeFile(path.join(dir, '20-broken.toml'), 'version = = 4\n');
    await writeFile(path.join(dir, 'README'), 'version = 9\n');
    // A link to a node path: followed inside the root (as the node would), never on this host.
    await mkdir(path.join(root, 'usr/share/nvidia'), { recursive: true });
    await writeFile(path.join(root, 'usr/share/nvidia/ctk.toml'), 'version = 4\n');
    await symlink('/usr/share/nvidia/ctk.toml', path.join(dir, '30-link.toml'));
    await symlink('../../../usr/share/nvidia/ctk.toml', path.join(dir, '31-relative.toml'));
    await symlink('/etc/hostname', path.join(dir, '32-host.toml'));
    await execa('mkfifo', [path.join(dir, '40-fifo.toml')]);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('reads each *.toml version, follows links inside the root only, and does not block on a FIFO', async () => {
    expect(await readDropIns(root)).toEqual([
      { path: '/etc/containerd/conf.d/10-none.toml', version: undefined },
      { path: '/etc/containerd/conf.d/20-broken.toml', version: undefined },
      { path: '/etc/containerd/conf.d/30-link.toml', version: 4 },
      { path: '/etc/containerd/conf.d/31-relative.toml', version: 4 },
      { path: '/etc/containerd/conf.d/32-host.toml', version: undefined },
      { path: '/etc/containerd/conf.d/40-fifo.toml', version: undefined },
      { path: '/etc/containerd/conf.d/99-nvidia.toml', version: 4 },
    ]);
  });

  it('is empty where there is no conf.d', async () => {
    expect(await readDropIns(path.join(root, 'nowhere'))).toEqual([]);
  });
});
