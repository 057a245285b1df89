#!/usr/bin/env node
// Entry point: refuse old Node.js with a clear line, then load the bundled CLI.
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(`node-prep: Node.js ${process.versions.node} is too old; node-prep needs Node.js 22 or newer.\n`);
  process.exit(1);
}
const { main } = await import('../dist/cli.js');
process.exitCode = await main(process.argv.slice(2), process.env);
