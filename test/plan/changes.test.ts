/**
 * The one comparison plan prints and install executes: diffFiles over (plan, install record, what is
 * on disk), as a table. The CLI tests in test/cli/plan-changes.test.ts show the same against a real
 * root; these pin each rule down.
 */
import { describe, expect, it } from 'vitest';
import { blockedChanges, diffFiles, restartReason, type DiskView, type FileChange } from '../../src/plan/changes.ts';
import type { Plan, PlannedFile } from '../../src/plan/types.ts';
import type { Manifest } from '../../src/state/manifest.ts';
import type { Observed } from '../../src/state/observe.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

const config: PlannedFile = { path: '/etc/crictl.yaml', component: 'crictl', source: { kind: 'config', what: 'crictl config' }, mode: 0o644, optional: false, content: 'runtime-endpoint: x\n', sha256: A };
const binary: PlannedFile = { path: '/usr/local/sbin/runc', component: 'runc', source: { kind: 'artifact', asset: 'runc.amd64', member: 'runc.amd64' }, mode: 0o755, optional: false };
const optional: PlannedFile = { path: '/opt/cni/bin/dhcp', component: 'cni', source: { kind: 'artifact', asset: 'cni.tgz', member: 'dhcp' }, mode: 0o755, optional: true };

const plan = {
  root: '/img',
  artifacts: [{ component: 'runc', name: 'runc.amd64', sha256: C }, { component: 'cni', name: 'cni.tgz', sha256: C }],
  files: [config, binary, optional],
} as unknown as Plan;

const file = (sha256: string, mode = 0o644): Observed => ({ kind: 'file', sha256, size: 1, mtimeMs: 1, mode });
const record = (files: Manifest['files'], components: Manifest['components'] = {}): Manifest => ({ files, components, backups: {} }) as unknown as Manifest;
const runcInstalled = { runc: { version: '1.4.3', asset: 'runc.amd64', sha256: C } };
const recorded = (sha256: string, mode: number, component: Manifest['files'][string]['component']) => ({ sha256, mode, component, size: 1, mtimeMs: 1, ctimeMs: 1, ino: 1 });

function change(f: PlannedFile, seen: Observed, m?: Manifest, text?: string): FileChange {
  const disk: DiskView = { observed: new Map([[f.path, seen]]), text: new Map(text === undefined ? [] : [[f.path, text]]) };
  return diffFiles(plan, m, disk).get(f.path)!;
}

describe('diffFiles', () => {
  it.each<[string, PlannedFile, Observed, Manifest | undefined, string | undefined, FileChange | ((c: FileChange) => void)]>([
    ['a missing config file is created', config, { kind: 'absent' }, undefined, undefined, { kind: 'create' }],
    ['a missing optional member is known only from the archive', optional, { kind: 'absent' }, undefined, undefined, { kind: 'unknown' }],
    ['a directory where a file goes is blocked', config, { kind: 'other', what: 'a directory' }, undefined, undefined,
      { kind: 'blocked', reason: 'it is a directory: node-prep only replaces regular files; move it aside and run again' }],
    ['a symlink where a binary goes is blocked', binary, { kind: 'other', what: 'a symlink' }, undefined, undefined,
      { kind: 'blocked', reason: 'it is a symlink: node-prep only replaces regular files; move it aside and run again' }],
    ['a config file as planned is the same', config, file(A), record({ [config.path]: recorded(A, 0o644, 'crictl') }), undefined, { kind: 'same' }],
    ['a config file as planned, but not recorded, is the same too', config, file(A), undefined, undefined, { kind: 'same' }],
    ['a config file as planned with another mode is an update', config, file(A, 0o600), record({ [config.path]: recorded(A, 0o644, 'crictl') }), undefined,
      { kind: 'update', foreign: false, reason: 'mode 0600, would be 0644' }],
    ['a foreign config file is a foreign update with its diff', config, file(B), undefined, 'runtime-endpoint: mine\n', (c) => {
      expect(c).toMatchObject({ kind: 'update', foreign: true, reason: 'not written by node-prep' });
      expect(c.kind === 'update' && c.diff).toMatch(/-runtime-endpoint: mine\n\+runtime-endpoint: x/);
    }],
    ['a config file edited since node-prep wrote it', config, file(B), record({ [config.path]: recorded(C, 0o644, 'crictl') }), 'x', (c) => expect(c).toMatchObject({ kind: 'update', foreign: false, reason: 'changed since node-prep wrote it' })],
    ['a config file node-prep wrote, planned with new content', config, file(C), record({ [config.path]: recorded(C, 0o644, 'crictl') }), 'x', (c) => expect(c).toMatchObject({ kind: 'update', foreign: false, reason: 'the planned content differs' })],
    ['an installed binary as recorded is the same', binary, file(B, 0o755), record({ [binary.path]: recorded(B, 0o755, 'runc') }, runcInstalled), undefined, { kind: 'same' }],
    ['an installed binary changed in place', binary, file(A, 0o755), record({ [binary.path]: recorded(B, 0o755, 'runc') }, runcInstalled), undefined,
      { kind: 'update', foreign: false, reason: 'changed since node-prep installed it' }],
    ['an installed binary whose mode changed', binary, file(B, 0o700), record({ [binary.path]: recorded(B, 0o755, 'runc') }, runcInstalled), undefined,
      { kind: 'update', foreign: false, reason: 'mode 0700, would be 0755' }],
    ['a binary of another version', binary, file(B, 0o755), record({ [binary.path]: recorded(B, 0o755, 'runc') }, { runc: { version: '1.3.0', asset: 'runc.amd64', sha256: A } }), undefined,
      { kind: 'update', foreign: false, reason: 'replaces 1.3.0 (runc.amd64)' }],
    ['a binary node-prep did not write', binary, file(B, 0o755), undefined, undefined, { kind: 'update', foreign: true, reason: 'not written by node-prep' }],
  ])('%s', (_name, f, seen, m, text, want) => {
    const got = change(f, seen, m, text);
    if (typeof want === 'function') want(got);
    else expect(got).toEqual(want);
  });

  it('lists the blocked changes with their reasons', () => {
    const disk: DiskView = { observed: new Map([[config.path, { kind: 'other', what: 'a directory' }], [binary.path, { kind: 'absent' }]]), text: new Map() };
    expect(blockedChanges(diffFiles(plan, undefined, disk))).toEqual([`/etc/crictl.yaml: it is a directory: node-prep only replaces regular files; move it aside and run again`]);
  });
});

describe('restartReason', () => {
  it.each<[Array<{ path: string; component: string }>, string | undefined]>([
    [[], undefined],
    [[{ path: '/etc/crictl.yaml', component: 'crictl' }, { path: '/etc/containerd/certs.d/docker.io/hosts.toml', component: 'node' }], undefined],
    [[{ path: '/usr/local/sbin/runc', component: 'runc' }], '/usr/local/sbin/runc changes'],
    // containerd reads its registry hosts on every pull; its unit's proxy drop-in needs a restart.
    [[{ path: '/etc/containerd/certs.d/docker.io/hosts.toml', component: 'containerd' }], undefined],
    [[{ path: '/etc/systemd/system/containerd.service.d/http-proxy.conf', component: 'containerd' }], '/etc/systemd/system/containerd.service.d/http-proxy.conf changes'],
    [[{ path: '/etc/containerd/config.toml', component: 'containerd' }, { path: '/usr/local/bin/ctr', component: 'containerd' }], '/etc/containerd/config.toml, /usr/local/bin/ctr change'],
  ])('%j → %s', (changed, want) => {
    expect(restartReason(changed)).toBe(want);
  });
});
