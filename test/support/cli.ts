/**
 * Run the built CLI as a user would, and capture exit code, stdout and stderr. The tests run
 * bin/node-prep.js under this Node.js, or, with NODE_PREP_TEST_BIN naming one, a single executable
 * (`npm run build:sea`): the same tests hold both forms.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { inject } from 'vitest';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const BIN = path.join(REPO, 'bin/node-prep.js');
const TEST_BIN = process.env.NODE_PREP_TEST_BIN ? path.resolve(REPO, process.env.NODE_PREP_TEST_BIN) : undefined;
/** The program and leading arguments that run node-prep: `[node, bin/node-prep.js]` or `[executable]`. */
export const CLI: readonly [string, ...string[]] = TEST_BIN ? [TEST_BIN] : [process.execPath, BIN];

/** spawn()'s first two arguments for `node-prep ...args`. */
export const cliSpawn = (args: readonly string[]): [string, string[]] => [CLI[0], [...CLI.slice(1), ...args]];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Loopback is never proxied; anything else goes to the tripwire (see global-setup.ts). */
export function testEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const tripwire = inject('tripwireUrl');
  const base: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HTTPS_PROXY: tripwire,
    HTTP_PROXY: tripwire,
    NO_PROXY: '127.0.0.1,127.0.0.2,localhost,::1',
    NODE_PREP_RETRY_DELAYS: '0,0,0',
    ...extra,
  };
  return Object.fromEntries(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
}

export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(...cliSpawn(args), { env: testEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
