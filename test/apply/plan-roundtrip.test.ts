/**
 * The plan is self-sufficient: the document `install --dry-run --json` prints, read back, is all
 * apply needs. It is applied here as it came off the wire, with no catalog lookup, into an image root.
 */
import { lstat, mkdtemp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstallRun } from '../../src/apply/install.ts';
import { ArtifactCache } from '../../src/fetch/cache.ts';
import { DEFAULT_HTTP, Http } from '../../src/net/http.ts';
import { diffFiles, observeDisk } from '../../src/plan/changes.ts';
import type { Plan } from '../../src/plan/types.ts';
import { runCli } from '../support/cli.ts';
import { startSyntheticMirror, type SyntheticMirror } from '../support/synthetic-mirror.ts';

let mirror: SyntheticMirror;
beforeAll(async () => {
  mirror = await startSyntheticMirror('np-roundtrip-', { signer: null });
});
afterAll(() => mirror.close());

describe('a plan read back from its own --json', () => {
  it('installs into an image root with nothing but that document', async () => {
    const root = await mkdtemp(path.join(mirror.work, 'root-'));
    const { gh, sums, work } = mirror;
    const r = await runCli(['install', '--dry-run', '--root', root, '--mirror', gh.url, '--github-api', gh.apiUrl, '--checksums', sums, '--arch', 'amd64', '--nerdctl', 'none', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as Plan;
    expect(plan.root).toBe(root);

    const http = new Http({ ...DEFAULT_HTTP, userAgent: 'node-prep-test', apiBase: gh.apiUrl, proxy: {}, retryDelaysMs: [0] });
    const run = new InstallRun({ http: () => http, cache: () => new ArtifactCache(path.join(work, 'rt-cache')) }, plan, () => undefined);
    try {
      await run.begin();
      const disk = await observeDisk(plan, run.manifest);
      const decisions = run.decide(diffFiles(plan, run.manifest, disk), disk);
      expect(decisions.map((d) => `${d.name}:${d.action}`)).toEqual(['containerd:install', 'runc:install', 'cni:install', 'crictl:install']);
      await run.download();
      await run.stage();
      await run.commit();
    } finally {
      await run.finish();
      await http.close();
    }
    for (const a of plan.artifacts) for (const e of a.install.filter((x) => x.required)) expect((await lstat(path.join(root, e.path))).isFile(), e.path).toBe(true);
    expect(await readFile(path.join(root, 'etc/crictl.yaml'), 'utf8')).toBe(plan.files.find((f) => f.path === '/etc/crictl.yaml')!.content);
    const status = await runCli(['status', '--root', root, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ drift: [] });
  });
});
