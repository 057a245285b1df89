import { describe, expect, it } from 'vitest';
import { renderNodeFiles, type NodeConfigInputs } from '../../src/config/render.ts';

const base: NodeConfigInputs = { containerdVersion: '2.1.9', prefix: '/usr/local', cgroupDriver: 'systemd', registryMirrors: [], namespace: 'k8s.io', components: ['containerd', 'runc'] };
const DROP_IN = '/etc/systemd/system/containerd.service.d/http-proxy.conf';
const dropIn = async (proxy: NodeConfigInputs['containerdProxy']) => (await renderNodeFiles({ ...base, containerdProxy: proxy })).find((f) => f.nodePath === DROP_IN);

describe("containerd's proxy drop-in", () => {
  it('sets the variables containerd reads, for its unit only', async () => {
    const f = (await dropIn({ http: 'http://proxy.example:3128', https: 'http://proxy.example:3128', no: 'localhost,10.0.0.0/8', source: '--containerd-proxy' }))!;
    expect(f.mode).toBe(0o644);
    expect(f.shown).toBeUndefined();
    expect(f.content.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      '[Service]',
      'Environment="HTTP_PROXY=http://proxy.example:3128"',
      'Environment="HTTPS_PROXY=http://proxy.example:3128"',
      'Environment="NO_PROXY=localhost,10.0.0.0/8"',
    ]);
  });

  it("with credentials: root only, the shown text without them, and systemd's % escaped", async () => {
    const url = 'http://us%40er:p%25ss@proxy.example:3128';
    const f = (await dropIn({ http: url, https: url, source: '--containerd-proxy' }))!;
    expect(f.mode).toBe(0o600);
    // systemd expands %-specifiers inside Environment=: %% is one %.
    expect(f.content).toContain('Environment="HTTP_PROXY=http://us%%40er:p%%25ss@proxy.example:3128"');
    expect(f.shown).toContain('Environment="HTTP_PROXY=http://<redacted>@proxy.example:3128"');
    expect(f.shown).not.toContain('p%%25ss');
  });

  it('no flags, no drop-in', async () => {
    expect(await dropIn(undefined)).toBeUndefined();
  });
});
