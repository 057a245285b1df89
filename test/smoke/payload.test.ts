/**
 * What the smoke test's container runs: a static busybox when there is one, else the installed
 * runc when it is static (upstream's always is), else a failure that names what was tried.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findPayload } from '../../src/smoke/container.ts';

let dir: string;
let staticBinary: string;
let haveStaticCc = true;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-payload-'));
  await writeFile(path.join(dir, 'hello.c'), 'int main(void) { return 0; }\n');
  staticBinary = path.join(dir, 'static-bin');
  try {
    execFileSync('cc', ['-static', '-o', staticBinary, path.join(dir, 'hello.c')], { stdio: 'ignore' });
  } catch {
    if (process.env.NODE_PREP_E2E === '1') throw new Error('NODE_PREP_E2E=1 but `cc -static` is not available');
    haveStaticCc = false;
  }
});

describe('findPayload', () => {
  it('takes a static busybox first', async ({ skip }) => {
    if (!haveStaticCc) skip('no static C toolchain');
    expect(await findPayload([staticBinary], '/bin/ls')).toEqual({ kind: 'busybox', path: staticBinary });
  });

  it('falls back to a static runc when there is no static busybox', async ({ skip }) => {
    if (!haveStaticCc) skip('no static C toolchain');
    expect(await findPayload(['/nonexistent/busybox', '/bin/ls'], staticBinary)).toEqual({ kind: 'runc', path: staticBinary });
  });

  it('names every candidate and why when neither works', async () => {
    const r = await findPayload(['/nonexistent/busybox', '/bin/ls'], '/bin/cat');
    expect(r.kind).toBe('missing');
    if (r.kind !== 'missing') return;
    expect(r.detail).toContain('/nonexistent/busybox: ENOENT');
    expect(r.detail).toContain('/bin/ls: dynamically linked');
    expect(r.detail).toContain('the installed runc (/bin/cat) is not a static binary either');
  });
});
