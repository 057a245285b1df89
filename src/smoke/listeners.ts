/**
 * What a process really listens on, read from /proc: its listening unix sockets (/proc/PID/net/unix)
 * and TCP sockets (/proc/PID/net/tcp, tcp6), kept only where the socket's inode is one of the
 * process's own file descriptors (the tables list the whole network namespace). The smoke test
 * holds a temporary containerd to this, not to the config it was given: a config key that a
 * containerd version ignores does not move its listener.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

export type Listener = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** __SO_ACCEPTCON in the Flags column of /proc/net/unix: the socket listens. */
const SO_ACCEPTCON = 0x10000;
/** TCP_LISTEN in the st column of /proc/net/tcp. */
const TCP_LISTEN = '0A';

/** Listening unix sockets in /proc/net/unix text, by inode. Abstract names start with '@'. */
export function parseUnixTable(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode [Path]; the path may contain spaces.
    const m = /^\s*\S+:\s+\S+\s+\S+\s+([0-9A-Fa-f]+)\s+\S+\s+\S+\s+(\d+)(?: (.*))?$/.exec(line);
    if (m === null || (parseInt(m[1]!, 16) & SO_ACCEPTCON) === 0) continue;
    out.set(Number(m[2]), m[3] ?? '');
  }
  return out;
}

/** Listening TCP sockets in /proc/net/tcp or tcp6 text, by inode. */
export function parseTcpTable(text: string): Map<number, { host: string; port: number }> {
  const out = new Map<number, { host: string; port: number }>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    if (f.length < 10 || f[3] !== TCP_LISTEN) continue;
    const [addr, port] = (f[1] ?? '').split(':');
    if (addr === undefined || port === undefined) continue;
    out.set(Number(f[9]), { host: decodeAddress(addr), port: parseInt(port, 16) });
  }
  return out;
}

/** The kernel prints each 32-bit word of the address in host (little-endian) byte order. */
function decodeAddress(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // RFC 5952: the longest run of two or more zero groups becomes "::".
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/** The socket inodes among a process's file descriptors. */
async function socketInodes(pid: number): Promise<Set<number>> {
  const out = new Set<number>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) out.add(Number(m[1]));
  }
  return out;
}

const readOr = (file: string) => readFile(file, 'utf8').catch(() => '');

/** Everything `pid` listens on. Throws when the process is gone. */
export async function listenersOf(pid: number): Promise<Listener[]> {
  const inodes = await socketInodes(pid);
  const [unix, tcp4, tcp6] = await Promise.all([`unix`, `tcp`, `tcp6`].map((t) => readOr(`/proc/${pid}/net/${t}`)));
  const out: Listener[] = [];
  for (const [inode, p] of parseUnixTable(unix!)) if (inodes.has(inode)) out.push({ kind: 'unix', path: p });
  for (const table of [tcp4!, tcp6!]) {
    for (const [inode, a] of parseTcpTable(table)) if (inodes.has(inode)) out.push({ kind: 'tcp', ...a });
  }
  // Unix sockets by path, then TCP, so that reports read the same every run.
  return out.sort((a, b) => (a.kind !== b.kind ? (a.kind === 'unix' ? -1 : 1) : showListener(a) < showListener(b) ? -1 : 1));
}

export const showListener = (l: Listener): string =>
  l.kind === 'unix' ? (l.path === '' ? 'an unnamed unix socket' : l.path) : `tcp ${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;

export interface ListenerVerdict {
  /** Each listener, said as it is, with why it is allowed where it is not a path in the scratch dir. */
  allowed: string[];
  outside: string[];
}

/** The kernel's range for ports it picks itself (/proc/sys/net/ipv4/ip_local_port_range). */
export async function ephemeralPorts(): Promise<{ low: number; high: number }> {
  const [low, high] = (await readOr('/proc/sys/net/ipv4/ip_local_port_range')).trim().split(/\s+/).map(Number);
  return low && high ? { low, high } : { low: 32768, high: 60999 };
}

/**
 * A temporary daemon may listen on unix sockets inside `scratchDir`, and on one TCP port of
 * 127.0.0.1 that the kernel picked: the CRI streaming server, which its config puts there with port
 * 0 (kubectl exec/attach/port-forward go through it). Anything else (an abstract or outside socket,
 * a fixed port, a second TCP listener, another address) is outside.
 */
export function judgeListeners(listeners: Listener[], scratchDir: string, ephemeral: { low: number; high: number }): ListenerVerdict {
  const allowed: string[] = [];
  const outside: string[] = [];
  let streaming = false;
  for (const l of listeners) {
    if (l.kind === 'unix') {
      (l.path.startsWith(`${scratchDir}/`) ? allowed : outside).push(showListener(l));
    } else if (!streaming && l.host === '127.0.0.1' && l.port >= ephemeral.low && l.port <= ephemeral.high) {
      streaming = true;
      allowed.push(`${showListener(l)} (CRI streaming, ephemeral port on loopback)`);
    } else {
      outside.push(showListener(l));
    }
  }
  return { allowed, outside };
}
