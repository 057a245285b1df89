/**
 * docs/reference.md cannot fall behind the CLI: its flag lists and flag table are checked against
 * what the argument parser really accepts for each command, and its environment table against
 * ENV_VARS. The CLI's --help is held to COMMAND_FLAGS too, with the gaps known today listed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { helpFor } from '../../src/cli/help.ts';
import { COMMAND_FLAGS, ENV_VARS, parseArgv } from '../../src/cli/options.ts';
import { COMMANDS, type Command } from '../../src/commands/options.ts';
import { EXIT } from '../../src/errors.ts';
import { REPO } from '../support/cli.ts';

const REFERENCE = readFileSync(path.join(REPO, 'docs/reference.md'), 'utf8');
const flagsIn = (text: string) => new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z-]*[a-z])/g)].map((m) => m[1]!));
/** Flags that open a code span (`--arch amd64`), not ones inside a quoted command (`systemctl disable --now`). */
const codeFlagsIn = (text: string) => new Set([...text.matchAll(/`--([a-z][a-z-]*[a-z])/g)].map((m) => m[1]!));
const sorted = (s: Iterable<string>) => [...s].sort();

/** Does `node-prep COMMAND --FLAG` get past the parser's "does not take" check? */
function accepts(command: Command, flag: string): boolean {
  const attempt = (argv: string[]): 'yes' | 'no' | 'needs-value' => {
    try {
      parseArgv(argv, {});
      return 'yes';
    } catch (err) {
      const message = (err as Error).message;
      if (message.includes(`does not take --${flag}.`) || message.startsWith('Unknown flag')) return 'no';
      if (message.includes('argument missing')) return 'needs-value';
      return 'yes'; // a bad value, a missing --bundle, ...: the flag itself was taken
    }
  };
  const bare = attempt([command, `--${flag}`]);
  return bare === 'needs-value' ? attempt([command, `--${flag}`, 'x']) === 'yes' : bare === 'yes';
}

/** The text under a heading, up to the next heading of the same or a higher level. */
function section(heading: string): string {
  const lines = REFERENCE.split('\n');
  const start = lines.findIndex((l) => l === heading);
  if (start < 0) throw new Error(`docs/reference.md has no heading ${JSON.stringify(heading)}`);
  const level = heading.indexOf(' ');
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.indexOf(' ') <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** Rows of the first markdown table in `text`, as trimmed cells, header and rule left out. */
function tableRows(text: string): string[][] {
  const rows = text.split('\n').filter((l) => l.startsWith('|')).map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
  return rows.slice(2);
}

// Every flag anyone could mean: the parser's per-command lists, what --help mentions, and the docs.
const candidates = new Set<string>([
  ...Object.values(COMMAND_FLAGS).flat(),
  ...flagsIn(helpFor(undefined)),
  ...COMMANDS.flatMap((c) => [...flagsIn(helpFor(c))]),
  ...codeFlagsIn(REFERENCE),
]);
const acceptedBy = new Map([...candidates].map((f) => [f, COMMANDS.filter((c) => accepts(c, f))]));

describe('docs/reference.md', () => {
  it('has a section per command whose Flags: line lists exactly the flags that command takes', () => {
    for (const command of COMMANDS) {
      const text = section(`### \`node-prep ${command}\``);
      const line = text.slice(text.indexOf('Flags:'), text.indexOf('\n\n', text.indexOf('Flags:')));
      expect(text.includes('Flags:'), `${command}: no Flags: line`).toBe(true);
      expect(sorted(flagsIn(line)), `node-prep ${command}`).toEqual(sorted(COMMAND_FLAGS[command]));
    }
  });

  it('has a row in the flag table for every flag, naming exactly the commands that take it', () => {
    const rows = tableRows(section('## Flags'));
    const documented = new Map<string, string[]>();
    for (const [flag, commands] of rows) {
      const name = /^`--([a-z-]+)/.exec(flag ?? '')?.[1];
      expect(name, `a row of the flag table: ${flag}`).toBeDefined();
      documented.set(name!, commands === 'all' ? [...COMMANDS] : commands!.split(',').map((c) => c.trim()));
    }
    for (const [flag, commands] of acceptedBy) {
      if (commands.length === 0) continue; // checked below: no such flag
      expect(documented.has(flag), `--${flag} (taken by ${commands.join(', ')}) has no row in the flag table`).toBe(true);
      expect(sorted(documented.get(flag)!), `the commands column of --${flag}`).toEqual(sorted(commands));
    }
  });

  it('names no flag that no command takes', () => {
    const unknown = [...codeFlagsIn(REFERENCE)].filter((f) => acceptedBy.get(f)!.length === 0);
    expect(unknown).toEqual([]);
  });

  it('lists the short flags', () => {
    for (const short of ['`-q`', '`-y`', '`-h`', '-V']) expect(REFERENCE).toContain(short);
  });

  it('documents every environment variable node-prep reads, and no other', () => {
    const table = section('## Environment variables');
    for (const name of ENV_VARS) expect(table, name).toContain(`\`${name}\``);
    const mentioned = new Set([...REFERENCE.matchAll(/\bNODE_PREP_[A-Z_]+/g)].map((m) => m[0]));
    expect(sorted(mentioned).filter((n) => !(ENV_VARS as readonly string[]).includes(n))).toEqual([]);
  });

  it('documents every exit code of EXIT and those of a signal, and --help names them', () => {
    const codes = Object.values(EXIT).map(String);
    expect(tableRows(section('## Exit codes')).map((r) => r[0])).toEqual([...codes, '129, 130, 143']);
    expect(helpFor(undefined)).toMatch(new RegExp(`Exit codes: ${codes.map((c) => `${c} [^,]+`).join(', ')}\\.`));
  });
});

describe('node-prep COMMAND --help', () => {
  it.each(COMMANDS)('%s --help names the flags the command takes, and no flag it refuses', (command) => {
    const help = flagsIn(helpFor(command));
    const common = new Set(['json', 'quiet', 'verbose', 'yes', 'help']);
    const missing = COMMAND_FLAGS[command].filter((f) => !help.has(f));
    const refused = [...help].filter((f) => !common.has(f) && !accepts(command, f));
    expect(missing, 'taken but not in --help').toEqual([]);
    expect(refused, 'in --help but refused').toEqual([]);
  });
});
