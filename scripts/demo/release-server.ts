/**
 * The test release server (test/support/release-server.ts) as a process, serving the Debian fixture
 * assets in .cache/debian-release under GitHub's paths, with a per-connection throttle so download
 * progress stays on screen for a few seconds. Node >= 23.6 runs this file as is (type stripping);
 * Node 22.6+ needs --experimental-strip-types.
 *
 *   node scripts/demo/release-server.ts [--bytes-per-second N] [--port-file FILE]
 *
 * Prints one JSON line {"url", "apiUrl", "checksums", "versions"} when it listens, then serves until
 * SIGINT or SIGTERM. Loopback only.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { debianRelease } from '../../test/support/debian.ts';
import { startReleaseServer } from '../../test/support/release-server.ts';

const { values } = parseArgs({
  options: { 'bytes-per-second': { type: 'string' }, 'port-file': { type: 'string' } },
});
const fx = debianRelease();
if (!fx) {
  process.stderr.write('No Debian fixtures in .cache/debian-release: run node scripts/fixtures/debian-release.mjs first.\n');
  process.exit(1);
}
const bytesPerSecond = values['bytes-per-second'] === undefined ? undefined : Number(values['bytes-per-second']);
const gh = await startReleaseServer({ repos: fx.repos, ...(bytesPerSecond ? { bytesPerSecond } : {}) });
const ready = `${JSON.stringify({ url: gh.url, apiUrl: gh.apiUrl, checksums: fx.checksums, versions: fx.versions })}\n`;
if (values['port-file']) writeFileSync(values['port-file'], ready);
process.stdout.write(ready);

const stop = () => void gh.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
