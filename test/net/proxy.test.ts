import { describe, expect, it } from 'vitest';
import { proxyFor } from '../../src/net/proxy.ts';

const P = { https: 'http://proxy:3128', http: 'http://proxy:8080' };

describe('proxyFor', () => {
  it.each([
    ['https://github.com/x', {}, 'http://proxy:3128'],
    ['http://mirror.local/x', {}, 'http://proxy:8080'],
    ['https://github.com/x', { no: 'github.com' }, undefined],
    ['https://api.github.com/x', { no: '.github.com' }, undefined],
    ['https://api.github.com/x', { no: 'github.com' }, undefined],
    ['https://notgithub.com/x', { no: 'github.com' }, 'http://proxy:3128'],
    ['http://127.0.0.1:8080/x', { no: '127.0.0.1' }, undefined],
    ['http://127.0.0.1:8080/x', { no: '127.0.0.1:9090' }, 'http://proxy:8080'],
    ['https://github.com/x', { no: '*' }, undefined],
    ['https://github.com/x', { no: ' example.org , github.com ' }, undefined],
  ] as const)('%s with %o -> %s', (url, extra, want) => {
    expect(proxyFor(url, { ...P, ...extra })).toBe(want);
  });

  it('uses HTTP_PROXY for https when HTTPS_PROXY is not set, and nothing when neither is', () => {
    expect(proxyFor('https://github.com/x', { http: 'http://p:1' })).toBe('http://p:1');
    expect(proxyFor('https://github.com/x', {})).toBeUndefined();
  });
});
