#!/usr/bin/env node
// Bundle src/ into dist/ with code splitting: each command's code is its own chunk, loaded on use.
import { readFile, rm } from 'node:fs/promises';
import { build } from 'esbuild';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
await rm(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { cli: 'src/cli.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  legalComments: 'linked',
  define: { __NODE_PREP_VERSION__: JSON.stringify(pkg.version) },
  // CommonJS dependencies (semver, tar's helpers) call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __npCreateRequire } from 'node:module'; const require = __npCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
