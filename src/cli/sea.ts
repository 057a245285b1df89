/**
 * Entry point of the single executable (scripts/build-sea.mjs): Node runs it as CommonJS, so no
 * top-level await. Node puts the executable's own path at argv[1], as `node script` would.
 */
import { main } from '../cli.ts';

void main(process.argv.slice(2), process.env).then((code) => {
  process.exitCode = code;
});
