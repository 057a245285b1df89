// No containerd 2.3 binary runs here: the version 4 config is held to what a real 2.3.4 printed.
// `config default` shows every key 2.3.4 knows, where it lives and its type; `config dump` of the
// version 3 file node-prep wrote before shows what 2.3.4 makes of those settings (migrated to 4).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { renderNodeFiles } from '../../src/config/render.ts';

const fixture = (name: string) => parse(readFileSync(path.join(import.meta.dirname, '../fixtures/containerd', name), 'utf8')) as Record<string, unknown>;
const DEFAULT_234 = fixture('containerd-2.3.4-config-default.toml');
const DUMP_234 = fixture('containerd-2.3.4-config-dump-of-a-v3-file.toml');

type Leaf = { at: string[]; value: unknown };
/** Every value of a parsed document with the tables leading to it. */
function leaves(t: Record<string, unknown>, at: string[] = []): Leaf[] {
  return Object.entries(t).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? leaves(v as Record<string, unknown>, [...at, k]) : [{ at: [...at, k], value: v }],
  );
}
const lookup = (t: Record<string, unknown>, at: string[]): unknown => at.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], t);
const kind = (v: unknown) => (Array.isArray(v) ? 'array' : typeof v);

async function renderV4(cgroupDriver: 'systemd' | 'cgroupfs') {
  const files = await renderNodeFiles({ containerdVersion: '2.3.4', prefix: '/usr/local', cgroupDriver, registryMirrors: [], namespace: 'k8s.io', components: ['containerd', 'runc'] });
  return parse(files.find((f) => f.nodePath === '/etc/containerd/config.toml')!.content) as Record<string, unknown>;
}

describe('the version 4 config against containerd 2.3.4', () => {
  it('sets only keys 2.3.4 has, each where 2.3.4 has it and of its type', async () => {
    const ours = leaves(await renderV4('systemd'));
    expect(ours.length).toBeGreaterThan(8);
    for (const { at, value } of ours) {
      const known = lookup(DEFAULT_234, at);
      expect(known, `${at.join('.')} is not a key of containerd 2.3.4's config`).not.toBeUndefined();
      expect(kind(value), at.join('.')).toBe(kind(known));
    }
  });

  it('means what 2.3.4 made of the version 3 file with the same settings (its dump, already version 4)', async () => {
    expect(DUMP_234.version).toBe(4);
    for (const { at, value } of leaves(await renderV4('cgroupfs'))) {
      expect(lookup(DUMP_234, at), at.join('.')).toEqual(value);
    }
  });

  it('keeps no listener in a top-level table, which version 4 ignores', async () => {
    const config = await renderV4('systemd');
    expect(Object.keys(config).filter((k) => ['grpc', 'ttrpc', 'debug', 'metrics'].includes(k))).toEqual([]);
    expect(lookup(config, ['plugins', 'io.containerd.server.v1.grpc', 'address'])).toBe(lookup(DEFAULT_234, ['plugins', 'io.containerd.server.v1.grpc', 'address']));
  });
});
