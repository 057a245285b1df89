import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { fillTemplate, tomlString } from '../../src/config/template.ts';

describe('fillTemplate', () => {
  it.each([
    ['a={{x}}', { x: 'b' }, 'a=b'],
    ['{{ x }}/{{n}}/{{flag}}', { x: 'b', n: 10, flag: false }, 'b/10/false'],
    ['k = {{x|toml}}', { x: 'say "hi"' }, 'k = "say \\"hi\\""'],
    ['[{{#on}}yes{{/on}}]', { on: true }, '[yes]'],
    ['[{{#on}}yes{{/on}}]', { on: false }, '[]'],
    ['{{#items}}<{{u}}:{{outer}}>{{/items}}', { outer: 'o', items: [{ u: '1' }, { u: '2' }] }, '<1:o><2:o>'],
    ['{{#items}}x{{/items}}', { items: [] }, ''],
    // A section tag alone on its line takes its line along.
    ['a\n{{#on}}\nb\n{{/on}}\nc\n', { on: true }, 'a\nb\nc\n'],
    ['a\n  {{#on}}  \nb\n{{/on}}\nc\n', { on: false }, 'a\nc\n'],
    ['{{#outer}}{{#inner}}x{{/inner}}{{/outer}}', { outer: true, inner: true }, 'x'],
  ])('%j with %j', (template, context, expected) => {
    expect(fillTemplate(template, context)).toBe(expected);
  });

  it.each([
    ['{{missing}}', {}, /no value for \{\{missing\}\}/],
    ['{{x|yaml}}', { x: 'a' }, /unknown filter \|yaml/],
    ['{{#a}}x', { a: true }, /\{\{#a\}\} is never closed/],
    ['{{#a}}x{{/b}}', { a: true }, /\{\{\/b\}\} closes \{\{#a\}\}/],
    ['x{{/b}}', {}, /closes nothing/],
    ['{{#a}}x{{/a}}', { a: 'text' }, /needs a boolean or a list/],
    ['{{a}}', { a: [] }, /is a list/],
  ])('%j fails', (template, context, message) => {
    expect(() => fillTemplate(template, context)).toThrow(message);
  });
});

describe('tomlString', () => {
  it.each([
    ['plain', '"plain"'],
    ['a"b', '"a\\"b"'],
    ['back\\slash', '"back\\\\slash"'],
    ['tab\there', '"tab\\there"'],
    ['line\nbreak\r', '"line\\nbreak\\r"'],
    ['\u0000\u001f\u007f', '"\\u0000\\u001F\\u007F"'],
    ['ünïcødé ✓', '"ünïcødé ✓"'],
  ])('%j → %s', (input, expected) => {
    expect(tomlString(input)).toBe(expected);
  });

  it('round-trips through a TOML parser', () => {
    const nasty = 'q"\\ \b\f\n\r\t \u0001 \u007f \'\'\' """ ✓ [x] = #';
    expect(parse(`k = ${tomlString(nasty)}`)).toEqual({ k: nasty });
  });
});
