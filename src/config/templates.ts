import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { NodePrepError } from '../errors.ts';

/** Template files under templates/, by name. */
export type TemplateName =
  | 'containerd/config-v2.toml'
  | 'containerd/config-v3.toml'
  | 'containerd/config-v4.toml'
  | 'containerd/containerd.service'
  | 'containerd/hosts.toml'
  | 'containerd/http-proxy.conf'
  | 'crictl/crictl.yaml'
  | 'nerdctl/nerdctl.toml'
  | 'node/modules-load.conf'
  | 'node/sysctl.conf';

let templatesDir: string | undefined;
const cache = new Map<TemplateName, Promise<string>>();

/**
 * templates/ sits beside package.json. Walk up from this module instead of using a fixed `../..`:
 * the same code runs as src/config/templates.ts (vitest) and as a bundled chunk in dist/.
 */
export function findTemplatesDir(from: string = import.meta.url): string {
  if (templatesDir !== undefined && from === import.meta.url) return templatesDir;
  let dir = path.dirname(from.startsWith('file:') ? fileURLToPath(from) : from);
  for (;;) {
    const candidate = path.join(dir, 'templates');
    if (existsSync(path.join(dir, 'package.json')) && existsSync(candidate)) {
      if (from === import.meta.url) templatesDir = candidate;
      return candidate;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new NodePrepError('TEMPLATES_MISSING', `node-prep's templates/ folder was not found above ${from}.`, {
        hint: 'The installation is incomplete: reinstall node-prep (templates/ ships with the package).',
      });
    }
    dir = parent;
  }
}

/**
 * Read once per process: rendering is called for plan, apply and status alike. The single executable
 * carries templates/ as assets under the same names (scripts/build-sea.mjs), so it needs no files.
 */
export function loadTemplate(name: TemplateName): Promise<string> {
  let text = cache.get(name);
  if (text === undefined) {
    text = isSea() ? Promise.resolve(getAsset(`templates/${name}`, 'utf8')) : readFile(path.join(findTemplatesDir(), name), 'utf8');
    cache.set(name, text);
    // A failed read is not cached: the next call tries again.
    text.catch(() => cache.delete(name));
  }
  return text;
}
