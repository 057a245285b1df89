// The checks run inside a booted baked root (the arm64 bake test): the root node-prep installed into
// with --root on the build host, booted as it is. Nothing is installed here: containerd must be
// enabled in the image and started at boot, and `node-prep smoke` must pass against that service.
// Each check appends one JSON line to /mnt/results/results.jsonl ({ boot, name, ok, detail, ms }).
//
// Plain JavaScript for the guest's Node 24 and nothing else: no package, no build step.
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

const RESULTS = '/mnt/results';
const boot = Number(process.argv[2] ?? 1);
const cfg = JSON.parse(readFileSync('/mnt/payload/config.json', 'utf8'));

/** Runs a command; never throws. */
function run(cmd, args = [], timeoutMs = 120_000) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}
function expect(cond, what) {
  if (!cond) throw new Error(what);
}

let failed = 0;
function check(name, fn) {
  const t0 = Date.now();
  let ok = true;
  let detail;
  try {
    detail = fn() ?? '';
  } catch (err) {
    ok = false;
    failed++;
    detail = err instanceof Error ? err.message : String(err);
  }
  const ms = Date.now() - t0;
  appendFileSync(path.join(RESULTS, 'results.jsonl'), `${JSON.stringify({ boot, name, ok, detail: String(detail).slice(0, 4000), ms })}\n`);
  process.stdout.write(`vm-check: ${ok ? 'ok  ' : 'FAIL'} ${name} (${ms} ms)${ok ? '' : `: ${detail}`}\n`);
}

function show(unit, props) {
  const out = run('systemctl', ['show', unit, `--property=${props.join(',')}`]).stdout;
  return Object.fromEntries(out.trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
/** systemctl is-active, polled: under emulation the unit may still be starting. */
function waitActive(unit, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const s = run('systemctl', ['is-active', unit]).stdout.trim();
    if (s === 'active' || s === 'failed' || Date.now() > until) return s;
    run('sleep', ['2']);
  }
}

check(`the baked ${cfg.arch} root boots with systemd as PID 1`, () => {
  const machine = run('uname', ['-m']).stdout.trim();
  expect(machine === cfg.uname, `uname -m says ${machine}`);
  const comm = readFileSync('/proc/1/comm', 'utf8').trim();
  expect(comm === 'systemd', `PID 1 is ${comm}`);
  const state = run('systemctl', ['is-system-running', '--wait'], 600_000).stdout.trim();
  expect(state === 'running' || state === 'degraded', `the system is ${state}`);
  const failedUnits = run('systemctl', ['list-units', '--failed', '--no-legend', '--plain']).stdout.trim();
  return `${machine}, ${state}${failedUnits ? ` (failed: ${failedUnits.replace(/\s+/g, ' ')})` : ''}; node ${process.version} ${process.arch}`;
});

check('containerd is enabled in the image and active after the boot', () => {
  const enabled = run('systemctl', ['is-enabled', 'containerd']).stdout.trim();
  expect(enabled === 'enabled', `systemctl is-enabled containerd: ${enabled}`);
  const active = waitActive('containerd', 300_000);
  expect(active === 'active', `systemctl is-active containerd: ${active}; ${run('journalctl', ['-u', 'containerd', '--no-pager', '-n', '20']).stdout}`);
  const u = show('containerd', ['FragmentPath', 'MainPID']);
  expect(u.FragmentPath === '/etc/systemd/system/containerd.service', `unit from ${u.FragmentPath}`);
  const exe = readlinkSync(`/proc/${u.MainPID}/exe`);
  expect(exe === '/usr/local/bin/containerd', `the service runs ${exe}`);
  return `${enabled}, ${active}: ${u.FragmentPath} runs ${exe} (MainPID ${u.MainPID})`;
});

check('node-prep smoke passes against the service', () => {
  const [cmd, ...pre] = cfg.nodePrep;
  const r = run(cmd, [...pre, 'smoke', '--json'], 1_200_000);
  let doc;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    throw new Error(`smoke exited ${r.code} without a JSON document: ${r.stdout.slice(0, 800)} ${r.stderr.slice(-800)}`);
  }
  const summary = `${doc.mode}: ${(doc.checks ?? []).map((c) => `${c.name}=${c.ok ? 'ok' : 'FAIL'}`).join(', ')}`;
  expect(r.code === 0 && doc.ok === true, `smoke exited ${r.code}: ${summary} ${r.stderr.slice(-800)}`);
  expect(doc.mode === 'service', `smoke mode ${doc.mode}`);
  const container = (doc.checks ?? []).find((c) => c.name === 'container run');
  expect(container?.ok === true, `container run: ${JSON.stringify(container)}`);
  return `${summary}; ${container.detail}`;
});

process.exit(failed > 0 ? 1 : 0);
