/**
 * Side effects come in here: the HTTP client, GitHub, the pins, built once from Options and passed to
 * the core. Nothing is constructed until a command asks for it, so `plan` with pinned defaults opens
 * no connection at all.
 */
import { readFile } from 'node:fs/promises';
import { detectArch, type Arch } from '../arch.ts';
import { PinSet } from '../checksums/pins.ts';
import { NodePrepError } from '../errors.ts';
import { GitHub } from '../net/github.ts';
import { DEFAULT_HTTP, Http } from '../net/http.ts';
import type { ArtifactDeps } from '../plan/artifact.ts';
import { USER_AGENT } from '../version.ts';
import type { Options } from './options.ts';

export interface Context extends ArtifactDeps {
  options: Options;
  arch: Arch;
  http: () => Http;
  close(): Promise<void>;
}

export async function createContext(options: Options): Promise<Context> {
  let http: Http | undefined;
  let github: GitHub | undefined;
  const getHttp = () =>
    (http ??= new Http({
      ...DEFAULT_HTTP,
      userAgent: USER_AGENT,
      apiBase: options.githubApi,
      githubToken: options.githubToken,
      proxy: options.proxy,
      ...(options.timeoutMs ? { idleTimeoutMs: options.timeoutMs, connectTimeoutMs: options.timeoutMs } : {}),
      ...(options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}),
    }));
  return {
    options,
    arch: options.arch ?? detectArch(),
    http: getHttp,
    github: () => (github ??= new GitHub(getHttp(), options.mirror, options.githubApi)),
    pins: await loadPins(options.checksums),
    fetchText: async (url) => (await getHttp().getText(url)).text,
    async close() {
      await http?.close();
    },
  };
}

async function loadPins(file: string | undefined): Promise<PinSet> {
  if (file === undefined) return new PinSet();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new NodePrepError('CHECKSUMS_FILE', `Cannot read --checksums ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`, {
      hint: 'Give a file of sha256sum lines: `<sha256>  <asset file name>`.',
      fields: { file },
    });
  }
  let pins: PinSet;
  try {
    pins = new PinSet(text, file);
  } catch (err) {
    throw new NodePrepError('CHECKSUMS_FILE', `--checksums ${file}: ${(err as Error).message}.`, { fields: { file } });
  }
  if (pins.extraCount === 0) {
    throw new NodePrepError('CHECKSUMS_FILE', `--checksums ${file} holds no sha256sum lines.`, {
      hint: 'Each line is `<64 hex digits>  <asset file name>`, as sha256sum prints it.',
      fields: { file },
    });
  }
  return pins;
}
