// The checks run inside the VM guest, as root, with systemd as PID 1 and node-prep's default paths
// (no --root). Run by the payload's run.sh with the boot count; each check appends one JSON line to
// /mnt/results/results.jsonl ({ boot, name, ok, detail, ms }), which the host turns into test
// results. Exit code 100 asks the guest for a reboot; the next boot continues from state.json.
//
// Plain JavaScript for the guest's Node 24 and nothing else: no package, no build step.
import { spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const PAYLOAD = '/mnt/payload';
const RESULTS = '/mnt/results';
const boot = Number(process.argv[2] ?? 1);
const cfg = JSON.parse(readFileSync(path.join(PAYLOAD, 'config.json'), 'utf8'));
const NODE = process.execPath;
const STATE_FILE = path.join(RESULTS, 'state.json');
const state = existsSync(STATE_FILE) ? JSON.parse(readFileSync(STATE_FILE, 'utf8')) : {};
const saveState = () => writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));

function log(line) {
  process.stdout.write(`vm-check: ${line}\n`);
}

/** Runs a command; never throws. */
function run(cmd, args = [], opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 600_000, env: { ...process.env, ...(opts.env ?? {}) }, input: opts.input });
  return { code: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}
function must(cmd, args = [], opts = {}) {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).slice(-800)}`);
  return r.stdout;
}

/** node-prep, as installed from the packed tarball or as the single executable. */
function np(args, opts = {}) {
  const [cmd, ...pre] = cfg.nodePrep;
  return run(cmd, [...pre, ...args], opts);
}
// --timeout: an emulated guest on a busy host can go more than the default 30 s without reading.
const source = () => ['--mirror', cfg.mirror, '--github-api', cfg.apiUrl, '--checksums', path.join(PAYLOAD, 'checksums.txt'), '--timeout', '120'];
const versions = (containerd, over = {}) => [
  '--containerd', containerd, '--runc', over.runc ?? cfg.versions.runc, '--cni', cfg.versions.cni,
  '--nerdctl', cfg.versions.nerdctl, '--crictl', cfg.versions.crictl,
];
function npJson(args, opts) {
  const r = np([...args, '--json'], opts);
  let doc;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    doc = undefined;
  }
  return { ...r, doc };
}

let failed = 0;
function record(name, ok, detail, ms) {
  if (!ok) failed++;
  appendFileSync(path.join(RESULTS, 'results.jsonl'), `${JSON.stringify({ boot, name, ok, detail: String(detail).slice(0, 4000), ms })}\n`);
  log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${ms} ms)${ok ? '' : `: ${detail}`}`);
}
async function checkAsync(name, fn) {
  const t0 = Date.now();
  try {
    record(name, true, (await fn()) ?? '', Date.now() - t0);
  } catch (err) {
    record(name, false, err instanceof Error ? err.message : String(err), Date.now() - t0);
  }
}
/** A check: fn returns a detail string (pass) or throws (fail). */
function check(name, fn) {
  const t0 = Date.now();
  try {
    const detail = fn();
    record(name, true, detail ?? '', Date.now() - t0);
    return true;
  } catch (err) {
    record(name, false, err instanceof Error ? err.message : String(err), Date.now() - t0);
    return false;
  }
}
function expect(cond, what) {
  if (!cond) throw new Error(what);
}

// --- systemd's view -------------------------------------------------------------------------------

function show(unit, props) {
  const out = must('systemctl', ['show', unit, `--property=${props.join(',')}`]);
  return Object.fromEntries(out.trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
const serviceIdentity = () => show('containerd', ['MainPID', 'InvocationID', 'ActiveState', 'ExecMainStartTimestampMonotonic']);
function waitActive(unit, ms) {
  const until = Date.now() + ms;
  let s;
  while (Date.now() < until) {
    s = run('systemctl', ['is-active', unit]).stdout.trim();
    if (s === 'active') return s;
    if (s === 'failed') break;
    run('sleep', ['1']);
  }
  return s;
}
/**
 * The boot is up when multi-user.target is: this check's own unit is part of the boot (After=
 * multi-user.target), so `is-system-running --wait` would wait for itself.
 */
function waitSystemRunning() {
  const target = waitActive('multi-user.target', 120_000);
  return `multi-user.target ${target}, system ${run('systemctl', ['is-system-running']).stdout.trim()}`;
}
/** The daemon's own version, asked over its socket. */
function serverVersion() {
  const out = must('/usr/local/bin/ctr', ['version']);
  const m = /Server:[\s\S]*?Version:\s*(\S+)/.exec(out);
  // Debian's builds say 1.6.20~ds1 and 2.1.9+unknown: the upstream version is what comes first.
  return m ? m[1].replace(/^v/, '').replace(/[~+].*$/, '') : `unparsed: ${out}`;
}
const journalCursor = () => /-- cursor: (.*)/.exec(must('journalctl', ['-n', '0', '--show-cursor', '--no-pager']))?.[1] ?? '';
function journalSince(cursor, args = []) {
  return must('journalctl', ['--no-pager', '-o', 'cat', ...(cursor ? ['--after-cursor', cursor] : []), ...args]);
}
const startsOf = (text) => text.split('\n').filter((l) => /^Started containerd(\.service)?\b/.test(l)).length;

/**
 * A CRI PullImage, as the kubelet asks containerd for an image: the daemon pulls, with its own
 * environment (the proxy drop-in) and certs.d. gRPC over the socket, the request coded by hand:
 * PullImageRequest{ image: ImageSpec{ image: ref } }.
 */
function criPull(ref, timeoutMs = 300_000) {
  const str = (field, b) => Buffer.concat([Buffer.from([(field << 3) | 2]), varint(b.length), b]);
  const varint = (n) => {
    const out = [];
    while (n > 127) {
      out.push((n & 127) | 128);
      n >>>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  const msg = str(1, str(1, Buffer.from(ref)));
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), msg]);
  frame.writeUInt32BE(msg.length, 1);
  return new Promise((resolve) => {
    const session = http2.connect('http://localhost', { createConnection: () => net.connect('/run/containerd/containerd.sock') });
    const timer = setTimeout(() => {
      session.destroy();
      resolve({ status: 'timeout', message: `no answer in ${timeoutMs} ms` });
    }, timeoutMs);
    session.on('error', (err) => resolve({ status: 'error', message: String(err) }));
    const req = session.request({ ':method': 'POST', ':path': '/runtime.v1.ImageService/PullImage', 'content-type': 'application/grpc', te: 'trailers' });
    let body = Buffer.alloc(0);
    let headers = {};
    req.on('response', (h) => (headers = h));
    req.on('data', (d) => (body = Buffer.concat([body, d])));
    req.on('trailers', (t) => (headers = { ...headers, ...t }));
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status: String(headers['grpc-status'] ?? '?'), message: decodeURIComponent(String(headers['grpc-message'] ?? '')), ref: body.subarray(5).toString('latin1') });
    });
    req.end(frame);
  });
}

// --- the guest's files, to compare before and after ---------------------------------------------

// The trees node-prep may write to (and all of /etc); the rest of /usr is Debian's packages'.
const TREES = ['/etc', '/usr/local', '/opt', '/var/lib', '/root', '/srv', '/usr/lib/systemd', '/usr/lib/sysctl.d', '/usr/lib/modules-load.d'];
const SKIP = new Set(['/opt/np-test', '/var/lib/systemd', '/var/lib/dhcp', '/var/lib/private', '/var/lib/apt', '/root/.cache', '/etc/machine-id', '/var/lib/dbus/machine-id', '/etc/ld.so.cache', '/etc/.pwd.lock']);
function snapshot() {
  const files = {};
  const walk = (dir) => {
    let names;
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const p = path.join(dir, name);
      if (SKIP.has(p)) continue;
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      let what = `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (kind === 'l') what += ` -> ${readlinkSync(p)}`;
      if (kind === 'f') what += ` ${st.size} ${st.size <= 1 << 20 ? createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16) : st.mtimeMs}`;
      files[p] = what;
      if (kind === 'd') walk(p);
    }
  };
  for (const t of TREES) walk(t);
  // systemd's view: what it knows of containerd (list-unit-files enumerates every unit: slow here).
  const units = run('systemctl', ['list-units', '--all', '--no-legend', '--plain', 'containerd*']).stdout.split('\n').map((l) => l.trim().split(/\s+/).slice(0, 4).join(' ')).filter(Boolean).sort();
  const unit = show('containerd', ['LoadState', 'UnitFileState', 'ActiveState', 'FragmentPath', 'DropInPaths']);
  return { files, units, unit };
}
function diffSnapshots(a, b) {
  const lines = [];
  for (const p of new Set([...Object.keys(a.files), ...Object.keys(b.files)])) {
    if (a.files[p] !== b.files[p]) lines.push(`${p}: ${a.files[p] ?? '(absent)'} -> ${b.files[p] ?? '(absent)'}`);
  }
  if (JSON.stringify(a.units) !== JSON.stringify(b.units)) lines.push(`unit files: ${JSON.stringify(a.units)} -> ${JSON.stringify(b.units)}`);
  if (JSON.stringify(a.unit) !== JSON.stringify(b.unit)) lines.push(`containerd unit: ${JSON.stringify(a.unit)} -> ${JSON.stringify(b.unit)}`);
  return lines;
}

// --- a container that outlives node-prep's runs ----------------------------------------------------

const SURVIVOR_NS = 'vmtest';
function startSurvivor(id) {
  const rootfs = `/var/tmp/${id}-rootfs`;
  must('sh', ['-ec', `rm -rf ${rootfs}; mkdir -p ${rootfs}/bin ${rootfs}/proc ${rootfs}/dev ${rootfs}/sys ${rootfs}/tmp; cp /bin/busybox ${rootfs}/bin/busybox; ln -s busybox ${rootfs}/bin/sh`]);
  must('/usr/local/bin/ctr', ['-n', SURVIVOR_NS, 'run', '-d', '--rootfs', rootfs, id, '/bin/sh', '-c', 'while :; do /bin/busybox sleep 1; done']);
  return taskPid(id);
}
function taskPid(id) {
  const out = run('/usr/local/bin/ctr', ['-n', SURVIVOR_NS, 'task', 'ls']).stdout;
  const line = out.split('\n').find((l) => l.startsWith(`${id} `));
  if (!line) return undefined;
  const [, pid, status] = line.trim().split(/\s+/);
  return status === 'RUNNING' ? Number(pid) : undefined;
}
const alive = (pid) => pid !== undefined && existsSync(`/proc/${pid}`);

// --- the scenario ---------------------------------------------------------------------------------

function smokeSummary(smoke) {
  if (!smoke) return 'no smoke report';
  return `${smoke.mode}: ${smoke.checks.map((c) => `${c.name}=${c.ok ? 'ok' : 'FAIL'}`).join(', ')}`;
}
function assertInstalled(r, what) {
  expect(r.code === 0, `${what} exited ${r.code}: ${r.stderr.slice(-1500)} ${r.stdout.slice(0, 1500)}`);
  expect(r.doc?.kind === 'install', `${what}: no install report`);
}

function bootOne() {
  check('systemd is PID 1 and the system is up', () => {
    const comm = readFileSync('/proc/1/comm', 'utf8').trim();
    expect(comm === 'systemd', `PID 1 is ${comm}`);
    const s = waitSystemRunning();
    expect(s.startsWith('multi-user.target active'), s);
    const failedUnits = must('systemctl', ['list-units', '--failed', '--no-legend', '--plain']).trim();
    return `${s}${failedUnits ? ` (failed: ${failedUnits.replace(/\s+/g, ' ')})` : ''}; node ${process.version}`;
  });
  state.before = snapshot();
  saveState();

  const [oldC, newC] = [cfg.versions.containerdOld, cfg.versions.containerdNew];
  const cursor0 = journalCursor();
  const first = npJson(['install', ...versions(oldC), ...source()]);
  check(`install containerd ${oldC}: files, daemon-reload, enable, start`, () => {
    assertInstalled(first, 'install');
    const svc = first.doc.service;
    expect(svc.kind === 'running' && svc.enabled && svc.reloaded, `service: ${JSON.stringify(svc)}`);
    for (const f of ['/usr/local/bin/containerd', '/usr/local/sbin/runc', '/opt/cni/bin/bridge', '/etc/containerd/config.toml', '/etc/systemd/system/containerd.service']) expect(existsSync(f), `${f} missing`);
    expect(run('systemctl', ['is-enabled', 'containerd']).stdout.trim() === 'enabled', 'containerd is not enabled');
    expect(waitActive('containerd', 30_000) === 'active', 'containerd is not active');
    const u = show('containerd', ['FragmentPath', 'NeedDaemonReload']);
    expect(u.FragmentPath === '/etc/systemd/system/containerd.service', `unit from ${u.FragmentPath}`);
    expect(u.NeedDaemonReload === 'no', 'systemd was not reloaded after the unit was written');
    const v = serverVersion();
    expect(v === oldC, `the service runs containerd ${v}`);
    return `containerd ${v} active from ${u.FragmentPath}; ${first.doc.components.map((c) => `${c.name} ${c.version} ${c.action}`).join(', ')}; ms ${JSON.stringify(first.doc.timingsMs)}`;
  });
  check('the smoke test passes against the service, CRI answers, its container ran in a systemd scope', () => {
    const smoke = first.doc?.smoke;
    expect(smoke?.ok === true, `smoke: ${smokeSummary(smoke)}`);
    expect(smoke.mode === 'service', `smoke mode ${smoke.mode}`);
    const byName = Object.fromEntries(smoke.checks.map((c) => [c.name, c]));
    for (const name of ['cri version', 'cri status', 'container run']) expect(byName[name]?.ok, `${name}: ${JSON.stringify(byName[name])}`);
    const run_ = byName['container run'].detail;
    const id = /container (\S+) in namespace/.exec(run_)?.[1];
    expect(id, `no container id in ${JSON.stringify(run_)}`);
    expect(run_.includes('systemd cgroups'), `not under the systemd cgroup driver: ${run_}`);
    const journal = journalSince(cursor0);
    const scope = journal.split('\n').find((l) => l.includes(`${id}.scope`));
    expect(scope, `systemd logged no scope for container ${id}`);
    return `${byName['cri version'].detail}; ${scope.trim()}`;
  });

  const id1 = serviceIdentity();
  const again = npJson(['install', ...versions(oldC), ...source()]);
  check('a re-run changes nothing and restarts nothing', () => {
    assertInstalled(again, 're-run');
    expect(again.doc.changed === false, `changed: ${JSON.stringify(again.doc.files?.filter?.((f) => f.action !== 'unchanged'))}`);
    const id2 = serviceIdentity();
    expect(id2.MainPID === id1.MainPID && id2.InvocationID === id1.InvocationID, `service identity ${JSON.stringify(id1)} -> ${JSON.stringify(id2)}`);
    return `MainPID ${id2.MainPID}, InvocationID ${id2.InvocationID} unchanged; ms ${JSON.stringify(again.doc.timingsMs)}`;
  });

  const survivorPid = startSurvivor('survivor');
  const cursor1 = journalCursor();
  const up = npJson(['install', ...versions(newC), ...source()]);
  check(`upgrade ${oldC} -> ${newC}: one restart, a running container survives`, () => {
    assertInstalled(up, 'upgrade');
    expect(survivorPid, 'the survivor container did not start');
    const starts = startsOf(journalSince(cursor1, ['-u', 'containerd']));
    expect(starts === 1, `containerd started ${starts} times during the upgrade`);
    const v = serverVersion();
    expect(v === newC, `the service runs containerd ${v}`);
    expect(alive(survivorPid) && taskPid('survivor') === survivorPid, `the survivor container (pid ${survivorPid}) did not survive`);
    expect(up.doc.smoke?.ok, `smoke: ${smokeSummary(up.doc.smoke)}`);
    return `containerd ${v}, 1 start, survivor pid ${survivorPid} running; ms ${JSON.stringify(up.doc.timingsMs)}`;
  });

  // Rollbacks: the broken releases the host put in the test release server.
  const good = serviceIdentity();
  const rollback = (name, args, codeWanted) =>
    check(`rollback after ${name}: the node runs containerd ${newC} again`, () => {
      const r = npJson(['install', ...args, ...source()], { timeoutMs: 600_000 });
      expect(r.code !== 0, `install exited 0: ${r.stdout.slice(0, 800)}`);
      expect(r.doc?.kind === 'error', `no error document: ${r.stdout.slice(0, 800)} ${r.stderr.slice(-800)}`);
      // What counts is the node afterwards: the previous containerd and runc, running.
      expect(waitActive('containerd', 60_000) === 'active', `containerd is ${run('systemctl', ['is-active', 'containerd']).stdout.trim()}`);
      const v = serverVersion();
      expect(v === newC, `the service runs containerd ${v}`);
      const runc = must('/usr/local/sbin/runc', ['--version']);
      expect(runc.includes(`runc version ${cfg.versions.runc}`), `runc is now ${runc.split('\n')[0]}`);
      expect(alive(survivorPid), 'the survivor container is gone');
      const st = np(['status', '--check']);
      expect(st.code === 0, `status --check exited ${st.code}: ${st.stdout.slice(-800)}`);
      expect(codeWanted.test(r.doc.error.code), `error code ${r.doc.error.code}: ${r.doc.error.message}`);
      expect(/previous|put back|rolled back/i.test(`${r.doc.error.message} ${r.doc.error.hint ?? ''}`), `the error does not say it rolled back: ${r.doc.error.message} ${r.doc.error.hint}`);
      return `${r.doc.error.code}: ${r.doc.error.message.slice(0, 300)}; containerd ${v} active`;
    });
  rollback('a failed smoke test (a runc that runs no container)', versions(newC, { runc: cfg.broken.runc }), /^SMOKE/);
  rollback('a containerd that exits at start', versions(cfg.broken.exits), /^SERVICE/);
  rollback('a containerd that hangs at start', versions(cfg.broken.hangs), /^SERVICE/);
  check('after the rollbacks the service is the one the upgrade started or a restart of it', () => {
    const now = serviceIdentity();
    expect(now.ActiveState === 'active', `containerd ${now.ActiveState}`);
    return `MainPID ${good.MainPID} -> ${now.MainPID}`;
  });

  state.reboot = { survivorPid, sysctls: cfg.sysctls, modules: cfg.modules };
  state.phase = 'rebooted';
  saveState();
  log('rebooting');
  return 100;
}

async function bootTwo() {
  check('after systemctl reboot: containerd up, sysctls and modules applied', () => {
    const s = waitSystemRunning();
    expect(waitActive('containerd', 60_000) === 'active', 'containerd is not active after the reboot');
    const v = serverVersion();
    expect(v === cfg.versions.containerdNew, `containerd ${v}`);
    const bad = [];
    for (const [key, want] of Object.entries(cfg.sysctls)) {
      const got = readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
      if (got !== String(want)) bad.push(`${key}=${got} (want ${want})`);
    }
    const modules = readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0]);
    for (const m of cfg.modules) if (!modules.includes(m) && !existsSync(`/sys/module/${m}`)) bad.push(`module ${m} not loaded`);
    expect(bad.length === 0, bad.join('; '));
    return `${s}, containerd ${v}, ${Object.keys(cfg.sysctls).join(', ')}, modules ${cfg.modules.join(', ')}`;
  });
  check('after the reboot: status is clean and the smoke test passes', () => {
    const st = npJson(['status']);
    expect(st.code === 0, `status exited ${st.code}: ${st.stderr.slice(-800)}`);
    const sm = npJson(['smoke']);
    expect(sm.code === 0 && sm.doc?.ok, `smoke exited ${sm.code}: ${smokeSummary(sm.doc)} ${sm.stderr.slice(-500)}`);
    const chk = np(['status', '--check']);
    expect(chk.code === 0, `status --check exited ${chk.code}: ${chk.stdout.slice(-1500)}`);
    return `status clean; smoke ${smokeSummary(sm.doc)}`;
  });

  await checkAsync('containerd.service pulls through the proxy drop-in (a CRI pull, as the kubelet asks)', async () => {
    const r = npJson(['install', ...versions(cfg.versions.containerdNew), ...source(), '--registries', path.join(PAYLOAD, 'registries.yaml'),
      '--containerd-proxy', cfg.proxy.url, '--containerd-no-proxy', 'localhost,127.0.0.1']);
    assertInstalled(r, 'install with the proxy');
    const dropIn = '/etc/systemd/system/containerd.service.d/http-proxy.conf';
    expect(existsSync(dropIn), `${dropIn} missing`);
    const env = show('containerd', ['Environment']).Environment ?? '';
    expect(env.includes(`HTTPS_PROXY=${cfg.proxy.url}`) || env.includes(`HTTP_PROXY=${cfg.proxy.url}`), `the service's environment: ${env}`);
    const pulled = await criPull(cfg.proxy.image);
    expect(pulled.status === '0', `PullImage ${cfg.proxy.image}: grpc-status ${pulled.status} ${pulled.message}`);
    return `${dropIn}; Environment ${env}; pulled ${cfg.proxy.image}`;
  });

  const pid = startSurvivor('keeper');
  check('uninstall refuses while a container runs, and --stop-containers stops it', () => {
    expect(alive(pid), 'the container did not start');
    const r = npJson(['uninstall', '--purge', '--yes']);
    expect(r.code !== 0 && r.doc?.error?.code === 'CONTAINERS_RUNNING', `uninstall with a running container: exit ${r.code} ${r.stdout.slice(0, 500)}`);
    expect(existsSync('/usr/local/bin/containerd') && alive(pid), 'the refused uninstall removed something');
    const u = npJson(['uninstall', '--purge', '--yes', '--stop-containers']);
    expect(u.code === 0, `uninstall --stop-containers exited ${u.code}: ${u.stdout.slice(0, 800)} ${u.stderr.slice(-800)}`);
    expect(!alive(pid), `container pid ${pid} still runs`);
    const shims = run('pgrep', ['-f', 'containerd-shim']).stdout.trim();
    expect(shims === '', `shims left: ${shims}`);
    return `refused with CONTAINERS_RUNNING, then stopped ${JSON.stringify(u.doc.stoppedContainers ?? u.doc.stopped ?? '')}`;
  });
  check('uninstall leaves the guest as before (files, unit files, systemd\'s view)', () => {
    run('systemctl', ['daemon-reload']);
    const after = snapshot();
    const d = diffSnapshots(state.before, after);
    expect(d.length === 0, `${d.length} differences:\n${d.slice(0, 40).join('\n')}`);
    return `${Object.keys(after.files).length} paths compared, containerd unit ${after.unit.LoadState}`;
  });

  takeover();
  return 0;
}

/** Debian's own containerd package, taken over by an install and given back by uninstall. */
function takeover() {
  const debs = readdirSync(path.join(PAYLOAD, 'debs')).map((d) => path.join(PAYLOAD, 'debs', d));
  const pkg = run('dpkg', ['-i', ...debs], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
  let before;
  const ok = check("Debian's containerd package installs and runs (before the takeover)", () => {
    expect(pkg.code === 0, `dpkg -i: ${pkg.stderr.slice(-800)}`);
    expect(waitActive('containerd', 60_000) === 'active', "Debian's containerd is not active");
    const u = show('containerd', ['FragmentPath', 'UnitFileState', 'ExecStart']);
    expect(u.FragmentPath === '/lib/systemd/system/containerd.service', `unit from ${u.FragmentPath}`);
    before = snapshot();
    return `${u.FragmentPath} ${u.UnitFileState}`;
  });
  if (!ok) return;
  const pkgPid = serviceIdentity().MainPID;
  check("install takes over Debian's containerd", () => {
    const r = npJson(['install', ...versions(cfg.versions.containerdNew), ...source()]);
    assertInstalled(r, 'install over the package');
    const u = show('containerd', ['FragmentPath', 'MainPID']);
    expect(u.FragmentPath === '/etc/systemd/system/containerd.service', `unit from ${u.FragmentPath}`);
    const exe = readlinkSync(`/proc/${u.MainPID}/exe`);
    expect(exe === '/usr/local/bin/containerd', `the service runs ${exe}`);
    expect(r.doc.smoke?.ok, `smoke: ${smokeSummary(r.doc.smoke)}`);
    return `MainPID ${pkgPid} (/usr/bin/containerd) -> ${u.MainPID} (${exe})`;
  });
  check("uninstall gives Debian's containerd back as it was", () => {
    const r = npJson(['uninstall', '--purge', '--yes']);
    expect(r.code === 0, `uninstall exited ${r.code}: ${r.stdout.slice(0, 800)} ${r.stderr.slice(-800)}`);
    expect(waitActive('containerd', 60_000) === 'active', "Debian's containerd is not active again");
    const u = show('containerd', ['FragmentPath', 'MainPID']);
    const exe = readlinkSync(`/proc/${u.MainPID}/exe`);
    expect(u.FragmentPath === '/lib/systemd/system/containerd.service' && exe === '/usr/bin/containerd', `unit ${u.FragmentPath} runs ${exe}`);
    const d = diffSnapshots(before, snapshot()).filter((l) => !l.startsWith('/var/lib/containerd'));
    expect(d.length === 0, `${d.length} differences:\n${d.slice(0, 40).join('\n')}`);
    return `the package's unit runs ${exe} again; files as before`;
  });
}

let code = 1;
try {
  if (state.phase === 'rebooted') {
    state.phase = 'done';
    saveState();
    code = await bootTwo();
  } else if (state.phase === undefined) {
    code = bootOne();
  } else {
    log(`unexpected boot in phase ${state.phase}`);
  }
} catch (err) {
  record(`boot ${boot} ran to its end`, false, err instanceof Error ? err.stack : String(err), 0);
}
writeFileSync(path.join(RESULTS, `boot-${boot}.done`), `${failed}\n`);
process.exit(code === 100 ? 100 : failed > 0 ? 1 : code);
