/**
 * Which binfmt_misc handler runs a binary of another arch, from entries in the kernel's own format
 * (these are the entries Debian's qemu-user-static registers, from qemu's qemu-binfmt-conf.sh).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { archRun, binfmtHandlerFor, parseBinfmtEntry } from '../../src/node/binfmt.ts';
import { elfHeaderFor, elfMachine } from '../../src/node/elf.ts';

const QEMU_AARCH64 = `enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POCF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
`;
const QEMU_X86_64 = QEMU_AARCH64.replace('aarch64-binfmt-P', 'x86_64-binfmt-P').replace('0200b700', '02003e00');
const WINE = 'enabled\ninterpreter /usr/bin/wine\nflags: \nextension .exe\n';

async function binfmtDir(entries: Record<string, string>, status = 'enabled'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'np-binfmt-'));
  await writeFile(path.join(dir, 'status'), `${status}\n`);
  await writeFile(path.join(dir, 'register'), '');
  for (const [name, text] of Object.entries(entries)) await writeFile(path.join(dir, name), text);
  return dir;
}

describe('binfmt_misc', () => {
  it('the ELF header made for an arch names that arch', () => {
    expect(elfMachine(elfHeaderFor('arm64'))).toBe('arm64');
    expect(elfMachine(elfHeaderFor('amd64'))).toBe('amd64');
  });

  it('parses an entry; a disabled one or one matched by extension is not a handler', () => {
    expect(parseBinfmtEntry('qemu-aarch64', QEMU_AARCH64)).toMatchObject({ name: 'qemu-aarch64', interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P', flags: 'POCF', offset: 0 });
    expect(parseBinfmtEntry('qemu-aarch64', QEMU_AARCH64.replace('enabled', 'disabled'))).toBeUndefined();
    expect(parseBinfmtEntry('wine', WINE)).toBeUndefined();
  });

  it('finds the handler whose magic and mask match an arm64 executable, and none for amd64', async () => {
    const dir = await binfmtDir({ 'qemu-aarch64': QEMU_AARCH64, wine: WINE });
    expect(await binfmtHandlerFor(elfHeaderFor('arm64'), dir)).toEqual({ name: 'qemu-aarch64', interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P', flags: 'POCF' });
    expect(await binfmtHandlerFor(elfHeaderFor('amd64'), dir)).toBeUndefined();
    // The mask lets a PIE (ET_DYN, 3) match as the executable (ET_EXEC, 2) does.
    const pie = Buffer.from(elfHeaderFor('arm64'));
    pie.writeUInt16LE(3, 16);
    expect((await binfmtHandlerFor(pie, dir))?.name).toBe('qemu-aarch64');
  });

  it('nothing when binfmt_misc is disabled, not mounted (no status file) or missing', async () => {
    expect(await binfmtHandlerFor(elfHeaderFor('arm64'), await binfmtDir({ 'qemu-aarch64': QEMU_AARCH64 }, 'disabled'))).toBeUndefined();
    const unmounted = await mkdtemp(path.join(os.tmpdir(), 'np-binfmt-'));
    expect(await binfmtHandlerFor(elfHeaderFor('arm64'), unmounted)).toBeUndefined();
    expect(await binfmtHandlerFor(elfHeaderFor('arm64'), path.join(unmounted, 'nope'))).toBeUndefined();
  });

  it('archRun: native, emulated under the matching handler, or cannot, saying why', async () => {
    const dir = await binfmtDir({ 'qemu-x86_64': QEMU_X86_64, 'qemu-aarch64': QEMU_AARCH64 });
    expect(await archRun('amd64', 'amd64', dir)).toEqual({ kind: 'native' });
    expect(await archRun('arm64', 'amd64', dir)).toMatchObject({ kind: 'emulated', handler: { name: 'qemu-aarch64' } });
    expect(await archRun('amd64', 'arm64', dir)).toMatchObject({ kind: 'emulated', handler: { name: 'qemu-x86_64' } });
    const none = await archRun('arm64', 'amd64', await binfmtDir({ 'qemu-x86_64': QEMU_X86_64 }));
    expect(none).toEqual({
      kind: 'cannot',
      why: 'the binaries are for arm64 and this machine is amd64, with no binfmt_misc handler for arm64 (qemu-user-static registers one): none of them can run here. Run `node-prep smoke` on an arm64 machine, or in the image when it boots',
    });
  });
});
