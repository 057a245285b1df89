import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KEY_REFRESH, NERDCTL_KEYS, RUNC_KEYS } from '../../src/data/keys/index.ts';

const asc = (name: string) => readFileSync(new URL(`../../src/data/keys/${name}`, import.meta.url), 'utf8');

describe('src/data/keys/index.ts', () => {
  it('bundles the .asc files verbatim (regenerate with `node src/data/keys/build-index.mjs`)', () => {
    expect(RUNC_KEYS).toBe(asc('runc.asc'));
    expect(NERDCTL_KEYS).toBe(asc('nerdctl.asc'));
    expect(KEY_REFRESH).toBe(asc('refresh.asc'));
  });

  it("nerdctl's key block is the runc.keyring one", () => {
    expect(RUNC_KEYS).toContain(NERDCTL_KEYS.trim());
  });
});
