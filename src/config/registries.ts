/**
 * `--registries FILE`: the registries.yaml format of k3s and RKE2, read into plain data. The file is
 * checked against src/data/registries.schema.json, then for what containerd's hosts.toml cannot
 * express; every complaint names the line and the key. A secret from the file never appears in a
 * message. https://docs.k3s.io/installation/private-registry
 */
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import schema from '../data/registries.schema.json' with { type: 'json' };
import { UsageError } from '../errors.ts';

/** A registries file is a page or two of YAML; anything larger is refused before it is parsed. */
export const MAX_REGISTRIES_BYTES = 64 * 1024;

export interface RegistryAuth {
  username?: string;
  password?: string;
  /** base64 of `username:password`, as in a Docker config.json. */
  auth?: string;
  /** A bearer token sent as is. */
  token?: string;
}

export interface RegistryTls {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  insecure_skip_verify?: boolean;
}

export interface RegistryConfig {
  auth?: RegistryAuth | null;
  tls?: RegistryTls | null;
}

/** The file as read: registry name -> its mirror endpoints; host -> its auth and TLS settings. */
export interface RegistriesSpec {
  mirrors: Record<string, { endpoint: string[] }>;
  /** null: listed with no settings (which keeps the `*` defaults away from that host). */
  configs: Record<string, RegistryConfig | null>;
}

const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

/** Parse and check a registries file; `file` names it in messages. Throws UsageError (exit 2). */
export function parseRegistries(text: string, file: string): RegistriesSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const at = (pos: number | undefined) => (pos === undefined ? file : `${file}:${lines.linePos(pos).line}`);
  const problem = doc.errors[0];
  if (problem) {
    // The parser's own message quotes source text (which may hold a password): say where, not what.
    // A duplicate key's range starts just before it; its end is on the key's line.
    throw new UsageError(`${at(problem.code === 'DUPLICATE_KEY' ? problem.pos[1] : problem.pos[0])}: not valid YAML (${problem.code.toLowerCase().replace(/_/g, ' ')}).`, hint(file));
  }
  const value: unknown = doc.toJS({ maxAliasCount: 50 }) ?? {};
  if (!validate(value)) {
    const errors = (validate.errors ?? []).slice().sort((a, b) => depth(b) - depth(a));
    const e = errors[0]!;
    const keys = keyPath(e);
    throw new UsageError(`${at(positionOf(doc, keys))}: ${keys.length > 0 ? keys.join('.') : 'the file'}: ${describe(e)}.`, hint(file));
  }
  const spec = value as { mirrors?: Record<string, { endpoint?: string[]; rewrite?: unknown } | null> | null; configs?: Record<string, RegistryConfig | null> | null };
  const refuse = (keys: string[], why: string): never => {
    throw new UsageError(`${at(positionOf(doc, keys))}: ${keys.join('.')}: ${why}`, hint(file));
  };
  const mirrors: RegistriesSpec['mirrors'] = {};
  for (const [host, m] of Object.entries(spec.mirrors ?? {})) {
    if (m?.rewrite !== undefined && m.rewrite !== null && Object.keys(m.rewrite).length > 0) {
      refuse(['mirrors', host, 'rewrite'], "containerd's hosts.toml has no rewrite (only k3s's own containerd build does); push the images under the names they are pulled by, or point the endpoint at a path that serves them.");
    }
    mirrors[host] = { endpoint: m?.endpoint ?? [] };
  }
  const configs: RegistriesSpec['configs'] = {};
  for (const [host, c] of Object.entries(spec.configs ?? {})) {
    const auth = c?.auth;
    for (const key of ['identitytoken', 'identity_token'] as const) {
      if (auth && key in auth) {
        refuse(['configs', host, 'auth', key], 'an identity token is an OAuth refresh token that containerd can only use through a credential helper, not from hosts.toml; give username and password, auth, or token.');
      }
    }
    if (auth) {
      const given = (['username', 'auth', 'token'] as const).filter((k) => auth[k] !== undefined);
      if (given.length > 1) refuse(['configs', host, 'auth', given[1]!], `give one of username/password, auth or token, not ${given.join(' and ')}.`);
      if (auth.username !== undefined && auth.password === undefined) refuse(['configs', host, 'auth', 'username'], 'a username needs its password.');
      if (auth.password !== undefined && auth.username === undefined) refuse(['configs', host, 'auth', 'password'], 'a password needs its username.');
      if (auth.username?.includes(':')) refuse(['configs', host, 'auth', 'username'], 'basic auth cannot carry a username with a colon.');
      if (auth.auth !== undefined && !/^[A-Za-z0-9+/]+={0,2}$/.test(auth.auth)) refuse(['configs', host, 'auth', 'auth'], 'give base64 of username:password (as in a Docker config.json).');
      if (auth.token !== undefined && !/^[\x21-\x7e]+$/.test(auth.token)) refuse(['configs', host, 'auth', 'token'], 'a token is printable ASCII without spaces.');
      for (const k of ['username', 'password'] as const) {
        if (auth[k] !== undefined && /[\p{Cc}]/u.test(auth[k])) refuse(['configs', host, 'auth', k], 'holds a control character.');
      }
    }
    const tls = c?.tls;
    if (tls) {
      for (const k of ['ca_file', 'cert_file', 'key_file'] as const) {
        const p = tls[k];
        if (p !== undefined && (!p.startsWith('/') || /[\p{Cc}]/u.test(p) || p.split('/').includes('..'))) {
          refuse(['configs', host, 'tls', k], 'give an absolute path on the node, without `..` or control characters.');
        }
      }
      if (tls.key_file !== undefined && tls.cert_file === undefined) refuse(['configs', host, 'tls', 'key_file'], 'a client key needs its cert_file.');
    }
    configs[host] = c === null || (c.auth == null && c.tls == null) ? null : { ...(auth ? { auth } : {}), ...(tls ? { tls } : {}) };
  }
  return { mirrors, configs };
}

const hint = (file: string) => `Fix ${file}; docs/reference.md (--registries) lists the keys node-prep reads.`;

/** The key path an ajv error is about, as the YAML keys. */
function keyPath(e: ErrorObject): string[] {
  const keys = e.instancePath.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (e.keyword === 'additionalProperties') keys.push(String(e.params.additionalProperty));
  return keys;
}

const depth = (e: ErrorObject) => keyPath(e).length;

function describe(e: ErrorObject): string {
  switch (e.keyword) {
    case 'additionalProperties':
      return 'is not a key of this format';
    case 'type':
      return `must be ${String(e.params.type).replace(',', ' or ')}`;
    default:
      // ajv's messages name limits and types, never the value.
      return e.message ?? 'is not valid';
  }
}

/** Where a key path starts in the source (the key itself when there is one). */
function positionOf(doc: Document, keys: string[]): number | undefined {
  for (let n = keys.length; n > 0; n--) {
    const parent = n === 1 ? doc.contents : doc.getIn(keys.slice(0, n - 1), true);
    if (parent && isNode(parent) && 'items' in parent) {
      const items = parent.items as Array<{ key?: unknown; value?: unknown }>;
      for (const item of items) {
        const key = item.key;
        if (isNode(key) && 'value' in key && String(key.value) === keys[n - 1]) return key.range?.[0];
      }
      const index = Number(keys[n - 1]);
      const element = Number.isInteger(index) ? items[index] : undefined;
      if (isNode(element)) return element.range?.[0];
    }
  }
  return doc.contents?.range?.[0];
}
