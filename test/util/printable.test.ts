import { describe, expect, it } from 'vitest';
import { isSafeName, printable, printableLines } from '../../src/util/printable.ts';

describe('printable', () => {
  it.each([
    ['v2.3.4', 'v2.3.4'],
    ['containerd-2.3.4-linux-amd64.tar.gz', 'containerd-2.3.4-linux-amd64.tar.gz'],
    ['v1.0.0\nsha256 pinned (built in)', 'v1.0.0\\nsha256 pinned (built in)'],
    ['a\r\tb', 'a\\r\\tb'],
    ['\u001b[2J\u001b]0;owned\u0007', '\\x1b[2J\\x1b]0;owned\\x07'],
    ['nul\u0000del\u007fcsi\u009b', 'nul\\x00del\\x7fcsi\\x9b'],
    ['evil\u202egpj.exe', 'evil\\u202egpj.exe'],
    ['zero\u200bwidth\ufeff', 'zero\\u200bwidth\\ufeff'],
    ['line\u2028sep', 'line\\u2028sep'],
    ['ünïcödé 名前 ✓', 'ünïcödé 名前 ✓'],
    ['', ''],
  ])('%j -> %j', (input, output) => {
    expect(printable(input)).toBe(output);
  });

  it('leaves no control character behind, whatever comes in', () => {
    const all = Array.from({ length: 0x3000 }, (_, i) => String.fromCharCode(i)).join('');
    expect(printable(all)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  });
});

describe('printableLines', () => {
  it('keeps line breaks and tabs, escapes the rest', () => {
    expect(printableLines('a\tb\nc\u001b[0m\r\n')).toBe('a\tb\nc\\x1b[0m\\r\n');
  });
});

describe('isSafeName', () => {
  it.each([
    ['runc.amd64', true],
    ['v1.4.3', true],
    ['', false],
    ['.', false],
    ['..', false],
    ['../../etc/passwd', false],
    ['a/b', false],
    ['a\\b', false],
    ['v1.0.0\n', false],
    ['x\u001b[31m', false],
  ])('%j -> %s', (name, safe) => {
    expect(isSafeName(name)).toBe(safe);
  });
});
