/**
 * The JSON Schemas in schemas/, compiled once with ajv (draft 2020-12, formats on), and a helper that
 * names every violation. Strict mode stays on for unknown keywords and formats; it is relaxed for
 * `type`/`required` in if/then and anyOf branches, which JSON Schema allows and the schemas use.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';
import { REPO } from '../support/cli.ts';

export const SCHEMA_DIR = path.join(REPO, 'schemas');

export const SCHEMA_FILES = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json')).sort();

/** Which schema each command's --json document follows (besides error.schema.json when it fails). */
export const SCHEMA_OF = {
  plan: 'plan.schema.json',
  install: 'install.schema.json',
  download: 'download.schema.json',
  status: 'status.schema.json',
  uninstall: 'uninstall.schema.json',
  versions: 'versions.schema.json',
  smoke: 'smoke.schema.json',
  doctor: 'doctor.schema.json',
  error: 'error.schema.json',
} as const;

export type SchemaName = keyof typeof SCHEMA_OF;

export function makeAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
  // ajv-formats is CommonJS: its plugin is both module.exports and module.exports.default.
  formatsModule.default(ajv);
  for (const f of SCHEMA_FILES) ajv.addSchema(JSON.parse(readFileSync(path.join(SCHEMA_DIR, f), 'utf8')));
  return ajv;
}

const ajv = makeAjv();

export function validatorFor(name: SchemaName): ValidateFunction {
  const v = ajv.getSchema(SCHEMA_OF[name]);
  if (!v) throw new Error(`schemas/${SCHEMA_OF[name]} is not loaded`);
  return v;
}

/** Violations of the schema, one readable line each; [] when the document is valid. */
export function violations(name: SchemaName, doc: unknown): string[] {
  const v = validatorFor(name);
  return v(doc) ? [] : (v.errors ?? []).map(describe);
}

function describe(e: ErrorObject): string {
  return `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)} (${e.schemaPath})`;
}
