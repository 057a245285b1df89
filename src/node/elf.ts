/**
 * What an ELF file's header says: the machine it is built for (e_machine), and whether it needs a
 * program interpreter (the dynamic loader). Used to tell an image root's arch from its own binaries
 * and to pick a binary that can run alone in an empty container rootfs.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { normalizeArch, type Arch } from '../arch.ts';
import { resolveInRoot } from './resolve.ts';

const ELF_MAGIC = 0x7f454c46;

/** e_machine values and the arch names tools use for them (only amd64 and arm64 are installable). */
const ELF_MACHINES: Record<number, string> = { 62: 'amd64', 183: 'arm64', 3: '386', 40: 'arm', 243: 'riscv64', 22: 's390x', 21: 'ppc64' };

/** The arch an ELF header names: bytes 18-19 are e_machine, in the byte order byte 5 says. */
export function elfMachine(header: Buffer): string | undefined {
  if (header.length < 20 || header.readUInt32BE(0) !== ELF_MAGIC) return undefined;
  const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  return ELF_MACHINES[machine] ?? `ELF machine ${machine}`;
}

/**
 * The first 20 bytes of a 64-bit little-endian ELF executable for `arch`: what a binfmt_misc entry
 * matches on, so the handler for an arch is found without opening any file of an image root.
 */
export function elfHeaderFor(arch: Arch): Buffer {
  const machine = Number(Object.entries(ELF_MACHINES).find(([, name]) => name === arch)![0]);
  const b = Buffer.alloc(20);
  b.writeUInt32BE(ELF_MAGIC, 0);
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little-endian
  b[6] = 1; // EV_CURRENT
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(machine, 18);
  return b;
}

/** The first `n` bytes of a file (fewer when it is shorter); a link is not followed and a FIFO does not block. */
export async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const head = Buffer.alloc(n);
    const { bytesRead } = await fh.read(head, 0, n, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export type ElfKind = { kind: 'static' } | { kind: 'dynamic'; interpreter: string } | { kind: 'not-elf' };

/** Whether an ELF file needs a program interpreter (the dynamic loader) that an empty rootfs lacks. */
export async function elfKind(file: string): Promise<ElfKind> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    if (bytesRead < 52 || head.readUInt32BE(0) !== ELF_MAGIC) return { kind: 'not-elf' };
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const word = (b: Buffer, o: number) => (is64 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : u32(b, o));
    const phoff = word(head, is64 ? 32 : 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    const table = Buffer.alloc(phentsize * phnum);
    await fh.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const ph = table.subarray(i * phentsize, (i + 1) * phentsize);
      if (u32(ph, 0) !== 3) continue; // PT_INTERP
      const offset = word(ph, is64 ? 8 : 4);
      const size = word(ph, is64 ? 32 : 16);
      const interp = Buffer.alloc(Math.min(size, 4096));
      await fh.read(interp, 0, interp.length, offset);
      return { kind: 'dynamic', interpreter: interp.toString('utf8').replace(/\0.*$/s, '') };
    }
    return { kind: 'static' };
  } finally {
    await fh.close();
  }
}

export interface ImageArch {
  /** As the ELF header names it: `amd64`, `arm64`, or another machine node-prep does not install for. */
  arch: string;
  /** amd64 or arm64 when it is one of those. */
  installable: Arch | undefined;
  /** Which file said so, e.g. `the ELF header of /bin/sh (/usr/bin/dash)`. */
  source: string;
}

/** The binaries whose ELF header tells an image's arch: its shell, else a busybox, else env. */
const IMAGE_ARCH_PROBES = ['/bin/sh', '/bin/busybox', '/usr/bin/env'];

/** The arch of an image root from the ELF header of its shell (links followed inside the root). */
export async function readImageArch(root: string): Promise<ImageArch | undefined> {
  for (const candidate of IMAGE_ARCH_PROBES) {
    const r = await resolveInRoot(root, candidate);
    if (r.kind !== 'found' || !r.stats.isFile()) continue;
    const arch = elfMachine(await readHead(path.join(root, r.path), 20).catch(() => Buffer.alloc(0)));
    if (arch === undefined) continue;
    return { arch, installable: normalizeArch(arch), source: `the ELF header of ${candidate}${r.path === candidate ? '' : ` (${r.path})`}` };
  }
  return undefined;
}
