/**
 * The npm package as `npm pack` makes it: what the CLI needs at run time is in it, the single
 * executables are not, and the README read on the npm page links to pages that exist.
 */
import { readFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.ts';

const GITHUB = 'https://github.com/node-prep/node-prep';

describe('the npm package', () => {
  it('holds the entry, its CommonJS marker, the built CLI, every template and LICENSE; not dist/sea or source maps', async () => {
    const r = await execa('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO });
    const files = (JSON.parse(String(r.stdout)) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    const templates = readdirSync(path.join(REPO, 'templates'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.relative(REPO, path.join(e.parentPath, e.name)));
    for (const f of ['bin/node-prep.js', 'bin/package.json', 'dist/cli.js', 'package.json', 'LICENSE', 'README.md', 'CHANGELOG.md', ...templates]) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('dist/sea') || f.endsWith('.map'))).toEqual([]);
  });

  it('says where it comes from, under the license its LICENSE file holds', async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg).toMatchObject({ license: 'Apache-2.0', homepage: `${GITHUB}#readme`, bugs: { url: `${GITHUB}/issues` }, repository: { url: `git+${GITHUB}.git` } });
    const license = await readFile(path.join(REPO, 'LICENSE'), 'utf8');
    expect(license).toContain('Apache License\n                           Version 2.0, January 2004');
    expect(license).toContain('END OF TERMS AND CONDITIONS');
  });

  it('has a README whose links work from the npm page: absolute, and into this repository only where the file exists', async () => {
    const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(0);
    expect(links.filter((l) => !/^(https?:\/\/|#)/.test(l)), 'relative links break on the npm page').toEqual([]);
    for (const l of links) {
      const inRepo = /^https:\/\/github\.com\/node-prep\/node-prep\/(?:blob|tree)\/main\/([^#]+)/.exec(l)?.[1];
      if (inRepo) expect(existsSync(path.join(REPO, inRepo)), l).toBe(true);
    }
  });
});

describe('.github/workflows/release.yml', () => {
  it('runs the scripts CI runs and attaches what they make', async () => {
    const workflow = await readFile(path.join(REPO, '.github/workflows/release.yml'), 'utf8');
    const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const ci = await readFile(path.join(REPO, '.ci/run'), 'utf8');
    expect(workflow).toContain('bash .ci/run');
    for (const [, script] of workflow.matchAll(/npm run ([\w:-]+)/g)) {
      expect(pkg.scripts, script).toHaveProperty(script!);
      expect(ci, `.ci/run runs ${script} too`).toContain(`npm run ${script}`);
    }
    for (const asset of ['dist/sea/node-prep-linux-amd64', 'dist/sea/node-prep-linux-arm64', 'dist/sea/SHA256SUMS', 'install.sh']) expect(workflow).toContain(asset);
    expect(workflow).toContain('npm pack --pack-destination dist/release');
    expect(workflow).toContain('npm publish --provenance');
  });
});
