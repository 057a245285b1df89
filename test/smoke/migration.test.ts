// A config containerd migrates at every start fails the smoke test's config check. No containerd 2.3
// runs here: `config dump` is answered with what a real 2.3.4 printed for a version 3 file (stdout)
// and the WARN line containerd logs while loading it (cmd/containerd/server/config/config.go).
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSmoke } from '../../src/smoke/checks.ts';
import { dumpConfig, migrationWarning } from '../../src/smoke/config.ts';
import { recordingExec } from '../support/recording-exec.ts';

const DUMP_234 = readFileSync(path.join(import.meta.dirname, '../fixtures/containerd/containerd-2.3.4-config-dump-of-a-v3-file.toml'), 'utf8');
const WARN = 'time="2026-08-22T10:00:00.000000000Z" level=warning msg="Configuration migrated from version 3, use `containerd config migrate` to avoid migration" t="6.1µs"';

describe('migrationWarning', () => {
  it.each([
    [[WARN], 3],
    [['level=warning msg="Ignoring unknown key in TOML" key="x"', 'level=warning msg="Configuration migrated from version 2, use `containerd config migrate` to avoid migration"'], 2],
  ] as const)('finds the migration in %j', (lines, from) => {
    expect(migrationWarning(lines)?.fromVersion).toBe(from);
  });

  it('finds nothing in other warnings', () => {
    expect(migrationWarning(['level=warning msg="Ignoring unknown key in TOML" key="x"'])).toBeUndefined();
  });
});

describe('the config check on a containerd that migrates the installed config', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'np-migrate-'));
    await mkdir(path.join(root, 'etc/containerd'), { recursive: true });
    await writeFile(path.join(root, 'etc/containerd/config.toml'), 'version = 3\n');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const expectation = {
    versions: { containerd: '2.3.4', runc: '1.4.3' },
    systemdCgroup: false, sandboxImage: 'registry.k8s.io/pause:3.10.2', configPath: '/etc/containerd/certs.d',
    cniBinDir: '/opt/cni/bin', cniConfDir: '/etc/cni/net.d',
  };
  const smoke = (stderr: string) => {
    const exec = recordingExec((_file, args) => (args.includes('dump') ? { stdout: DUMP_234, stderr } : { exitCode: 1, stderr: 'not here' }));
    return runSmoke({ root, prefix: '/usr/local', mode: 'service', socket: path.join(root, 'none.sock'), expect: expectation }, { exec, systemdRunning: async () => false });
  };

  it('passes the values as they are in effect when containerd logs no migration', async () => {
    const report = await smoke('');
    expect(report.checks.find((c) => c.name === 'config')).toMatchObject({ ok: true });
  });

  it('fails, naming the migration and the fix, when containerd logs one', async () => {
    const report = await smoke(`${WARN}\n`);
    const config = report.checks.find((c) => c.name === 'config')!;
    expect(config.ok).toBe(false);
    expect(config.detail).toContain('containerd migrates a version 3 config in memory at every start');
    expect(config.detail).toContain('it reads version 4, so /etc/containerd/config.toml or a drop-in it imports is older');
    expect(config.detail).toContain('`containerd config migrate`');
    expect(report.ok).toBe(false);
  });

  it('keeps the warning lines containerd logs while dumping', async () => {
    const exec = recordingExec(() => ({ stdout: DUMP_234, stderr: `level=info msg="x"\n${WARN}\n` }));
    const dump = await dumpConfig(exec, 'containerd', '/x.toml', 1000);
    expect(dump.kind === 'ok' && dump.warnings).toEqual([WARN]);
  });
});
