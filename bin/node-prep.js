#!/usr/bin/env node
// Entry point. CommonJS in plain old syntax (bin/package.json) so that any Node.js down to 12 can
// parse it and say what to do; the CLI itself (dist/, ES modules) is loaded only on Node.js 22+.
'use strict';
var MIN_MAJOR = 22;
var major = Number(process.versions.node.split('.')[0]);

if (major < MIN_MAJOR) {
  process.exitCode = tooOld(process.argv.slice(2));
} else {
  import('../dist/cli.js').then(function (cli) {
    return cli.main(process.argv.slice(2), process.env);
  }).then(function (code) {
    process.exitCode = code;
  });
}

/** One line on what is wrong, one on what to do (with the command that works), the error document under --json. */
function tooOld(args) {
  var version = require('../package.json').version;
  // The same arguments, run by install.sh (with none, it only installs node-prep in /usr/local/bin).
  var command = 'curl -sfL https://github.com/node-prep/node-prep/releases/download/v' + version + '/install.sh | sudo sh -s --' +
    args.map(function (a) { return ' ' + shellWord(a); }).join('');
  var message = 'Node.js ' + process.versions.node + ' is too old: node-prep needs Node.js ' + MIN_MAJOR + ' or newer.';
  var hint = 'Install Node.js ' + MIN_MAJOR + '+, or run the single executable, which needs no Node.js: ' + command;
  if (args.indexOf('--json') >= 0) {
    var doc = { kind: 'error', exitCode: 1, error: { code: 'NODE_TOO_OLD', message: message, hint: hint, node: process.versions.node, required: '>=' + MIN_MAJOR } };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  }
  process.stderr.write('node-prep: ' + message + '\n  ' + hint + '\n');
  return 1;
}

/** An argument as sh reads it back: bare when it is plain, else in single quotes. */
function shellWord(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : "'" + arg.replace(/'/g, "'\\''") + "'";
}
