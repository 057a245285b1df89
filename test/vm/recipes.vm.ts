/**
 * The recipes, run for real in a booted guest:
 *
 * - cloud-init: docs/recipes/cloud-init.md's user-data, as a NoCloud seed served to the guest over
 *   HTTP (`ds=nocloud-net` on the kernel command line). What is changed in it: GitHub's URL becomes the
 *   test release server's, and the install line gets the test's own versions and pins (the test
 *   release server serves Debian's builds, whose digests are not upstream's). The first boot runs it:
 *   install.sh fetches the single executable, verifies it and installs containerd, smoke test included.
 * - Ansible: Debian's ansible on this host runs docs/recipes/ansible.md's playbook over SSH into the
 *   same guest (a loopback hostfwd to its port 22), twice, after the guest has uninstalled what
 *   cloud-init installed: the first run reports changed, the second ok with nothing restarted.
 */
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.ts';
import { debianRelease, type DebianRelease } from '../support/debian.ts';
import { startReleaseServer, type ReleaseServer } from '../support/release-server.ts';
import { freePort } from '../support/registry.ts';
import { bootGuest, consoleTail, ensureImage, printStages, readChecks, stage, VM_CACHE, type BootResult, type GuestCheck } from './harness.ts';

const fx = debianRelease() as DebianRelease;
const SEA = path.join(REPO, 'dist/sea/node-prep-linux-amd64');
const SUMS = path.join(REPO, 'dist/sea/SHA256SUMS');
const MIRROR = 'http://10.0.2.100';
const SEED = 'http://10.0.2.102';

let gh: ReleaseServer;
let seed: http.Server;
let work: string;
let result: BootResult;
let checks: GuestCheck[] = [];
const ansibleRuns: Array<{ code: number | null; recap: string; out: string; identity: string }> = [];

/** The first fenced block of a language in a Markdown file. */
async function fenced(file: string, lang: string): Promise<string> {
  const text = await readFile(path.join(REPO, file), 'utf8');
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)\\n```').exec(text);
  if (!m) throw new Error(`${file} has no \`\`\`${lang} block`);
  return m[1]!;
}

const fixtureVersions = () => [
  '--containerd', fx.versions.containerd.at(-1)!, '--runc', fx.versions.runc, '--cni', fx.versions.cni, '--nerdctl', fx.versions.nerdctl, '--crictl', fx.versions.crictl,
];

/** The recipe's user-data with the test's mirror, versions and pins; everything else as written. */
async function userData(): Promise<string> {
  const doc = await fenced('docs/recipes/cloud-init.md', 'yaml');
  const installLine = /sh \S+ install (--nerdctl \S+)/;
  if (!installLine.test(doc) || !doc.includes('https://github.com/')) throw new Error('the cloud-init recipe changed shape: update this test');
  return doc
    .replaceAll('https://github.com', MIRROR)
    .replace(/^(\s*)(curl -sfL .*install\.sh.*)$/m, `$1export NODE_PREP_MIRROR=${MIRROR} NODE_PREP_GITHUB_API=${MIRROR}/api\n$1curl -sfL -o /run/node-prep-pins.txt ${SEED}/pins.txt\n$1$2`)
    .replace(installLine, (_, nerdctl: string) => `sh /run/node-prep-install.sh install ${nerdctl.replace(/\S+$/, fx.versions.nerdctl)} ${fixtureVersions().filter((_a, i, all) => all[i - 1] !== '--nerdctl' && _a !== '--nerdctl').join(' ')} --checksums /run/node-prep-pins.txt`);
}

const GUEST_SCRIPT = String.raw`#!/bin/sh
# The recipes' guest half: wait for cloud-init's first boot, record what it did, then hand the node
# (bare again) to Ansible on the host and wait until it is done.
set -u
R=/mnt/results
rec() { printf '{"boot":%s,"name":"%s","ok":%s,"detail":%s,"ms":0}\n' "$1" "$2" "$3" "$4" >> $R/results.jsonl; }
# No Node.js in this guest: node-prep runs as the single executable, JSON is read with python3.
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()[-3000:]))'; }
if command -v node >/dev/null 2>&1; then rec "$1" "the guest has no Node.js" false '"node is on PATH"'; fi
# cloud-final writes boot-finished at the very end (status --wait can return on an earlier stage's error).
i=0
while [ ! -e /var/lib/cloud/instance/boot-finished ] && [ $i -lt 900 ]; do sleep 1; i=$((i + 1)); done
status=$(cloud-init status --long 2>&1)
case "$status" in *"status: done"*) ok=true ;; *) ok=false ;; esac
rec "$1" "cloud-init finished its first boot without error" $ok "$(printf '%s' "$status" | json_str)"
report=$(cat /var/log/node-prep.json 2>/dev/null)
log=$(cat /var/log/node-prep.log 2>/dev/null)
if printf '%s' "$report" | python3 -c 'import json,sys; r=json.load(sys.stdin); s=r.get("smoke") or {}; sys.exit(0 if r.get("kind")=="install" and r.get("ok") and s.get("ok") and s.get("mode")=="service" else 1)'; then ok=true; else ok=false; fi
rec "$1" "the user-data installed containerd and the smoke test passed against the service" $ok "$(printf '%s\n%s' "$report" "$log" | json_str)"
if [ "$(systemctl is-active containerd)" = active ] && [ -x /usr/local/bin/node-prep ] && /usr/local/bin/node-prep status --check > /tmp/status.txt 2>&1; then ok=true; else ok=false; fi
rec "$1" "containerd runs, node-prep is in /usr/local/bin, status is clean" $ok "$(cat /tmp/status.txt | json_str)"
# A bare node for Ansible: what cloud-init installed goes (node-prep itself stays, as the recipe has it).
/usr/local/bin/node-prep uninstall --purge --yes > /tmp/uninstall.txt 2>&1 && ok=true || ok=false
rec "$1" "uninstall before the Ansible runs" $ok "$(cat /tmp/uninstall.txt | json_str)"
mkdir -p /root/.ssh && chmod 0700 /root/.ssh
cp /mnt/payload/id.pub /root/.ssh/authorized_keys && chmod 0600 /root/.ssh/authorized_keys
systemctl start ssh
touch $R/ansible-ready
i=0
while [ ! -e $R/ansible-done ] && [ $i -lt 900 ]; do sleep 1; i=$((i + 1)); done
exit 0
`;

beforeAll(async () => {
  if (!fx) throw new Error('no Debian fixtures: run node scripts/fixtures/debian-release.mjs');
  if (!existsSync(SEA) || !existsSync(SUMS)) throw new Error(`${SEA} is missing: run npm run build:sea first`);
  const image = await ensureImage('amd64');
  await mkdir(VM_CACHE, { recursive: true });
  work = await mkdtemp(path.join(VM_CACHE, 'recipes-'));
  const payloadDir = path.join(work, 'payload');
  const resultsDir = path.join(work, 'results');
  await mkdir(payloadDir, { recursive: true });
  await mkdir(resultsDir, { recursive: true });

  // node-prep's own release: install.sh, the executable and SHA256SUMS, as the release workflow attaches them.
  const version = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')).version as string;
  gh = await startReleaseServer({ repos: structuredClone(fx.repos), advertise: { url: MIRROR, cdnUrl: 'http://10.0.2.101' } });
  gh.addRelease('node-prep/node-prep', {
    tag: `v${version}`,
    assets: { 'install.sh': { path: path.join(REPO, 'install.sh') }, 'node-prep-linux-amd64': { path: SEA }, SHA256SUMS: { path: SUMS } },
  });

  const pins = await readFile(fx.checksums);
  const files: Record<string, string | Buffer> = {
    '/user-data': await userData(),
    '/meta-data': 'instance-id: node-prep-vm-recipes\nlocal-hostname: node-prep-vm\n',
    '/vendor-data': '',
    '/pins.txt': pins,
  };
  seed = http.createServer((req, res) => {
    const body = files[(req.url ?? '').split('?')[0]!];
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((r) => seed.listen(0, '127.0.0.1', r));

  const key = path.join(work, 'id');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await copyFile(`${key}.pub`, path.join(payloadDir, 'id.pub'));
  await copyFile(fx.checksums, path.join(payloadDir, 'pins.txt'));
  await writeFile(path.join(payloadDir, 'run.sh'), GUEST_SCRIPT);
  await chmod(path.join(payloadDir, 'run.sh'), 0o755);

  const sshPort = await freePort();
  const boot = bootGuest({
    image, payloadDir, resultsDir, timeoutMs: 25 * 60_000,
    append: `ds=nocloud-net;s=${SEED}/`,
    guestForwards: [
      { guest: '10.0.2.100:80', hostPort: Number(new URL(gh.url).port) },
      { guest: '10.0.2.101:80', hostPort: Number(new URL(gh.cdnUrl).port) },
      { guest: '10.0.2.102:80', hostPort: (seed.address() as AddressInfo).port },
    ],
    hostForwards: [{ hostPort: sshPort, guestPort: 22 }],
  });

  // Ansible, once the guest says it is ready (or the guest is gone).
  const ansible = stage('ansible-playbook twice over ssh', async () => {
    let done = false;
    void boot.finally(() => (done = true));
    while (!done && !existsSync(path.join(resultsDir, 'ansible-ready'))) await new Promise((r) => setTimeout(r, 1000));
    if (done) return;
    try {
      await writeFile(path.join(work, 'inventory.ini'), `[k8s_nodes]\nnode ansible_host=127.0.0.1 ansible_port=${sshPort} ansible_user=root ansible_ssh_private_key_file=${key} ansible_python_interpreter=/usr/bin/python3\n`);
      await writeFile(path.join(work, 'node-prep.yml'), await fenced('docs/recipes/ansible.md', 'yaml'));
      const extra = JSON.stringify({
        node_prep: ['/usr/local/bin/node-prep'],
        // --timeout: an emulated guest on a busy 2-core host can go more than 30 s without reading.
        node_prep_args: [...fixtureVersions(), '--mirror', MIRROR, '--github-api', `${MIRROR}/api`, '--checksums', '/mnt/payload/pins.txt', '--timeout', '120'],
      });
      const sshArgs = ['-i', key, '-p', String(sshPort), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'root@127.0.0.1'];
      // Never a synchronous child here: the release and seed servers the guest downloads from run in
      // this process, and would stop answering while it waits.
      const identity = async () => String((await execa('ssh', [...sshArgs, 'systemctl', 'show', 'containerd', '-p', 'MainPID,InvocationID'], { reject: false, timeout: 120_000 })).stdout).trim();
      for (let i = 0; i < 2; i++) {
        const r = await execa('ansible-playbook', ['-i', path.join(work, 'inventory.ini'), '-e', extra, path.join(work, 'node-prep.yml')], {
          reject: false, timeout: 600_000, cwd: work,
          env: { ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_SSH_ARGS: '-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no', ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCAL_TEMP: path.join(work, 'ansible-tmp') },
        });
        const stdout = String(r.stdout);
        const recap = /^node\s+:.*$/m.exec(stdout)?.[0] ?? '';
        ansibleRuns.push({ code: r.exitCode ?? null, recap, out: `${stdout}\n${String(r.stderr)}`.slice(-4000), identity: await identity() });
      }
    } finally {
      await writeFile(path.join(resultsDir, 'ansible-done'), '');
    }
  });
  result = await stage('boot with cloud-init, then Ansible', () => boot);
  await ansible;
  checks = await readChecks(resultsDir);
  process.stderr.write(`vm: recipes guest: ${result.boots} boot with ${result.accel.toUpperCase()} in ${(result.ms / 1000).toFixed(0)} s\n`);
  for (const c of checks) process.stderr.write(`vm:   ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}\n`);
}, 40 * 60_000);

afterAll(async () => {
  await gh?.close();
  await new Promise((r) => (seed ? seed.close(r) : r(undefined)));
  printStages();
  if (work && process.env.NODE_PREP_VM_KEEP !== '1') await rm(work, { recursive: true, force: true });
});

describe('the recipes on a booted guest', () => {
  const guest = (name: string) => async () => {
    const c = checks.find((x) => x.name === name);
    if (!c) throw new Error(`the guest did not run this check; console:\n${await consoleTail(result.consoleLog)}`);
    expect(c.ok, c.detail).toBe(true);
  };
  it('cloud-init: the first boot finishes without error', guest('cloud-init finished its first boot without error'));
  it('cloud-init: the user-data installs containerd and the smoke test passes against the service', guest('the user-data installed containerd and the smoke test passed against the service'));
  it('cloud-init: containerd runs afterwards and status is clean', guest('containerd runs, node-prep is in /usr/local/bin, status is clean'));
  it('Ansible: the first run reports changed', () => {
    expect(ansibleRuns.length, 'the playbook did not run').toBe(2);
    expect(ansibleRuns[0]!.code, ansibleRuns[0]!.out).toBe(0);
    expect(ansibleRuns[0]!.recap, ansibleRuns[0]!.out).toMatch(/changed=1\b.*failed=0/);
  });
  it('Ansible: the second run is ok, with nothing changed and nothing restarted', () => {
    expect(ansibleRuns[1]?.code, ansibleRuns[1]?.out).toBe(0);
    expect(ansibleRuns[1]!.recap, ansibleRuns[1]!.out).toMatch(/changed=0\b.*failed=0/);
    expect(ansibleRuns[1]!.identity).toMatch(/MainPID=[1-9]/);
    expect(ansibleRuns[1]!.identity).toBe(ansibleRuns[0]!.identity);
  });
});
