/**
 * Once per test run: build the CLI (tests run the built bin/node-prep.js, as users do) and start a
 * tripwire proxy. Every CLI run in the tests gets HTTP(S)_PROXY pointing at the tripwire with NO_PROXY
 * covering loopback, so a request that would leave 127.0.0.0/8 lands there instead, and the run fails.
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { seaOutdated } from './sea.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    tripwireUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const repo = path.resolve(import.meta.dirname, '../..');
  execFileSync(process.execPath, [path.join(repo, 'scripts/build.mjs')], { cwd: repo, stdio: 'inherit' });
  const testBin = process.env.NODE_PREP_TEST_BIN;
  const outdated = testBin ? seaOutdated(path.resolve(repo, testBin)) : undefined;
  if (outdated) throw new Error(`NODE_PREP_TEST_BIN: ${outdated}: build it first (npm run build:sea).`);

  const offLoopback: string[] = [];
  const server = http.createServer((req, res) => {
    offLoopback.push(`${req.method} ${req.url}`);
    res.writeHead(599).end('request off loopback refused by the test tripwire');
  });
  server.on('connect', (req, socket) => {
    offLoopback.push(`CONNECT ${req.url}`);
    socket.end('HTTP/1.1 599 Off Loopback\r\n\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  project.provide('tripwireUrl', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);

  return async () => {
    await new Promise<void>((r) => server.close(() => r()));
    if (offLoopback.length > 0) {
      throw new Error(`tests made requests off loopback:\n  ${offLoopback.join('\n  ')}`);
    }
  };
}
