/**
 * A planned file that holds a secret (registry credentials): its diff is never shown without
 * --show-private, whatever the file now there is, its folder may not be writable by others, and
 * the JSON plan carries its redacted text without a digest. Against a real root on disk.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Data } from '../../src/install/hash.ts';
import { diffFiles, observeDisk } from '../../src/plan/changes.ts';
import { publicPlan } from '../../src/plan/render.ts';
import type { Plan, PlannedFile } from '../../src/plan/types.ts';

const NODE_PATH = '/etc/containerd/certs.d/reg.example/hosts.toml';
const SECRET = 'Basic cHVsbGVyOnNlY3JldA==';
const content = `server = "https://reg.example"\n[header]\n  Authorization = "${SECRET}"\n`;
const secretFile: PlannedFile = {
  path: NODE_PATH, component: 'containerd', source: { kind: 'config', what: 'registry settings for reg.example' }, mode: 0o600, optional: false,
  content, sha256: sha256Data(content), private: true, shown: content.replace(SECRET, '<redacted>'),
};

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'np-private-'));
  await mkdir(path.join(root, path.dirname(NODE_PATH)), { recursive: true });
});
afterEach(() => rm(root, { recursive: true, force: true }));

const planFor = () => ({ root, files: [secretFile], artifacts: [] }) as unknown as Plan;

describe('a planned file with a secret', () => {
  it('shows no diff, even against a file others may read, unless --show-private', async () => {
    await writeFile(path.join(root, NODE_PATH), 'server = "https://old.example"\n', { mode: 0o644 });
    const hidden = diffFiles(planFor(), undefined, await observeDisk(planFor(), undefined)).get(NODE_PATH);
    expect(hidden).toMatchObject({ kind: 'update', contentHidden: expect.stringContaining('--show-private') });
    expect(JSON.stringify(hidden)).not.toContain(SECRET);
    const shown = diffFiles(planFor(), undefined, await observeDisk(planFor(), undefined, { showPrivate: true })).get(NODE_PATH);
    expect(shown?.kind === 'update' && shown.diff).toContain(SECRET);
  });

  it.each([[0o777, 'everyone'], [0o775, 'its group']])('is refused when its folder has mode %s', async (mode, who) => {
    await chmod(path.join(root, path.dirname(NODE_PATH)), mode);
    const change = diffFiles(planFor(), undefined, await observeDisk(planFor(), undefined)).get(NODE_PATH);
    expect(change).toEqual({ kind: 'blocked', reason: expect.stringContaining(`is writable by ${who}`) });
  });

  it('is created in a folder only root may write', async () => {
    await chmod(path.join(root, path.dirname(NODE_PATH)), 0o755);
    expect(diffFiles(planFor(), undefined, await observeDisk(planFor(), undefined)).get(NODE_PATH)).toEqual({ kind: 'create' });
  });

  it('leaves the plan as redacted text without a digest; --show-private keeps it whole', () => {
    const out = publicPlan(planFor()).files[0]!;
    expect(out).toMatchObject({ private: true, content: secretFile.shown });
    expect(out.sha256).toBeUndefined();
    expect(JSON.stringify(publicPlan(planFor()))).not.toContain(SECRET);
    expect(publicPlan(planFor(), true).files[0]).toMatchObject({ content, sha256: secretFile.sha256 });
  });
});
