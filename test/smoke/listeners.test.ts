import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgeListeners, listenersOf, parseTcpTable, parseUnixTable, type Listener } from '../../src/smoke/listeners.ts';

// Lines as the kernel prints them (a containerd 2.1.9 with a debug socket and a metrics address).
const UNIX = `Num       RefCount Protocol Flags    Type St Inode Path
000000003d7d6dfc: 00000002 00000000 00010000 0001 01 20763 /tmp/exp/debug.sock
00000000dbf70285: 00000002 00000000 00010000 0001 01 20766 /tmp/exp/c.sock.ttrpc
00000000509443d7: 00000003 00000000 00000000 0001 03 20770 /tmp/exp/c.sock
0000000011111111: 00000002 00000000 00010000 0001 01 20771 @/containerd-shim/abc.sock
0000000022222222: 00000002 00000000 00010000 0001 01 20772 /tmp/with space/x.sock
0000000033333333: 00000002 00000000 00000000 0002 01 20773
`;
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 652 1 00000000d60ec1db 100 0 0 10 0
   1: 0100007F:8285 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21576 1 0000000071df0dc8 100 0 0 10 0
   2: 0100007F:3444 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 20764 1 00000000c7168244 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3001 1 0 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3002 1 0 100 0 0 10 0
   2: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3003 1 0 100 0 0 10 0
`;

describe('the /proc socket tables', () => {
  it('keeps only listening unix sockets, with abstract names and paths with spaces as they are', () => {
    expect([...parseUnixTable(UNIX)]).toEqual([
      [20763, '/tmp/exp/debug.sock'],
      [20766, '/tmp/exp/c.sock.ttrpc'],
      [20771, '@/containerd-shim/abc.sock'],
      [20772, '/tmp/with space/x.sock'],
    ]);
  });

  it('keeps only listening TCP sockets and decodes IPv4 and IPv6 addresses', () => {
    expect([...parseTcpTable(TCP)]).toEqual([
      [652, { host: '0.0.0.0', port: 2024 }],
      [21576, { host: '127.0.0.1', port: 33413 }],
    ]);
    expect([...parseTcpTable(TCP6)]).toEqual([
      [3001, { host: '::1', port: 8080 }],
      [3002, { host: '::ffff:127.0.0.1', port: 80 }],
      [3003, { host: '2001:db8::1', port: 443 }],
    ]);
  });
});

describe('judgeListeners', () => {
  const scratch = '/tmp/np-smoke-x';
  const ephemeral = { low: 32768, high: 60999 };
  const unix = (p: string): Listener => ({ kind: 'unix', path: p });
  const tcp = (host: string, port: number): Listener => ({ kind: 'tcp', host, port });

  it('allows sockets inside the scratch dir and one kernel-picked port on 127.0.0.1 (CRI streaming)', () => {
    expect(judgeListeners([unix(`${scratch}/containerd.sock`), unix(`${scratch}/containerd.sock.ttrpc`), tcp('127.0.0.1', 40000)], scratch, ephemeral)).toEqual({
      allowed: [`${scratch}/containerd.sock`, `${scratch}/containerd.sock.ttrpc`, 'tcp 127.0.0.1:40000 (CRI streaming, ephemeral port on loopback)'],
      outside: [],
    });
  });

  it('names the host socket, an abstract socket, a look-alike prefix, a fixed port, ::1, a second port and a public one', () => {
    // In the order listenersOf gives them: unix by path, then TCP by address.
    const verdict = judgeListeners([
      unix(`${scratch}-other/debug.sock`), unix('/run/containerd/containerd.sock.ttrpc'), unix('@/containerd-shim/x.sock'),
      tcp('0.0.0.0', 1234), tcp('127.0.0.1', 1338), tcp('127.0.0.1', 40000), tcp('127.0.0.1', 40001), tcp('::1', 40002),
    ], scratch, ephemeral);
    expect(verdict.outside).toEqual([
      `${scratch}-other/debug.sock`, '/run/containerd/containerd.sock.ttrpc', '@/containerd-shim/x.sock',
      'tcp 0.0.0.0:1234', 'tcp 127.0.0.1:1338', 'tcp 127.0.0.1:40001', 'tcp [::1]:40002',
    ]);
    expect(verdict.allowed).toEqual(['tcp 127.0.0.1:40000 (CRI streaming, ephemeral port on loopback)']);
  });
});

describe('listenersOf a real process', () => {
  let dir: string;
  const servers: net.Server[] = [];
  const listen = (server: net.Server, ...args: unknown[]) =>
    new Promise<void>((resolve) => {
      servers.push(server);
      (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
    });
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'np-listen-'));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await rm(dir, { recursive: true, force: true });
  });

  it('finds this process\'s own unix and TCP listeners, and no connected socket', async () => {
    const sock = path.join(dir, 'own.sock');
    await listen(net.createServer(), sock);
    const tcpServer = net.createServer();
    await listen(tcpServer, 0, '127.0.0.1');
    const port = (tcpServer.address() as net.AddressInfo).port;
    const client = net.connect(sock);
    await new Promise((r) => client.once('connect', r));
    const seen = await listenersOf(process.pid);
    client.destroy();
    expect(seen).toContainEqual({ kind: 'unix', path: sock });
    expect(seen).toContainEqual({ kind: 'tcp', host: '127.0.0.1', port });
    expect(seen.filter((l) => l.kind === 'unix' && l.path === sock)).toHaveLength(1);
  });
});
