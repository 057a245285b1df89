#!/usr/bin/env node
// Bundle src/ into dist/ with code splitting: each command's code is its own chunk, loaded on use.
// Chunks are content-hashed and written over the old dist/ before stale files are removed, so a CLI
// already running from dist/ (a parallel test run) never finds its files gone.
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const outdir = path.join(root, 'dist');
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const result = await build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  define: { __NODE_PREP_VERSION__: JSON.stringify(pkg.version) },
  // CommonJS dependencies (semver, tar's helpers) call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __npCreateRequire } from 'node:module'; const require = __npCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
const fresh = new Set(Object.keys(result.metafile.outputs).map((o) => path.resolve(root, o)));
for (const name of await readdir(outdir)) {
  const file = path.join(outdir, name);
  // dist/sea holds the single executables (scripts/build-sea.mjs), built apart from this.
  if (!fresh.has(file) && !name.startsWith('cli.js') && name !== 'sea') await rm(file, { force: true, recursive: true });
}
