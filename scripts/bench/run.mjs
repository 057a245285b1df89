#!/usr/bin/env node
// Benchmark: node-prep against the plain shell way it replaces, side by side, in one run.
//
//   npm run bench                          # or: node scripts/bench/run.mjs [options]
//
// Builds the CLI when dist/ is older than src/, packs the Debian fixtures when they are missing
// (scripts/fixtures/debian-release.mjs: real-size containerd, runc and CNI plugins as upstream
// tarballs), starts the test release server (test/support/release-server.ts) twice on loopback,
// once unthrottled and once limiting every connection to --throttle MB/s, then measures:
//   - full install (download, verify, extract, configure) into a fresh --root with a fresh (cold)
//     --cache-dir, against scripts/bench/shell-install.sh (curl, sha256sum -c, tar -xzf, one artifact
//     after another) on the same server: median of --runs each, node-prep / shell as a ratio;
//   - a re-run over a root where everything is installed already;
//   - start-up of `--help` and `--version` (bare `node -e 0` alongside, the floor);
//   - peak RSS of a full install and of a download of one 200 MiB artifact.
// Prints a Markdown table with the goals, writes every sample to .cache/bench/results.json.
//
// Options: --runs N (installs, default 5)  --rerun-runs N (10)  --startup-runs N (20)
//          --rss-runs N (3)  --throttle MB/s (20)  --big-mib N (200)  --tmp DIR (os.tmpdir())
//          --only install,rerun,startup,rss  --out FILE  --check (exit 1 when a goal is missed)
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

// A fresh clone has no node_modules yet: install them first (zx, esbuild, and what the CLI bundles).
if (!existsSync(new URL('../../node_modules/zx/package.json', import.meta.url))) {
  process.stderr.write('bench: node_modules is missing, running npm ci\n')
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: new URL('../..', import.meta.url), stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
const { $, fs, path, minimist, os } = await import('zx')

const REPO = path.resolve(import.meta.dirname, '../..')
const args = minimist(process.argv.slice(2), {
  string: ['tmp', 'out', 'only'],
  boolean: ['check', 'help'],
  default: { runs: 5, 'rerun-runs': 10, 'startup-runs': 20, 'rss-runs': 3, throttle: 20, 'big-mib': 200 },
})
if (args.help) {
  console.log('usage: node scripts/bench/run.mjs [--runs 5] [--rerun-runs 10] [--startup-runs 20] [--rss-runs 3] [--throttle 20] [--big-mib 200] [--tmp DIR] [--only install,rerun,startup,rss] [--out FILE] [--check]')
  process.exit(0)
}
const RUNS = Number(args.runs)
const THROTTLE = Math.round(Number(args.throttle) * 1e6) // bytes per second, per connection
const ONLY = new Set((args.only ?? 'install,rerun,startup,rss').split(',').map((s) => s.trim()))
const FIXTURES = path.join(REPO, '.cache/debian-release')
const BENCH_CACHE = path.join(REPO, '.cache/bench')
const OUT = path.resolve(args.out ?? path.join(BENCH_CACHE, 'results.json'))
const CLI = path.join(REPO, 'bin/node-prep.js')
const SHELL = path.join(REPO, 'scripts/bench/shell-install.sh')
const MAXRSS = pathToFileURL(path.join(REPO, 'scripts/bench/maxrss.mjs')).href
const GNU_TIME = ['/usr/bin/time'].find((p) => fs.existsSync(p))
$.verbose = false
$.cwd = REPO

const log = (...a) => process.stderr.write(`${a.join(' ')}\n`)
const median = (xs) => {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// Children see no proxy, no node-prep settings and no NODE_OPTIONS from this shell: only loopback.
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(NODE_PREP_|NODE_OPTIONS$|GITHUB_TOKEN$|(https?|all|no)_proxy$)/i.test(k)),
)
childEnv.NO_PROXY = childEnv.no_proxy = '127.0.0.1,127.0.0.2,localhost'

// --- 1. build, fixtures, the 200 MiB artifact -------------------------------------------------
async function newestMtime(dir) {
  let newest = 0
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, (await fs.stat(path.join(e.parentPath, e.name))).mtimeMs)
  }
  return newest
}
async function ensureBuilt() {
  const built = (await fs.stat(path.join(REPO, 'dist/cli.js')).catch(() => undefined))?.mtimeMs ?? 0
  const inputs = Math.max(await newestMtime(path.join(REPO, 'src')), (await fs.stat(path.join(REPO, 'scripts/build.mjs'))).mtimeMs, (await fs.stat(path.join(REPO, 'package.json'))).mtimeMs)
  if (built >= inputs) return log('build: dist/ is up to date')
  log('build: npm run build')
  await $({ stdio: ['ignore', 'inherit', 'inherit'] })`npm run --silent build`
}
async function ensureFixtures() {
  if (fs.existsSync(path.join(FIXTURES, 'manifest.json'))) return
  log('fixtures: .cache/debian-release is missing, packing it (node scripts/fixtures/debian-release.mjs)')
  await $({ stdio: ['ignore', 'inherit', 'inherit'] })`${process.execPath} scripts/fixtures/debian-release.mjs`
}

const BIG_VERSION = '9.9.9'
async function ensureBigArtifact(arch) {
  const dir = path.join(BENCH_CACHE, 'big')
  const bytes = Number(args['big-mib']) * 1024 * 1024
  const name = `containerd-${BIG_VERSION}-linux-${arch}.tar.gz`
  const runc = `runc.${arch}`
  const sums = path.join(dir, 'checksums.txt')
  if (fs.existsSync(sums) && fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.size === bytes) return { dir, name, runc, sums, bytes }
  log(`big artifact: writing ${bytes / 1048576} MiB of random bytes to ${path.relative(REPO, dir)}/`)
  await fs.remove(dir)
  await fs.mkdirp(dir)
  const write = async (file, size) => {
    const hash = createHash('sha256')
    const fh = await fs.promises.open(file, 'w')
    const buf = Buffer.alloc(4 << 20)
    for (let left = size; left > 0; left -= buf.length) {
      const chunk = randomFillSync(buf).subarray(0, Math.min(left, buf.length))
      hash.update(chunk)
      await fh.write(chunk)
    }
    await fh.close()
    return hash.digest('hex')
  }
  const bigSum = await write(path.join(dir, name), bytes)
  const runcSum = await write(path.join(dir, runc), 64 * 1024) // a stand-in: runc is not optional
  await fs.writeFile(path.join(dir, `${name}.sha256sum`), `${bigSum}  ${name}\n`)
  await fs.writeFile(path.join(dir, 'runc.sha256sum'), `${runcSum}  ${runc}\n`)
  await fs.writeFile(sums, `${bigSum}  ${name}\n${runcSum}  ${runc}\n`)
  return { dir, name, runc, sums, bytes }
}

// --- 2. the release server, as a child process --------------------------------------------------
async function startServers(repos, throttles) {
  const config = path.join(BENCH_CACHE, 'serve.json')
  await fs.writeJson(config, { repos, throttles })
  // Node 22.18+/23.6+ strip types by default; older 22.x need the flag.
  const flags = process.features.typescript ? [] : ['--experimental-strip-types', '--no-warnings']
  const child = spawn(process.execPath, [...flags, path.join(REPO, 'scripts/bench/serve.ts'), config], { stdio: ['pipe', 'pipe', 'inherit'], env: childEnv })
  const line = await new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.on('data', (d) => {
      buf += d
      if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')))
    })
    child.on('exit', (code) => reject(new Error(`release server exited (${code}) before it listened`)))
  })
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once('exit', resolve)
    child.stdin.end()
    setTimeout(() => child.kill('SIGKILL'), 5000).unref()
  })
  process.once('exit', () => child.exitCode === null && child.kill())
  return { servers: JSON.parse(line), stop }
}

// --- 3. timed runs -------------------------------------------------------------------------------
function timed(cmd, argv, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd, argv, { cwd: opts.cwd ?? REPO, env: { ...childEnv, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code, stdout, stderr }))
  })
}
const must = (r, what) => {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}\n${r.stdout.slice(0, 2000)}`)
  return r
}
const settle = () => $`sync` // dirty pages of the last run are written back before the next starts, untimed

let workDir
const freshDir = async (prefix) => fs.mkdtemp(path.join(workDir, `${prefix}-`))

async function readRss(file) {
  const kb = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim())
  return Number.isFinite(kb) && kb > 0 ? kb / 1024 : undefined
}

// --- main ----------------------------------------------------------------------------------------
const t0 = Date.now()
await fs.mkdirp(BENCH_CACHE)
await ensureBuilt()
await ensureFixtures()
const manifest = await fs.readJson(path.join(FIXTURES, 'manifest.json'))
const arch = manifest.arch
const byRepo = (repo) => manifest.releases.filter((r) => r.repo === repo).map((r) => r.version)
const vcmp = (a, b) => { const [x, y] = [a, b].map((v) => v.split('.').map(Number)); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] }
const V = {
  containerd: byRepo('containerd/containerd').sort(vcmp).at(-1),
  runc: byRepo('opencontainers/runc')[0],
  cni: byRepo('containernetworking/plugins')[0],
  nerdctl: byRepo('containerd/nerdctl')[0],
  crictl: byRepo('kubernetes-sigs/cri-tools')[0],
}
const CHECKSUMS = path.join(FIXTURES, 'checksums.txt')
const big = ONLY.has('rss') ? await ensureBigArtifact(arch) : undefined

const repos = {}
for (const r of manifest.releases) {
  (repos[r.repo] ??= []).push({ tag: r.tag, assets: Object.fromEntries(r.assets.map((a) => [a.name, { path: path.join(FIXTURES, a.path) }])) })
}
if (big) {
  const asset = (n) => ({ path: path.join(big.dir, n) })
  repos['containerd/containerd'].push({ tag: `v${BIG_VERSION}`, assets: { [big.name]: asset(big.name), [`${big.name}.sha256sum`]: asset(`${big.name}.sha256sum`) } })
  repos['opencontainers/runc'].push({ tag: `v${BIG_VERSION}`, assets: { [big.runc]: asset(big.runc), 'runc.sha256sum': asset('runc.sha256sum') } })
}
const artifactBytes = manifest.releases
  .filter((r) => r.version === V[{ 'containerd/containerd': 'containerd', 'opencontainers/runc': 'runc', 'containernetworking/plugins': 'cni', 'containerd/nerdctl': 'nerdctl', 'kubernetes-sigs/cri-tools': 'crictl' }[r.repo]])
  .flatMap((r) => r.assets.filter((a) => !/sha(256|512)|SUMS/.test(a.name)))
  .reduce((n, a) => n + a.size, 0)

workDir = await fs.mkdtemp(path.join(path.resolve(args.tmp ?? os.tmpdir()), 'np-bench-'))
const { servers, stop } = await startServers(repos, [0, THROTTLE])
const [open, throttled] = servers
log(`servers: ${open.url} (unthrottled), ${throttled.url} (${THROTTLE / 1e6} MB/s per connection); work dir ${workDir}`)
log(`versions: ${Object.entries(V).map(([k, v]) => `${k} ${v}`).join(', ')} (${(artifactBytes / 1e6).toFixed(1)} MB of artifacts)`)

const versionFlags = ['--containerd', V.containerd, '--runc', V.runc, '--cni', V.cni, '--nerdctl', V.nerdctl, '--crictl', V.crictl, '--arch', arch]
const npArgs = (srv, dir) => ['install', '--root', path.join(dir, 'root'), ...versionFlags, '--mirror', srv.url, '--github-api', srv.apiUrl,
  '--checksums', CHECKSUMS, '--cache-dir', path.join(dir, 'cache'), '--no-start', '--skip-smoke', '--json']
const shEnv = (srv, dir) => ({ MIRROR: srv.url, ROOT: path.join(dir, 'root'), CHECKSUMS, ARCH: arch, TMPDIR: dir,
  CONTAINERD: V.containerd, RUNC: V.runc, CNI: V.cni, NERDCTL: V.nerdctl, CRICTL: V.crictl })

async function nodePrepInstall(srv, dir, extraNode = [], env = {}) {
  await fs.mkdirp(path.join(dir, 'root')) // an image root exists before anything is installed into it
  const r = must(await timed(process.execPath, [...extraNode, CLI, ...npArgs(srv, dir)], { env }), 'node-prep install')
  const report = JSON.parse(r.stdout)
  if (!report.ok) throw new Error(`node-prep install reported ok=false: ${r.stdout.slice(0, 2000)}`)
  return { ms: r.ms, report }
}
const shellInstall = async (srv, dir, wrap = []) =>
  must(await timed(wrap[0] ?? 'bash', [...wrap.slice(1), ...(wrap.length ? ['bash'] : []), SHELL], { env: shEnv(srv, dir) }), 'shell install')

/** Both ways must put the same binaries in place, or the comparison means nothing. */
async function sameBinaries(a, b) {
  const list = async (root) => {
    const out = {}
    for (const d of ['usr/local/bin', 'usr/local/sbin', 'opt/cni/bin']) {
      for (const n of await fs.readdir(path.join(root, d)).catch(() => [])) {
        const f = path.join(root, d, n)
        out[`${d}/${n}`] = createHash('sha256').update(await fs.readFile(f)).digest('hex')
      }
    }
    return out
  }
  // What node-prep installs must be there, byte for byte, after the shell way too. The shell way may
  // leave more (tar -xzf puts the CNI tarball's LICENSE and README.md into /opt/cni/bin).
  const [x, y] = [await list(a), await list(b)]
  const diff = Object.keys(x).filter((k) => x[k] !== y[k])
  if (diff.length) log(`warning: node-prep and the shell way differ in: ${diff.join(', ')}`)
  return diff
}

const results = { installs: {}, rerun: undefined, startup: undefined, rss: undefined }
const PHASES = ['plan', 'compare', 'download', 'signatures', 'install', 'service']

async function installPair(srv, key, label) {
  const np = []
  const sh = []
  const phases = []
  // One warm-up pair (page cache, server JIT), then rounds with alternating order.
  for (let i = -1; i < RUNS; i++) {
    for (const who of i % 2 === 0 ? ['shell', 'node-prep'] : ['node-prep', 'shell']) {
      const dir = await freshDir(who)
      await settle()
      if (who === 'node-prep') {
        const { ms, report } = await nodePrepInstall(srv, dir)
        if (i >= 0) np.push(ms), phases.push(report.timingsMs)
        if (i === -1) results.npWarmRoot = dir
      } else {
        const { ms } = await shellInstall(srv, dir)
        if (i >= 0) sh.push(ms)
        if (i === -1) results.shWarmRoot = dir
      }
      if (i >= 0) await fs.remove(dir)
    }
    if (i === -1) {
      results.binaryDiff = await sameBinaries(path.join(results.npWarmRoot, 'root'), path.join(results.shWarmRoot, 'root'))
      await fs.remove(results.npWarmRoot)
      await fs.remove(results.shWarmRoot)
    } else {
      log(`${label}: run ${i + 1}/${RUNS}  node-prep ${(np.at(-1) / 1000).toFixed(2)} s  shell ${(sh.at(-1) / 1000).toFixed(2)} s`)
    }
  }
  const phaseMedians = Object.fromEntries(PHASES.map((p) => [p, median(phases.map((t) => t[p] ?? 0))]))
  results.installs[key] = { label, nodePrepMs: np, shellMs: sh, nodePrep: median(np), shell: median(sh), ratio: median(np) / median(sh), phasesMs: phaseMedians, bytesPerSecond: srv.bytesPerSecond }
}

try {
  if (ONLY.has('install')) {
    await installPair(open, 'unthrottled', 'install, unthrottled')
    await installPair(throttled, 'throttled', `install, ${THROTTLE / 1e6} MB/s per connection`)
  }

  if (ONLY.has('rerun')) {
    const n = Number(args['rerun-runs'])
    const dir = await freshDir('rerun-np')
    await nodePrepInstall(open, dir)
    const np = []
    for (let i = -1; i < n; i++) {
      await settle()
      const { ms, report } = await nodePrepInstall(open, dir)
      if (report.changed !== false) throw new Error('a re-run over a complete install changed something')
      if (i >= 0) np.push(ms)
    }
    // The shell way has no "nothing to do": running it again downloads and unpacks everything again.
    const shDir = await freshDir('rerun-sh')
    await shellInstall(open, shDir)
    const sh = []
    for (let i = 0; i < Math.min(n, RUNS); i++) {
      await settle()
      sh.push((await shellInstall(open, shDir)).ms)
    }
    await fs.remove(dir)
    await fs.remove(shDir)
    results.rerun = { nodePrepMs: np, shellMs: sh, nodePrep: median(np), shell: median(sh) }
    log(`re-run: node-prep ${(median(np) / 1000).toFixed(3)} s  shell ${(median(sh) / 1000).toFixed(2)} s`)
  }

  if (ONLY.has('startup')) {
    const n = Number(args['startup-runs'])
    const sample = async (argv, cmd = process.execPath) => {
      const xs = []
      for (let i = -2; i < n; i++) {
        const r = must(await timed(cmd, argv), [path.basename(cmd), ...argv].join(' '))
        if (i >= 0) xs.push(r.ms)
      }
      return xs
    }
    const help = await sample([CLI, '--help'])
    const version = await sample([CLI, '--version'])
    const bare = await sample(['-e', '0'])
    results.startup = { helpMs: help, versionMs: version, bareNodeMs: bare, help: median(help), version: median(version), bareNode: median(bare) }
    log(`start-up: --help ${median(help).toFixed(0)} ms  --version ${median(version).toFixed(0)} ms  node -e 0 ${median(bare).toFixed(0)} ms`)
    // The single executable for this machine's arch (npm run build:sea, built here when missing).
    const seaArch = { x64: 'amd64', arm64: 'arm64' }[process.arch]
    const sea = seaArch && path.join(REPO, 'dist/sea', `node-prep-linux-${seaArch}`)
    if (sea && !fs.existsSync(sea)) {
      log(`build: npm run build:sea -- --arch ${seaArch}`)
      await $({ stdio: ['ignore', 'inherit', 'inherit'] })`npm run --silent build:sea -- --arch ${seaArch}`
    }
    if (sea) {
      const [seaHelp, seaVersion] = [await sample(['--help'], sea), await sample(['--version'], sea)]
      Object.assign(results.startup, { seaHelpMs: seaHelp, seaVersionMs: seaVersion, seaHelp: median(seaHelp), seaVersion: median(seaVersion), seaBytes: fs.statSync(sea).size })
      log(`start-up, single executable: --help ${median(seaHelp).toFixed(0)} ms  --version ${median(seaVersion).toFixed(0)} ms`)
    }
  }

  if (ONLY.has('rss')) {
    const n = Number(args['rss-runs'])
    const rssFile = path.join(workDir, 'maxrss')
    const gnuRss = async (fn) => {
      if (!GNU_TIME) return undefined
      await fn([GNU_TIME, '-f', '%M', '-o', rssFile])
      return readRss(rssFile)
    }
    const install = []
    const installShell = []
    for (let i = 0; i < n; i++) {
      const dir = await freshDir('rss-np')
      await settle()
      await nodePrepInstall(open, dir, ['--import', MAXRSS], { BENCH_MAXRSS_FILE: rssFile })
      install.push(await readRss(rssFile))
      await fs.remove(dir)
      const shDir = await freshDir('rss-sh')
      await settle()
      const kb = await gnuRss((wrap) => shellInstall(open, shDir, wrap))
      if (kb !== undefined) installShell.push(kb)
      await fs.remove(shDir)
    }
    const dl = []
    const dlMs = []
    const curl = []
    const curlMs = []
    for (let i = 0; i < n; i++) {
      const dir = await freshDir('rss-dl')
      await settle()
      const r = must(await timed(process.execPath, ['--import', MAXRSS, CLI, 'download', '--bundle', path.join(dir, 'bundle'),
        '--containerd', BIG_VERSION, '--runc', BIG_VERSION, '--cni', 'none', '--nerdctl', 'none', '--crictl', 'none', '--arch', arch,
        '--mirror', open.url, '--github-api', open.apiUrl, '--checksums', big.sums, '--cache-dir', path.join(dir, 'cache'), '--json'],
      { env: { BENCH_MAXRSS_FILE: rssFile } }), 'node-prep download')
      dl.push(await readRss(rssFile))
      dlMs.push(r.ms)
      await fs.remove(dir)
      // The shell way: curl to a file, then sha256sum -c (largest process, as GNU time reports it).
      const cdir = await freshDir('rss-curl')
      await settle()
      const url = `${open.url}/containerd/containerd/releases/download/v${BIG_VERSION}/${big.name}`
      const script = `cd "$1" && curl -fsSLO "$2" && grep -F "  $3" "$4" | sha256sum -c --quiet -`
      const wrap = GNU_TIME ? [GNU_TIME, '-f', '%M', '-o', rssFile] : []
      const c = must(await timed(wrap[0] ?? 'bash', [...wrap.slice(1), ...(wrap.length ? ['bash'] : []), '-c', script, 'sh', cdir, url, big.name, big.sums]), 'curl + sha256sum')
      curlMs.push(c.ms)
      if (GNU_TIME) curl.push(await readRss(rssFile))
      await fs.remove(cdir)
    }
    results.rss = {
      installMB: install, installShellMB: installShell, downloadMB: dl, downloadMs: dlMs, curlMB: curl, curlMs,
      install: median(install), installShell: median(installShell), download: median(dl), downloadTime: median(dlMs), curl: median(curl), curlTime: median(curlMs),
      bigBytes: big.bytes,
    }
    log(`peak RSS: install ${median(install).toFixed(0)} MB, download of ${big.bytes / 1048576} MiB ${median(dl).toFixed(0)} MB`)
  }
} finally {
  await stop()
  await fs.remove(workDir)
}

// --- report --------------------------------------------------------------------------------------
const s = (ms) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(ms < 1000 ? 3 : 2)} s`)
const mb = (x) => (x === undefined ? '–' : `${x.toFixed(0)} MB`)
const x = (r) => (r === undefined || !Number.isFinite(r) ? '–' : `${r.toFixed(2)}x`)
const rows = []
const goals = []
const row = (measurement, np, base, ratio, goal, met) => {
  rows.push([measurement, np, base, ratio, goal, met === undefined ? '–' : met ? 'yes' : '**no**'])
  if (met !== undefined) goals.push({ measurement, goal, met })
}
const ins = results.installs
if (ins.throttled) row(`full install, ${THROTTLE / 1e6} MB/s per connection`, s(ins.throttled.nodePrep), s(ins.throttled.shell), x(ins.throttled.ratio), '≤ 0.45x', ins.throttled.ratio <= 0.45)
if (ins.unthrottled) row('full install, unthrottled', s(ins.unthrottled.nodePrep), s(ins.unthrottled.shell), x(ins.unthrottled.ratio), '≤ 1.0x', ins.unthrottled.ratio <= 1.0)
if (results.rerun) row('re-run, all installed (shell: does it all again)', s(results.rerun.nodePrep), s(results.rerun.shell), x(results.rerun.nodePrep / results.rerun.shell), '< 0.3 s', results.rerun.nodePrep < 300)
if (results.startup) {
  row('start-up `--help` (baseline: `node -e 0`)', s(results.startup.help), s(results.startup.bareNode), '', '< 0.15 s', results.startup.help < 150)
  row('start-up `--version` (baseline: `node -e 0`)', s(results.startup.version), s(results.startup.bareNode), '', '< 0.15 s', results.startup.version < 150)
  if (results.startup.seaHelp !== undefined) {
    const exe = `single executable, ${(results.startup.seaBytes / 1048576).toFixed(0)} MiB`
    row(`start-up \`--help\`, ${exe} (baseline: \`node -e 0\`)`, s(results.startup.seaHelp), s(results.startup.bareNode), '', '< 0.15 s', results.startup.seaHelp < 150)
    row(`start-up \`--version\`, ${exe} (baseline: \`node -e 0\`)`, s(results.startup.seaVersion), s(results.startup.bareNode), '', '< 0.15 s', results.startup.seaVersion < 150)
  }
}
if (results.rss) {
  const r = results.rss
  row('peak RSS, full install (shell: largest process)', mb(r.install), mb(r.installShell), '', '< 120 MB', r.install < 120)
  row(`peak RSS, download of one ${r.bigBytes / 1048576} MiB artifact (shell: curl, sha256sum)`, mb(r.download), mb(r.curl), '', '< 120 MB', r.download < 120)
  row(`time, download of one ${r.bigBytes / 1048576} MiB artifact, unthrottled`, s(r.downloadTime), s(r.curlTime), x(r.downloadTime / r.curlTime), '', undefined)
}
const table = (head, body) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n')

const cpu = os.cpus()
const fsType = (await $`findmnt -no FSTYPE -T ${os.tmpdir()}`.nothrow()).stdout.trim() || (await $`stat -f -c %T ${os.tmpdir()}`.nothrow()).stdout.trim()
const machine = `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, ${fsType || 'unknown fs'} temp dir, Node.js ${process.versions.node}`
const summary = [
  `node-prep benchmark, ${new Date().toISOString().slice(0, 10)}: ${machine}`,
  `Artifacts: Debian-built containerd ${V.containerd}, runc ${V.runc}, CNI plugins ${V.cni} (+ nerdctl/crictl stand-ins), ${(artifactBytes / 1e6).toFixed(1)} MB, served on loopback by test/support/release-server.ts.`,
  `Medians: installs of ${RUNS} runs each (fresh --root and cold --cache-dir), re-run of ${args['rerun-runs']}, start-up of ${args['startup-runs']}, RSS of ${args['rss-runs']}.`,
  '',
  table(['measurement', 'node-prep', 'shell way / baseline', 'ratio', 'goal', 'met'], rows),
]
const phaseRows = Object.values(ins).map((r) => [r.label, ...PHASES.map((p) => String(Math.round(r.phasesMs[p]))), s(r.nodePrep)])
if (phaseRows.length) summary.push('', 'node-prep phases (median ms, from `install --json` timingsMs; the rest of the wall time is Node start-up and exit):', '', table(['install', ...PHASES, 'wall'], phaseRows))
const missed = goals.filter((g) => !g.met)
summary.push('', missed.length ? `Goals missed: ${missed.map((g) => `${g.measurement} (${g.goal})`).join('; ')}.` : 'All goals met.')
if (results.binaryDiff?.length) summary.push(`Warning: node-prep and the shell way installed different binaries: ${results.binaryDiff.join(', ')}`)
console.log(summary.join('\n'))

delete results.npWarmRoot
delete results.shWarmRoot
await fs.mkdirp(path.dirname(OUT))
await fs.writeJson(OUT, { date: new Date().toISOString(), machine, versions: V, artifactBytes, throttleBytesPerSecond: THROTTLE, runs: RUNS, goals, results }, { spaces: 2 })
log(`\nresults: ${path.relative(process.cwd(), OUT) || OUT}  (${((Date.now() - t0) / 1000).toFixed(0)} s)`)
if (args.check && missed.length) process.exitCode = 1
