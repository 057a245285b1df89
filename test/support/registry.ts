// A real registry for tests: Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1,
// anonymous, with htpasswd basic auth (bcrypt, from apache2-utils), or behind TLS with a CA made
// here with openssl; a loopback reverse proxy that serves it under a path prefix; and a tiny OCI
// image (busybox-static in one layer) pushed with the distribution API.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa, type ResultPromise } from 'execa';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const haveRegistryTools = ['/usr/bin/docker-registry', '/usr/bin/htpasswd', '/usr/bin/openssl'].every((f) => existsSync(f));

export interface TestRegistry {
  /** host:port, as an image reference names it. */
  host: string;
  url: string;
  /** Requests the registry logged (method and path), for asserting what reached it. */
  log: () => Promise<string>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A CA and a server certificate for 127.0.0.1 signed by it (P-256, two days). */
export async function makeTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await execa('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=node-prep test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await execa('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await execa('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf')]);
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** docker-registry serve, with a config written here; resolves once /v2/ answers. */
export async function startRegistry(dir: string, opts: { auth?: { user: string; password: string }; tls?: { cert: string; key: string } } = {}): Promise<TestRegistry> {
  await mkdir(path.join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'data')}`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (opts.tls) lines.push('  tls:', `    certificate: ${opts.tls.cert}`, `    key: ${opts.tls.key}`);
  if (opts.auth) {
    const { stdout } = await execa('htpasswd', ['-Bbn', opts.auth.user, opts.auth.password]);
    await writeFile(path.join(dir, 'htpasswd'), `${stdout.trim()}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: node-prep-test', `    path: ${path.join(dir, 'htpasswd')}`);
  }
  const config = path.join(dir, 'config.yml');
  await writeFile(config, `${lines.join('\n')}\n`);
  const logFile = path.join(dir, 'registry.log');
  const child: ResultPromise = execa(REGISTRY_BIN, ['serve', config], { reject: false, stdout: { file: logFile }, stderr: { file: logFile }, env: { OTEL_TRACES_EXPORTER: 'none' } });
  let exited = false;
  void child.then(() => (exited = true));
  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await request('GET', `${url}/v2/`, { ca: opts.tls ? await readFile(path.join(path.dirname(opts.tls.cert), 'ca.pem')) : undefined }).then((r) => r.status, () => 0);
    if (status === 200 || status === 401) break;
    if (exited) throw new Error(`docker-registry exited: ${await readFile(logFile, 'utf8')}`);
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}: ${await readFile(logFile, 'utf8').catch(() => '')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    log: () => readFile(logFile, 'utf8'),
    async close() {
      child.kill('SIGTERM');
      await child;
    },
  };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(method: string, url: string, opts: { headers?: Record<string, string>; body?: Buffer; ca?: Buffer | undefined } = {}): Promise<Reply> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers: { ...opts.headers, ...(opts.body ? { 'content-length': String(opts.body.length) } : {}) }, ...(opts.ca ? { ca: opts.ca } : {}), agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${url}: no answer in 10 s`)));
    req.end(opts.body);
  });
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A one-layer OCI image holding /bin/busybox (and /bin/sh linking to it). */
export async function busyboxImage(busybox: string): Promise<{ config: Buffer; layer: Buffer; manifest: Buffer; digest: string }> {
  const bin = await readFile(busybox);
  const tar = tarOf([
    { name: 'bin/', type: '5', mode: 0o755, data: Buffer.alloc(0) },
    { name: 'bin/busybox', type: '0', mode: 0o755, data: bin },
    { name: 'bin/sh', type: '2', mode: 0o777, data: Buffer.alloc(0), link: 'busybox' },
  ]);
  const layer = gzipSync(tar);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  }));
  return { config, layer, manifest, digest: sha256(manifest) };
}

/** A ustar archive of the given entries (enough for a layer; no long names). */
function tarOf(entries: Array<{ name: string; type: '0' | '2' | '5'; mode: number; data: Buffer; link?: string }>): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write(`${e.mode.toString(8).padStart(7, '0')}\0`, 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${e.data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write(`${Math.floor(Date.UTC(2024, 0, 1) / 1000).toString(8).padStart(11, '0')}\0`, 136);
    h.write('        ', 148);
    h.write(e.type, 156);
    if (e.link) h.write(e.link, 157, 100);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Push the image as REPO:TAG with the distribution API (monolithic blob uploads). */
export async function pushImage(registry: string, repo: string, tag: string, image: Awaited<ReturnType<typeof busyboxImage>>, opts: { auth?: { user: string; password: string }; ca?: string } = {}): Promise<void> {
  const ca = opts.ca ? await readFile(opts.ca) : undefined;
  const headers: Record<string, string> = opts.auth ? { authorization: `Basic ${Buffer.from(`${opts.auth.user}:${opts.auth.password}`).toString('base64')}` } : {};
  for (const blob of [image.config, image.layer]) {
    const start = await request('POST', `${registry}/v2/${repo}/blobs/uploads/`, { headers, ca });
    if (start.status !== 202) throw new Error(`upload start: ${start.status} ${start.body.toString()}`);
    const location = new URL(String(start.headers.location), registry);
    location.searchParams.set('digest', sha256(blob));
    const put = await request('PUT', location.href, { headers: { ...headers, 'content-type': 'application/octet-stream' }, body: blob, ca });
    if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${put.body.toString()}`);
  }
  const put = await request('PUT', `${registry}/v2/${repo}/manifests/${tag}`, { headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: image.manifest, ca });
  if (put.status !== 201) throw new Error(`manifest: ${put.status} ${put.body.toString()}`);
}

/**
 * A loopback reverse proxy whose API root is `prefix` (as a Harbor proxy project's `/v2/dockerhub`
 * is): a request under it goes to `target` with `prefix` replaced by `/v2`. The registry itself
 * cannot serve under a path.
 */
export async function startPrefixProxy(target: string, prefix: string): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  const t = new URL(target);
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/';
    paths.push(p);
    if (p !== prefix && !p.startsWith(`${prefix}/`)) {
      res.writeHead(404).end('not under the prefix\n');
      return;
    }
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: `/v2${p.slice(prefix.length)}`, headers: { ...req.headers, host: t.host }, agent: false }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    paths,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
