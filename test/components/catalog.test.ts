import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pinnedVersions, PinSet } from '../../src/checksums/pins.ts';
import { COMPONENT_NAMES, COMPONENTS, DEFAULT_VERSIONS } from '../../src/components/index.ts';
import { NODE_PATHS } from '../../src/node/paths.ts';
import { runCli } from '../support/cli.ts';

describe('asset names per upstream release rules', () => {
  it.each([
    ['containerd', '2.1.4', 'amd64', 'containerd-2.1.4-linux-amd64.tar.gz', 'containerd-2.1.4-linux-amd64.tar.gz.sha256sum'],
    ['runc', '1.4.3', 'arm64', 'runc.arm64', 'runc.sha256sum'],
    ['nerdctl', '2.2.0', 'amd64', 'nerdctl-2.2.0-linux-amd64.tar.gz', 'SHA256SUMS'],
    ['cni', '1.6.2', 'arm64', 'cni-plugins-linux-arm64-v1.6.2.tgz', 'cni-plugins-linux-arm64-v1.6.2.tgz.sha256'],
    ['crictl', '1.33.0', 'amd64', 'crictl-v1.33.0-linux-amd64.tar.gz', 'crictl-v1.33.0-linux-amd64.tar.gz.sha256'],
  ] as const)('%s %s %s', (name, version, arch, asset, checksumFile) => {
    const r = COMPONENTS[name].release(version, arch);
    expect(r.asset.name).toBe(asset);
    expect(r.checksum.file).toBe(checksumFile);
    expect(r.tag).toBe(`v${version}`);
  });

  it('containerd 1.x installs the v1 shims, 2.x does not', () => {
    const names = (v: string) => COMPONENTS.containerd.release(v, 'amd64').install.map((e) => e.name);
    expect(names('1.7.34')).toContain('containerd-shim-runc-v1');
    expect(names('2.3.4')).not.toContain('containerd-shim-runc-v1');
  });

  it('crictl publishes a bare hex digest, runc a clear-signed file', () => {
    expect(COMPONENTS.crictl.release('1.36.0', 'amd64').checksum.format).toBe('bare-hex');
    expect(COMPONENTS.runc.release('1.4.3', 'amd64').checksum).toMatchObject({ clearsigned: true });
  });
});

describe('built-in defaults', () => {
  it.each(COMPONENT_NAMES)('%s default carries pins for amd64 and arm64', (name) => {
    expect(pinnedVersions(name, ['amd64', 'arm64'])).toContain(DEFAULT_VERSIONS[name]);
  });

  it('is the newest pinned version of each component', () => {
    for (const name of COMPONENT_NAMES) {
      const newest = pinnedVersions(name, ['amd64', 'arm64']).sort((a, b) => b.localeCompare(a, 'en', { numeric: true }))[0];
      expect(DEFAULT_VERSIONS[name], name).toBe(newest);
    }
  });
});

describe('PinSet', () => {
  const lookup = { component: 'runc' as const, version: '1.1.5', arch: 'amd64' as const, asset: 'runc.amd64', urlPath: '/opencontainers/runc/releases/download/v1.1.5/runc.amd64' };

  it('knows the pinned digest of nerdctl-2.2.0-linux-amd64.tar.gz', () => {
    const pin = new PinSet().lookup({ component: 'nerdctl', version: '2.2.0', arch: 'amd64', asset: 'nerdctl-2.2.0-linux-amd64.tar.gz', urlPath: '/x' });
    expect(pin).toEqual({ sha256: '1b3390a832eaeaa1459cf42357da983205da2dd72300a015ad018b3499fc455e', source: { kind: 'pinned', from: 'built-in' } });
  });

  it('lets a --checksums line win over the built-in pin', () => {
    const hex = 'c'.repeat(64);
    const pins = new PinSet(`${hex}  nerdctl-2.2.0-linux-amd64.tar.gz\n`, 'extra.sums');
    expect(pins.lookup({ component: 'nerdctl', version: '2.2.0', arch: 'amd64', asset: 'nerdctl-2.2.0-linux-amd64.tar.gz', urlPath: '/x' })).toEqual({
      sha256: hex,
      source: { kind: 'pinned', from: 'checksums-file', file: 'extra.sums' },
    });
  });

  it('prefers the TAG/ASSET form for assets whose name carries no version', () => {
    const old = 'd'.repeat(64);
    const exact = 'e'.repeat(64);
    const pins = new PinSet(`${old}  runc.amd64\n${exact}  v1.1.5/runc.amd64\n`, 'f');
    expect(pins.lookup(lookup)?.sha256).toBe(exact);
    expect(pins.lookup({ ...lookup, version: '1.1.6', urlPath: '/opencontainers/runc/releases/download/v1.1.6/runc.amd64' })?.sha256).toBe(old);
  });

  it('has no pin for an unknown version', () => {
    expect(new PinSet().lookup(lookup)).toBeUndefined();
  });
});

describe('the catalog is the one list of components', () => {
  const defs = JSON.parse(readFileSync(path.join(import.meta.dirname, '../../schemas/defs.schema.json'), 'utf8')).$defs;

  it('the JSON schemas name exactly its components', () => {
    expect(defs.componentName.enum).toEqual(COMPONENT_NAMES);
    expect(defs.fileComponent.enum).toEqual([...COMPONENT_NAMES, 'node']);
  });

  it('each component has a flag, a help line and a default; the required ones have no `none` default', () => {
    for (const name of COMPONENT_NAMES) {
      const c = COMPONENTS[name];
      expect(c.flag, name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(c.help, name).not.toBe('');
      if (c.required) expect(c.defaultVersion, name).not.toBe('none');
    }
  });

  it('the config files a plan renders for a component are the ones its entry names', async () => {
    const plan = JSON.parse((await runCli(['plan', '--arch', 'amd64', '--json'])).stdout) as { files: Array<{ path: string; component: string; source: { kind: string } }> };
    for (const name of COMPONENT_NAMES) {
      const rendered = plan.files.filter((f) => f.component === name && f.source.kind === 'config' && !f.path.startsWith(NODE_PATHS.certsDir)).map((f) => f.path);
      expect(rendered.sort(), name).toEqual([...COMPONENTS[name].configFiles].sort());
    }
  });
});
