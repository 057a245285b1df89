// Benchmark helper, run as a child process: starts test/support's release server (the loopback
// stand-in for github.com) once per requested throttle, serving `{path}` assets streamed from disk,
// prints one JSON line with the URLs, and serves until stdin closes or it is killed.
//
//   node scripts/bench/serve.ts CONFIG.json
//   CONFIG: { "repos": ReposMap with {path} assets, "throttles": [0, 20000000] }  (bytes per second, 0 = none)
//
// Node >= 22.18 / 24 runs this file directly (type stripping): keep it free of TS-only syntax.
import { readFileSync } from 'node:fs';
import { startReleaseServer, type ReleaseServer, type ReposMap } from '../../test/support/release-server.ts';

interface ServeConfig {
  repos: ReposMap;
  throttles: number[];
}

const file = process.argv[2];
if (!file) throw new Error('usage: serve.ts CONFIG.json');
const config = JSON.parse(readFileSync(file, 'utf8')) as ServeConfig;
const servers: ReleaseServer[] = [];
for (const bps of config.throttles) {
  servers.push(await startReleaseServer({ repos: config.repos, ...(bps > 0 ? { bytesPerSecond: bps } : {}) }));
}
process.stdout.write(JSON.stringify(servers.map((s, i) => ({ bytesPerSecond: config.throttles[i], url: s.url, apiUrl: s.apiUrl }))) + '\n');

const stop = async () => {
  await Promise.all(servers.map((s) => s.close()));
  process.exit(0);
};
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
