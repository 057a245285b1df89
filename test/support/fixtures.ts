// Synthetic releases in each project's REAL asset naming, archive layout and
// checksum-file format (see /work/shared/upstream/RELEASES.md §1-5), but with
// tiny shell scripts instead of binaries so that tests are fast and can tell
// which file ended up where by running it.
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import * as tar from 'tar';
import type { FakeRelease, ReposMap } from './release-server.ts';

/** Archive entry path → content; `null` removes a default entry. */
export type FileOverrides = Record<string, string | Buffer | null>;

export interface TestSigner {
  privateKey: openpgp.PrivateKey;
  publicKey: openpgp.PublicKey;
  publicKeyArmored: string;
  privateKeyArmored: string;
  /** 40 upper-case hex digits, as gpg and RELEASES.md print them. */
  fingerprint: string;
}

export const DEFAULT_ARCHES = ['amd64', 'arm64'];
// Fixed mtime + tar `portable` + gzip without a timestamp → byte-identical archives on every run.
const MTIME = new Date('2026-01-01T00:00:00Z');
const strip = (v: string) => v.replace(/^v/, '');

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
export const sha512 = (b: Buffer | string) => createHash('sha512').update(b).digest('hex');

/** What a synthetic binary prints when run (any arguments). */
export const syntheticOutput = (name: string, version: string) => `${name} synthetic-fixture ${strip(version)}`;

/**
 * The synthetic "binary". The comment line carries the arch so that amd64 and
 * arm64 artifacts have different checksums and an arch mix-up is detectable.
 */
export function syntheticBinary(name: string, version: string, arch: string): string {
  return `#!/bin/sh\n# synthetic linux/${arch} build\necho "${syntheticOutput(name, version)}"\n`;
}

interface Entry {
  data: string | Buffer;
  mode: number;
}

/**
 * tar.gz of `entries` (order kept, directories listed as "x/") built from a
 * throw-away directory under os.tmpdir(); node-tar can only pack real files.
 */
export async function makeTarGz(entries: Record<string, Entry | 'dir'>): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'np-fixture-'));
  try {
    await chmod(dir, 0o755); // the "./" entry of flat archives takes this mode
    for (const [name, e] of Object.entries(entries)) {
      const full = path.join(dir, name);
      if (e === 'dir') {
        await mkdir(full, { recursive: true, mode: 0o755 });
        continue;
      }
      await mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
      await writeFile(full, e.data);
      await chmod(full, e.mode); // explicit: umask must not decide the fixture's modes
    }
    const chunks: Buffer[] = [];
    const pack = tar.c({ gzip: true, portable: true, cwd: dir, mtime: MTIME, noDirRecurse: true }, Object.keys(entries));
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const exe = (data: string | Buffer): Entry => ({ data, mode: 0o755 });
const doc = (data: string | Buffer): Entry => ({ data, mode: 0o644 });

/** Builds an archive from default binaries plus overrides; directories come first, like `tar -C x bin`. */
function archive(dirs: string[], bins: string[], version: string, arch: string, extra: Record<string, Entry>, files?: FileOverrides) {
  const entries: Record<string, Entry | 'dir'> = {};
  for (const d of dirs) entries[d] = 'dir';
  for (const b of bins) entries[b] = exe(syntheticBinary(path.basename(b), version, arch));
  Object.assign(entries, extra);
  for (const [name, data] of Object.entries(files ?? {})) {
    if (data === null) delete entries[name];
    else entries[name] = String(data).startsWith('#!') ? exe(data) : doc(data);
  }
  return makeTarGz(entries);
}

async function detachSign(signer: TestSigner, data: Buffer): Promise<Buffer> {
  const message = await openpgp.createMessage({ binary: data });
  return Buffer.from(await openpgp.sign({ message, signingKeys: signer.privateKey, detached: true, format: 'armored' }));
}

/**
 * Shaped like `gpg --clear-sign` output: the file's final newline is the line
 * ending before the armor (not signed text), and lines end in LF, not the CRLF
 * openpgp.js emits. Cleartext signatures canonicalise line endings, so it still verifies.
 */
async function clearSign(signer: TestSigner, text: string): Promise<Buffer> {
  const message = await openpgp.createCleartextMessage({ text: text.replace(/\n$/, '') });
  return Buffer.from((await openpgp.sign({ message, signingKeys: signer.privateKey })).replace(/\r\n/g, '\n'));
}

const signers = new Map<string, Promise<TestSigner>>();

/**
 * An ed25519 (EdDSA legacy, so gpg 2.2+ can import it) key pair, memoized per
 * process and per name. Use a second name to model "signed by an untrusted key".
 */
export function testSigner(name = 'node-prep test signer'): Promise<TestSigner> {
  let p = signers.get(name);
  if (!p) {
    p = (async () => {
      const { privateKey, publicKey } = await openpgp.generateKey({
        type: 'ecc',
        curve: 'ed25519Legacy',
        userIDs: [{ name, email: 'test-signer@example.invalid' }],
        format: 'object',
      });
      return {
        privateKey,
        publicKey,
        publicKeyArmored: publicKey.armor(),
        privateKeyArmored: privateKey.armor(),
        fingerprint: privateKey.getFingerprint().toUpperCase(),
      };
    })();
    signers.set(name, p);
  }
  return p;
}

const prerelease = (v: string) => /-(alpha|beta|rc)/.test(v);

/** containerd: `containerd-<ver>-linux-<arch>.tar.gz` (`bin/...`) + per-asset `.sha256sum`; also the static variant and (2.x) the attestation bundle. */
export async function containerdRelease(version: string, arches = DEFAULT_ARCHES, opts: { files?: FileOverrides; static?: boolean } = {}): Promise<FakeRelease> {
  const v = strip(version);
  const names = ['containerd', 'containerd-shim-runc-v2', 'containerd-stress', 'ctr'];
  if (v.startsWith('1.')) names.push('containerd-shim', 'containerd-shim-runc-v1');
  const bins = names.sort().map((n) => `bin/${n}`);
  const assets: Record<string, Buffer> = {};
  for (const arch of arches) {
    const kinds = opts.static === false ? [''] : ['', 'static-'];
    for (const kind of kinds) {
      const name = `containerd-${kind}${v}-linux-${arch}.tar.gz`;
      // The static build gets a distinct marker so its checksum differs from the dynamic one.
      const data = await archive(['bin/'], bins, v, kind ? `${arch} static` : arch, {}, opts.files);
      assets[name] = data;
      assets[`${name}.sha256sum`] = Buffer.from(`${sha256(data)}  ${name}\n`);
    }
  }
  if (!v.startsWith('1.')) {
    assets[`containerd-${v}-attestation.intoto.jsonl`] = Buffer.from(`${JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', synthetic: true })}\n`);
  }
  return { tag: `v${v}`, name: `containerd ${v}`, prerelease: prerelease(v), assets };
}

/** runc: bare `runc.<arch>` + `runc.sha256sum` (clear-signed when a signer is given) + `.asc` per file. */
export async function runcRelease(version: string, arches = DEFAULT_ARCHES, opts: { signer?: TestSigner } = {}): Promise<FakeRelease> {
  const v = strip(version);
  const assets: Record<string, Buffer> = {};
  const summed: string[] = [];
  for (const arch of arches) {
    assets[`runc.${arch}`] = Buffer.from(syntheticBinary('runc', v, arch));
    summed.push(`runc.${arch}`);
  }
  // From 1.5.0 the source archive carries the version (RELEASES.md §2).
  const src = Number(v.split('.')[1]) >= 5 || !v.startsWith('1.') ? `runc-${v}.tar.xz` : 'runc.tar.xz';
  assets[src] = Buffer.from(`synthetic runc ${v} source archive (not really xz)\n`);
  summed.push(src);
  // Shipped in the release but deliberately not covered by runc.sha256sum.
  assets['libseccomp-2.6.0.tar.gz'] = Buffer.from('synthetic libseccomp source\n');
  const sums = summed.map((n) => `${sha256(assets[n]!)}  ${n}\n`).join('');
  assets['runc.sha256sum'] = opts.signer ? await clearSign(opts.signer, sums) : Buffer.from(sums);
  if (opts.signer) for (const n of summed) assets[`${n}.asc`] = await detachSign(opts.signer, assets[n]!);
  return { tag: `v${v}`, name: `runc ${v}`, prerelease: prerelease(v), assets };
}

/** nerdctl: flat minimal archives (+ `nerdctl-full-*` for amd64/arm64), one `SHA256SUMS`, detached `SHA256SUMS.asc`. */
export async function nerdctlRelease(version: string, arches = DEFAULT_ARCHES, opts: { signer?: TestSigner; files?: FileOverrides; full?: boolean } = {}): Promise<FakeRelease> {
  const v = strip(version);
  const assets: Record<string, Buffer> = {};
  for (const arch of arches) {
    assets[`nerdctl-${v}-linux-${arch}.tar.gz`] = await archive([], ['nerdctl', 'containerd-rootless-setuptool.sh', 'containerd-rootless.sh'], v, arch, {}, opts.files);
    if (opts.full !== false && (arch === 'amd64' || arch === 'arm64')) {
      const bins = ['containerd', 'containerd-shim-runc-v2', 'ctr', 'nerdctl', 'runc'].map((b) => `bin/${b}`);
      const cni = ['bridge', 'host-local', 'loopback', 'portmap'].map((b) => `libexec/cni/${b}`);
      assets[`nerdctl-full-${v}-linux-${arch}.tar.gz`] = await archive(['bin/', 'libexec/', 'libexec/cni/', 'share/', 'share/doc/', 'share/doc/nerdctl-full/'], [...bins, ...cni], v, arch, {
        'share/doc/nerdctl-full/README.md': doc(`# nerdctl-full ${v} (synthetic)\n`),
      });
    }
  }
  // `sha256sum nerdctl-*` in a shell: C-locale sorted file names.
  const sums = Object.keys(assets).sort().map((n) => `${sha256(assets[n]!)}  ${n}\n`).join('');
  assets.SHA256SUMS = Buffer.from(sums);
  if (opts.signer) assets['SHA256SUMS.asc'] = await detachSign(opts.signer, assets.SHA256SUMS);
  return { tag: `v${v}`, name: `v${v}`, prerelease: prerelease(v), assets };
}

export const CNI_PLUGINS = ['bandwidth', 'bridge', 'dhcp', 'dummy', 'firewall', 'host-device', 'host-local', 'ipvlan', 'loopback', 'macvlan', 'portmap', 'ptp', 'sbr', 'static', 'tap', 'tuning', 'vlan', 'vrf'];

/** CNI plugins: `cni-plugins-linux-<arch>-v<ver>.tgz` with `./` entries + `.sha256` / `.sha512` (`<hex>  <asset>`). */
export async function cniRelease(version: string, arches = DEFAULT_ARCHES, opts: { files?: FileOverrides } = {}): Promise<FakeRelease> {
  const v = strip(version);
  const assets: Record<string, Buffer> = {};
  for (const arch of arches) {
    const name = `cni-plugins-linux-${arch}-v${v}.tgz`;
    const data = await archive(['./'], CNI_PLUGINS.map((p) => `./${p}`), v, arch, {
      './README.md': doc('# Plugins (synthetic fixture)\n'),
      './LICENSE': doc('Apache License 2.0 (synthetic fixture)\n'),
    }, opts.files);
    assets[name] = data;
    assets[`${name}.sha256`] = Buffer.from(`${sha256(data)}  ${name}\n`);
    assets[`${name}.sha512`] = Buffer.from(`${sha512(data)}  ${name}\n`);
  }
  return { tag: `v${v}`, name: `v${v}`, prerelease: prerelease(v), assets };
}

/** crictl: `crictl-v<ver>-linux-<arch>.tar.gz` holding only `crictl`; `.sha256`/`.sha512` hold the BARE hex. */
export async function crictlRelease(version: string, arches = DEFAULT_ARCHES, opts: { files?: FileOverrides } = {}): Promise<FakeRelease> {
  const v = strip(version);
  const assets: Record<string, Buffer> = {};
  for (const arch of arches) {
    const name = `crictl-v${v}-linux-${arch}.tar.gz`;
    const data = await archive([], ['crictl'], v, arch, {}, opts.files);
    assets[name] = data;
    assets[`${name}.sha256`] = Buffer.from(`${sha256(data)}\n`);
    assets[`${name}.sha512`] = Buffer.from(`${sha512(data)}\n`);
  }
  return { tag: `v${v}`, name: `v${v}`, prerelease: prerelease(v), assets };
}

export const REPOS = {
  containerd: 'containerd/containerd',
  runc: 'opencontainers/runc',
  nerdctl: 'containerd/nerdctl',
  cni: 'containernetworking/plugins',
  crictl: 'kubernetes-sigs/cri-tools',
} as const;

const catalogs = new Map<string, Promise<ReposMap>>();

/**
 * Several versions of every component for amd64 + arm64, including the traps a
 * resolver must survive: a draft, a prerelease and a non-version `api/` tag that
 * is the NEWEST containerd release by date. runc/nerdctl are signed by
 * testSigner() unless `signer: null`. Built once per process; each call returns
 * fresh arrays/objects so tests may mutate them freely.
 */
export async function defaultCatalogReleases(opts: { signer?: TestSigner | null } = {}): Promise<ReposMap> {
  const signer = opts.signer === null ? undefined : (opts.signer ?? (await testSigner()));
  const key = signer?.fingerprint ?? 'unsigned';
  let built = catalogs.get(key);
  if (!built) {
    built = (async () => {
      const a = DEFAULT_ARCHES;
      const withSigner = signer ? { signer } : {};
      const [containerd, runc, nerdctl, cni, crictl] = await Promise.all([
        Promise.all([
          ...['2.3.4', '2.2.7', '2.1.9', '2.1.4', '1.7.34', '2.4.0-beta.0'].map((v) => containerdRelease(v, a)),
          containerdRelease('2.4.0', a).then((r) => ({ ...r, draft: true, createdAt: '2026-08-21T00:00:00Z' })),
          Promise.resolve<FakeRelease>({ tag: 'api/v1.9.0', name: 'containerd API 1.9.0', createdAt: '2026-08-20T00:00:00Z', assets: {} }),
        ]),
        Promise.all(['1.4.3', '1.3.6'].map((v) => runcRelease(v, a, withSigner))),
        Promise.all(['2.3.0', '2.2.0'].map((v) => nerdctlRelease(v, a, withSigner))),
        Promise.all(['1.9.1', '1.8.0'].map((v) => cniRelease(v, a))),
        Promise.all(['1.36.0', '1.35.0'].map((v) => crictlRelease(v, a))),
      ]);
      return { [REPOS.containerd]: containerd, [REPOS.runc]: runc, [REPOS.nerdctl]: nerdctl, [REPOS.cni]: cni, [REPOS.crictl]: crictl };
    })();
    catalogs.set(key, built);
  }
  const repos = await built;
  return Object.fromEntries(Object.entries(repos).map(([k, list]) => [k, list.map((r) => ({ ...r, assets: { ...r.assets } }))]));
}
