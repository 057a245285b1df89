/**
 * bin/node-prep.js under the Node.js versions the major node OSes ship: it must parse on all of them
 * (Node 12 too), and say in two lines what to do, exit 1, and keep --json's promise of one document.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO, testEnv } from '../support/cli.ts';
import { oldNode } from '../support/old-node.ts';
import { violations } from '../schemas/validate.ts';

const { version } = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
const INSTALL_SH = `curl -sfL https://github.com/node-prep/node-prep/releases/download/v${version}/install.sh | sudo sh -s --`;

describe.each([12, 18, 20])('bin/node-prep.js on Node.js %i', (major) => {
  let node: string;
  let nodeVersion: string;
  beforeAll(async () => {
    node = await oldNode(major);
    nodeVersion = String((await execa(node, ['--version'])).stdout).replace(/^v/, '');
    expect(nodeVersion.split('.')[0]).toBe(String(major));
  }, 300_000);

  const run = async (args: string[]) => {
    const r = await execa(node, [BIN, ...args], { env: testEnv(), extendEnv: false, reject: false, stripFinalNewline: false });
    return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  const lines = (args: string) => [
    `node-prep: Node.js ${nodeVersion} is too old: node-prep needs Node.js 22 or newer.`,
    `  Install Node.js 22+, or run the single executable, which needs no Node.js: ${INSTALL_SH}${args}`,
    '',
  ].join('\n');

  it('says what to do in two lines, with the command that runs the same arguments, and exits 1', async () => {
    const r = await run(['install', '--nerdctl', '2.2.0', '--registry-mirror', 'docker.io=https://m.example/a b']);
    expect(r).toEqual({ code: 1, stdout: '', stderr: lines(" install --nerdctl 2.2.0 --registry-mirror 'docker.io=https://m.example/a b'") });
  });

  it('with --json prints the error document on stdout, valid against schemas/error.schema.json', async () => {
    const r = await run(['plan', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(lines(' plan --json'));
    const doc = JSON.parse(r.stdout) as { error: Record<string, unknown> };
    expect(violations('error', doc)).toEqual([]);
    expect(doc).toMatchObject({ kind: 'error', exitCode: 1, error: { code: 'NODE_TOO_OLD', node: nodeVersion, required: '>=22' } });
  });

  it('with no arguments points at install.sh alone, which installs node-prep', async () => {
    expect((await run([])).stderr).toBe(lines(''));
  });
});
