/**
 * The layers of src/, bottom to top, held to the code: a module imports only from its own layer or
 * the ones below, the folders import each other without a cycle, and one module each runs processes
 * and speaks HTTP. DEVELOPERS.md shows the same table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

export const LAYERS: string[][] = [
  ['node', 'errors', 'arch', 'version', 'data', 'util', 'events'],
  ['components', 'versions', 'checksums'],
  ['net', 'fetch', 'install', 'state', 'verify', 'bundle', 'exec'],
  ['config', 'plan'],
  ['apply', 'smoke', 'doctor'],
  ['commands', 'ui'],
  ['cli'],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** The unit of a file: its folder under src/, or its own name for a file at the top (cli.ts → cli). */
const unitOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!.replace(/\.ts$/, '');

/** Every relative import (static, re-export, dynamic) of every file, and the bare packages it names. */
function imports(): Array<{ from: string; to: string; pkg?: string }> {
  const out: Array<{ from: string; to: string; pkg?: string }> = [];
  const pattern = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
  for (const file of sourceFiles(SRC)) {
    for (const m of readFileSync(file, 'utf8').matchAll(pattern)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.')) out.push({ from: file, to: path.resolve(path.dirname(file), spec) });
      else out.push({ from: file, to: '', pkg: spec });
    }
  }
  return out;
}

const layerOf = (unit: string) => LAYERS.findIndex((l) => l.includes(unit));
const rel = (f: string) => path.relative(SRC, f);

describe('the layers of src/', () => {
  const all = imports();
  const local = all.filter((i) => i.pkg === undefined);

  it('puts every folder and top-level file of src/ in a layer', () => {
    const units = new Set(sourceFiles(SRC).map(unitOf));
    expect([...units].filter((u) => layerOf(u) < 0)).toEqual([]);
  });

  it('has no import from a lower layer into a higher one', () => {
    const upward = local
      .filter((i) => layerOf(unitOf(i.to)) > layerOf(unitOf(i.from)))
      .map((i) => `${rel(i.from)} imports ${rel(i.to)} (layer ${layerOf(unitOf(i.from))} → ${layerOf(unitOf(i.to))})`);
    expect(upward).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const edges = new Map<string, Set<string>>();
    for (const i of local) {
      const [a, b] = [unitOf(i.from), unitOf(i.to)];
      if (a !== b) edges.set(a, (edges.get(a) ?? new Set()).add(b));
    }
    const cycles: string[] = [];
    // A cycle through a: a reaches itself again.
    for (const start of edges.keys()) {
      const seen = new Set<string>();
      const walk = (u: string, trail: string[]): void => {
        for (const v of edges.get(u) ?? []) {
          if (v === start) cycles.push([...trail, v].join(' → '));
          else if (!seen.has(v)) {
            seen.add(v);
            walk(v, [...trail, v]);
          }
        }
      };
      walk(start, [start]);
    }
    expect(cycles).toEqual([]);
  });

  it('is the table DEVELOPERS.md shows', () => {
    const doc = readFileSync(path.resolve(SRC, '../DEVELOPERS.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| (\d) \| ([^|]+) \|/gm)].map((m) => [...new Set([...m[2]!.matchAll(/`([^`]+)`/g)].map((n) => n[1]!.replace(/\/$|\.ts$/g, '')))]);
    expect(rows.map((r) => [...r].sort())).toEqual(LAYERS.map((l) => [...l].sort()));
  });

  it('runs processes in one module and speaks HTTP in one module', () => {
    const users = (pkg: string) => [...new Set(all.filter((i) => i.pkg === pkg || i.pkg?.startsWith(`${pkg}/`)).map((i) => rel(i.from)))];
    expect(users('execa')).toEqual(['exec/exec.ts']);
    expect(users('node:child_process')).toEqual(['exec/exec.ts']);
    expect(users('undici')).toEqual(['net/http.ts']);
  });
});
