import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { hostsFiles, parseEndpoint } from '../../src/config/hosts.ts';
import { parseRegistries } from '../../src/config/registries.ts';
import { renderNodeFiles, type NodeConfigInputs } from '../../src/config/render.ts';
import { UsageError } from '../../src/errors.ts';

const FILE = '/tmp/registries.yaml';

async function render(yaml: string, overrides: Partial<NodeConfigInputs> = {}) {
  const list = await renderNodeFiles({
    containerdVersion: '2.1.9', prefix: '/usr/local', cgroupDriver: 'systemd', registryMirrors: [], namespace: 'k8s.io', components: ['containerd', 'runc'],
    registries: { spec: parseRegistries(yaml, FILE), name: FILE }, ...overrides,
  });
  return new Map(list.filter((f) => f.nodePath.startsWith('/etc/containerd/certs.d/')).map((f) => [f.nodePath.replace('/etc/containerd/certs.d/', '').replace('/hosts.toml', ''), f]));
}

function refusal(yaml: string): UsageError {
  try {
    parseRegistries(yaml, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('the file was accepted');
}

describe('registries.yaml to hosts.toml', () => {
  it('a mirror with basic auth and a private CA: the header and ca where containerd reads them, root only', async () => {
    const files = await render(`
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.example:5000"
configs:
  "mirror.example:5000":
    auth:
      username: puller
      password: s3cret-pass
    tls:
      ca_file: /etc/ssl/private-ca.pem
`);
    const docker = files.get('docker.io')!;
    expect(docker.mode).toBe(0o600);
    expect(parse(docker.content)).toEqual({
      server: 'https://registry-1.docker.io',
      host: {
        'https://mirror.example:5000': {
          capabilities: ['pull', 'resolve'],
          ca: '/etc/ssl/private-ca.pem',
          header: { Authorization: `Basic ${Buffer.from('puller:s3cret-pass').toString('base64')}` },
        },
      },
    });
    // The shown text is the same file with the secret taken out.
    expect(docker.shown).toBeDefined();
    expect(docker.shown).not.toContain(Buffer.from('puller:s3cret-pass').toString('base64'));
    expect((parse(docker.shown!) as any).host['https://mirror.example:5000'].header).toEqual({ Authorization: '<redacted>' });
    // The config's own host gets a file of its own: pulls straight from it authenticate too.
    const own = parse(files.get('mirror.example:5000')!.content) as any;
    expect(own.server).toBe('https://mirror.example:5000');
    expect(own.ca).toBe('/etc/ssl/private-ca.pem');
    expect(own.header.Authorization).toMatch(/^Basic /);
  });

  it('maps auth, token, a client pair, skip_verify and the * wildcard to _default', async () => {
    const files = await render(`
mirrors:
  "*":
    endpoint: ["http://cache.local:5000/v2"]
configs:
  "*":
    tls: { insecure_skip_verify: true }
  quay.io:
    auth: { auth: ${Buffer.from('a:b').toString('base64')} }
  ghcr.io:
    auth: { token: tok-123 }
    tls: { cert_file: /etc/pki/client.crt, key_file: /etc/pki/client.key }
  registry.internal:
    tls: { cert_file: /etc/pki/both.pem }
  docker.io:
`);
    const def = parse(files.get('_default')!.content) as any;
    expect(def).toEqual({ skip_verify: true, host: { 'http://cache.local:5000': { capabilities: ['pull', 'resolve'], skip_verify: true } } });
    expect(files.get('_default')!.mode).toBe(0o644);
    expect((parse(files.get('quay.io')!.content) as any).header.Authorization).toBe(`Basic ${Buffer.from('a:b').toString('base64')}`);
    const ghcr = parse(files.get('ghcr.io')!.content) as any;
    expect(ghcr.header.Authorization).toBe('Bearer tok-123');
    expect(ghcr.client).toEqual([['/etc/pki/client.crt', '/etc/pki/client.key']]);
    expect(files.get('ghcr.io')!.mode).toBe(0o600);
    // A client cert with its key inside: the path is not a secret.
    expect((parse(files.get('registry.internal')!.content) as any).client).toBe('/etc/pki/both.pem');
    expect(files.get('registry.internal')!.mode).toBe(0o644);
    // Listed with nothing: no `*` defaults for docker.io.
    expect(parse(files.get('docker.io')!.content)).toEqual({ server: 'https://registry-1.docker.io' });
  });

  it('the same file renders the same bytes', async () => {
    const yaml = 'mirrors:\n  docker.io:\n    endpoint: [https://m.example]\nconfigs:\n  m.example:\n    auth: {username: u, password: p}\n';
    expect((await render(yaml)).get('docker.io')!.content).toBe((await render(yaml)).get('docker.io')!.content);
  });

  it('--registry-mirror flags come after the file for the same registry', async () => {
    const files = await render('mirrors:\n  docker.io:\n    endpoint: [https://a.example]\n', { registryMirrors: [{ host: 'docker.io', url: 'https://b.example' }] });
    expect(Object.keys((parse(files.get('docker.io')!.content) as any).host)).toEqual(['https://a.example', 'https://b.example']);
  });

  it.each([
    ['https://m.example', { url: 'https://m.example', overridePath: false }],
    ['https://m.example/', { url: 'https://m.example', overridePath: false }],
    ['https://m.example/v2', { url: 'https://m.example', overridePath: false }],
    ['m.example:5000', { url: 'https://m.example:5000', overridePath: false }],
    ['http://m.example/v2/dockerhub', { url: 'http://m.example/v2/dockerhub', overridePath: true }],
    ['http://m.example/api/docker/hub/v2/', { url: 'http://m.example/api/docker/hub/v2', overridePath: true }],
  ])('endpoint %s', (raw, want) => {
    expect(parseEndpoint(raw, 'test')).toMatchObject(want);
  });
});

describe('what is refused, by line and key', () => {
  it.each([
    ['mirrors:\n  docker.io:\n    endpoint: [https://m]\n    rewrite:\n      "^library/(.*)": "mirror/$1"\n', /registries\.yaml:4: mirrors\.docker\.io\.rewrite: containerd's hosts\.toml has no rewrite/],
    ['configs:\n  r.example:\n    auth:\n      identitytoken: abc\n', /:4: configs\.r\.example\.auth\.identitytoken: an identity token/],
    ['configs:\n  r.example:\n    tls:\n      key_file: /k\n', /:4: configs\.r\.example\.tls\.key_file: a client key needs its cert_file/],
    ['configs:\n  r.example:\n    tls:\n      ca_file: ca.pem\n', /:4: configs\.r\.example\.tls\.ca_file: give an absolute path/],
    ['configs:\n  r.example:\n    auth:\n      username: u\n', /:4: configs\.r\.example\.auth\.username: a username needs its password/],
    ['configs:\n  r.example:\n    auth:\n      username: u\n      password: p\n      token: t\n', /:6: configs\.r\.example\.auth\.token: give one of/],
    ['configs:\n  r.example:\n    tsl:\n      ca_file: /ca\n', /:3: configs\.r\.example\.tsl: is not a key of this format/],
    ['mirrors:\n  docker.io:\n    endpoint: https://m\n', /:3: mirrors\.docker\.io\.endpoint: must be array/],
    ['configs:\n  r.example:\n    tls:\n      insecure_skip_verify: "yes"\n', /:4: configs\.r\.example\.tls\.insecure_skip_verify: must be boolean/],
    ['mirrors:\n  docker.io:\n  docker.io:\n', /:3: not valid YAML \(duplicate key\)/],
  ])('%j', (yaml, message) => {
    expect(refusal(yaml).message).toMatch(message);
  });

  it('never quotes a secret, even from a line it cannot parse', () => {
    const e = refusal('configs:\n  r.example:\n    auth:\n      password: "hunter2-secret\n');
    expect(e.message).toMatch(/registries\.yaml:\d+: not valid YAML/);
    expect(`${e.message} ${e.hint}`).not.toContain('hunter2');
  });

  it('an endpoint with credentials in it points to configs', () => {
    const spec = parseRegistries('mirrors:\n  docker.io:\n    endpoint: ["https://u:hunter2@m.example"]\n', FILE);
    let caught: UsageError | undefined;
    try {
      hostsFiles([], spec, FILE);
    } catch (err) {
      caught = err as UsageError;
    }
    expect(caught?.exitCode).toBe(2);
    expect(caught?.message).toContain('https://<redacted>@m.example');
    expect(caught?.message).not.toContain('hunter2');
    expect(caught?.hint).toContain('--registries FILE');
  });
});
