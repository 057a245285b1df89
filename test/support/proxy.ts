// A minimal forward proxy so tests can prove HTTP_PROXY / HTTPS_PROXY are
// honoured: absolute-form requests (plain http://) are forwarded, CONNECT
// opens a raw TCP tunnel (what clients do for https://, or for http:// when
// forced to tunnel). Only loopback targets are allowed, so a misconfigured
// test can never reach the real network through it.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

export interface ProxyEntry {
  method: string;
  /** Absolute URL for forwarded requests, `host:port` for CONNECT. */
  target: string;
}

export interface TestProxy {
  url: string;
  /** Targets in arrival order: `http://host:port/path` or, for CONNECT, `host:port`. */
  requests: string[];
  entries: ProxyEntry[];
  close(): Promise<void>;
}

const HOP_BY_HOP = ['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade'];

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function stripHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = { ...headers };
  for (const name of HOP_BY_HOP) delete out[name];
  return out;
}

/**
 * `names`: host names the proxy resolves itself, each to a loopback address. A Go client (containerd)
 * never sends loopback requests through a proxy, so a test registry is reached by such a name.
 */
export async function startProxy(opts: { names?: Record<string, string> } = {}): Promise<TestProxy> {
  const resolve = (host: string) => opts.names?.[host.toLowerCase()] ?? host;
  const requests: string[] = [];
  const entries: ProxyEntry[] = [];
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const record = (method: string, target: string) => {
    requests.push(target);
    entries.push({ method, target });
  };

  const server = http.createServer((req, res) => {
    const target = req.url ?? '';
    record(req.method ?? 'GET', target);
    let u: URL;
    try {
      u = new URL(target);
    } catch {
      // Origin-form ("/path"): the client talked to us as if we were the server.
      res.writeHead(400, { 'content-type': 'text/plain' }).end('proxy expects an absolute-form request target\n');
      return;
    }
    if (u.protocol !== 'http:' || !isLoopback(resolve(u.hostname))) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`test proxy refuses ${target}\n`);
      return;
    }
    const upstream = http.request(
      { host: resolve(u.hostname).replace(/^\[|\]$/g, ''), port: u.port || 80, method: req.method, path: u.pathname + u.search, headers: stripHopByHop(req.headers), agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, stripHopByHop(up.headers));
        up.pipe(res);
        // If the origin cuts the body short, cut the client too instead of ending cleanly.
        up.on('aborted', () => res.destroy());
        up.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('upstream error\n');
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });

  server.on('connection', track);
  server.on('connect', (req: http.IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    record('CONNECT', target);
    let host = '';
    let port = 0;
    try {
      const u = new URL(`http://${target}`);
      host = resolve(u.hostname).replace(/^\[|\]$/g, '');
      port = Number(u.port || 443);
    } catch {
      /* falls through to the refusal below */
    }
    if (!host || !isLoopback(host)) {
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    let established = false;
    const upstream = net.connect(port, host, () => {
      established = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    track(upstream);
    upstream.on('error', () => {
      if (!established) client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n');
      else client.destroy();
    });
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    entries,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
