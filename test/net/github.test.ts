import { describe, expect, it } from 'vitest';
import { nextLink } from '../../src/net/github.ts';
import { versionOfTag } from '../../src/versions/release.ts';
import { redactUrl, redactSecrets } from '../../src/net/redact.ts';

describe('nextLink', () => {
  it('finds rel="next" among GitHub link relations', () => {
    const link =
      '<https://api.github.com/repositories/1/releases?per_page=2&page=1>; rel="prev", <https://api.github.com/repositories/1/releases?per_page=2&page=3>; rel="next", <https://api.github.com/repositories/1/releases?per_page=2&page=5>; rel="last"';
    expect(nextLink(link)).toBe('https://api.github.com/repositories/1/releases?per_page=2&page=3');
  });
  it('is undefined on the last page or with no header', () => {
    expect(nextLink('<https://x/?page=1>; rel="first", <https://x/?page=4>; rel="prev"')).toBeUndefined();
    expect(nextLink(undefined)).toBeUndefined();
  });
});

describe('versionOfTag', () => {
  it.each([
    ['v2.3.4', '2.3.4'],
    ['api/v1.9.0', undefined],
    ['v2.4.0-beta.0', undefined],
    ['2.3.4', undefined],
  ])('%s -> %s', (tag, version) => expect(versionOfTag(tag)).toBe(version));
});

describe('redaction', () => {
  it('drops userinfo and query strings', () => {
    expect(redactUrl('https://user:secret@cdn.example/x/y.tgz?sig=abc&token=t')).toBe('https://***@cdn.example/x/y.tgz?…');
  });
  it('removes secrets from text', () => {
    expect(redactSecrets('Bearer ghp_abcdef1234 failed', ['ghp_abcdef1234'])).toBe('Bearer *** failed');
  });
});
