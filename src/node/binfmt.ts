/**
 * Whether this kernel runs a binary of another arch through a binfmt_misc handler (qemu-user's
 * `qemu-aarch64-static`, registered by Debian's qemu-user-static or by `tonistiigi/binfmt`), read
 * from /proc/sys/fs/binfmt_misc: each entry names an interpreter, and the magic bytes and mask it
 * matches at an offset of the file (https://docs.kernel.org/admin-guide/binfmt-misc.html).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { detectArch, type Arch } from '../arch.ts';
import { elfHeaderFor } from './elf.ts';

export const BINFMT_DIR = '/proc/sys/fs/binfmt_misc';

export interface BinfmtHandler {
  /** The entry's name, e.g. `qemu-aarch64`. */
  name: string;
  interpreter: string;
  flags: string;
}

interface MagicEntry extends BinfmtHandler {
  offset: number;
  magic: Buffer;
  mask: Buffer;
}

/** An entry's text as the kernel prints it; undefined for a disabled or an extension-matched entry. */
export function parseBinfmtEntry(name: string, text: string): MagicEntry | undefined {
  const lines = text.split('\n').map((l) => l.trim());
  if (lines[0] !== 'enabled') return undefined;
  const field = (key: string) => lines.find((l) => l.startsWith(`${key} `) || l.startsWith(`${key}:`))?.slice(key.length).replace(/^:?\s*/, '');
  const interpreter = field('interpreter');
  const magicHex = field('magic');
  if (interpreter === undefined || magicHex === undefined || !/^([0-9a-f]{2})+$/i.test(magicHex)) return undefined;
  const magic = Buffer.from(magicHex, 'hex');
  const maskHex = field('mask');
  const mask = maskHex !== undefined && /^([0-9a-f]{2})+$/i.test(maskHex) ? Buffer.from(maskHex, 'hex') : Buffer.alloc(magic.length, 0xff);
  return { name, interpreter, flags: field('flags') ?? '', offset: Number(field('offset') ?? 0) || 0, magic, mask };
}

/** Whether a file's first bytes match an entry's magic under its mask. */
export function binfmtMatches(entry: MagicEntry, head: Buffer): boolean {
  if (head.length < entry.offset + entry.magic.length) return false;
  for (let i = 0; i < entry.magic.length; i++) {
    const m = entry.mask[i] ?? 0xff;
    if ((head[entry.offset + i]! & m) !== (entry.magic[i]! & m)) return false;
  }
  return true;
}

/** The enabled handler that would run a file starting with `head`, if binfmt_misc is mounted and enabled and one matches. */
export async function binfmtHandlerFor(head: Buffer, dir = BINFMT_DIR): Promise<BinfmtHandler | undefined> {
  // procfs files report size 0, so they are read whole (the kernel writes a few hundred bytes at most).
  const read = (name: string) => readFile(path.join(dir, name), 'utf8').then((t) => t.slice(0, 4096), () => undefined);
  if ((await read('status'))?.trim() !== 'enabled') return undefined;
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n !== 'status' && n !== 'register').sort();
  } catch {
    return undefined;
  }
  for (const name of names.slice(0, 256)) {
    const text = await read(name);
    const entry = text === undefined ? undefined : parseBinfmtEntry(name, text);
    if (entry !== undefined && binfmtMatches(entry, head)) return { name: entry.name, interpreter: entry.interpreter, flags: entry.flags };
  }
  return undefined;
}

/**
 * Whether binaries of `arch` run on this machine: natively, through a binfmt_misc handler
 * (qemu-user: the smoke test then runs what emulation allows), or not at all.
 */
export type ArchRun = { kind: 'native' } | { kind: 'emulated'; handler: BinfmtHandler } | { kind: 'cannot'; why: string };

export async function archRun(arch: Arch, host: Arch = detectArch(), binfmtDir = BINFMT_DIR): Promise<ArchRun> {
  if (arch === host) return { kind: 'native' };
  const handler = await binfmtHandlerFor(elfHeaderFor(arch), binfmtDir);
  if (handler !== undefined) return { kind: 'emulated', handler };
  return {
    kind: 'cannot',
    why: `the binaries are for ${arch} and this machine is ${host}, with no binfmt_misc handler for ${arch} (qemu-user-static registers one): none of them can run here. Run \`node-prep smoke\` on an ${arch} machine, or in the image when it boots`,
  };
}
