/**
 * The placeholder syntax of templates/ (kept tiny on purpose; a typo must fail, not render empty):
 *
 *   {{name}}              the value as is (string, number or boolean)
 *   {{name|toml}}         the value as a TOML basic string, quoted and escaped
 *   {{#name}}…{{/name}}   a section: kept once when the value is true, dropped when false,
 *                         repeated for each object of an array with that object's fields in scope
 *
 * A section tag alone on its line takes the line with it, so sections leave no blank lines behind.
 * An unknown name, a value of the wrong kind or an unclosed section throws.
 */
export type TemplateScalar = string | number | boolean;
export type TemplateValue = TemplateScalar | TemplateContext[];
export interface TemplateContext {
  [name: string]: TemplateValue;
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'value'; name: string; filter: string | undefined }
  | { kind: 'section'; name: string; body: Node[] };

const TAG = /\{\{\s*([#/]?)\s*([A-Za-z_]\w*)\s*(?:\|\s*(\w+)\s*)?\}\}/g;
const STANDALONE_SECTION_TAG = /^[ \t]*(\{\{\s*[#/][^}]*\}\})[ \t]*\r?\n/gm;
const FILTERS: Record<string, (s: string) => string> = { toml: tomlString };

export function fillTemplate(template: string, context: TemplateContext, name = 'template'): string {
  const nodes = parse(template.replace(STANDALONE_SECTION_TAG, '$1'), name);
  return renderNodes(nodes, [context], name);
}

function parse(source: string, name: string): Node[] {
  const root: Node[] = [];
  const stack: Array<{ name: string; body: Node[] }> = [];
  let body = root;
  let last = 0;
  for (const m of source.matchAll(TAG)) {
    const [tag, sigil, key = '', filter] = m;
    if (m.index > last) body.push({ kind: 'text', text: source.slice(last, m.index) });
    last = m.index + tag.length;
    if (sigil === '#') {
      const section: Node = { kind: 'section', name: key, body: [] };
      body.push(section);
      stack.push({ name: key, body });
      body = section.body;
    } else if (sigil === '/') {
      const open = stack.pop();
      if (open?.name !== key) throw new Error(`${name}: {{/${key}}} closes ${open ? `{{#${open.name}}}` : 'nothing'}`);
      body = open.body;
    } else {
      if (filter !== undefined && !(filter in FILTERS)) throw new Error(`${name}: unknown filter |${filter} in ${tag}`);
      body.push({ kind: 'value', name: key, filter });
    }
  }
  if (stack.length > 0) throw new Error(`${name}: {{#${stack.at(-1)?.name}}} is never closed`);
  if (last < source.length) body.push({ kind: 'text', text: source.slice(last) });
  return root;
}

function renderNodes(nodes: Node[], scopes: TemplateContext[], name: string): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') {
      out += node.text;
      continue;
    }
    const value = lookup(scopes, node.name, name);
    if (node.kind === 'value') {
      if (typeof value === 'object') throw new Error(`${name}: {{${node.name}}} is a list; use {{#${node.name}}}`);
      out += node.filter === undefined ? String(value) : FILTERS[node.filter]!(String(value));
    } else if (typeof value === 'boolean') {
      if (value) out += renderNodes(node.body, scopes, name);
    } else if (Array.isArray(value)) {
      for (const item of value) out += renderNodes(node.body, [item, ...scopes], name);
    } else {
      throw new Error(`${name}: section {{#${node.name}}} needs a boolean or a list`);
    }
  }
  return out;
}

function lookup(scopes: TemplateContext[], key: string, name: string): TemplateValue {
  for (const scope of scopes) if (Object.hasOwn(scope, key)) return scope[key]!;
  throw new Error(`${name}: no value for {{${key}}}`);
}

/**
 * A TOML basic string. Escapes what TOML 1.0 forbids raw in one: `"`, `\` and every control
 * character (U+0000–U+001F, U+007F), https://toml.io/en/v1.0.0#string
 */
export function tomlString(value: string): string {
  const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };
  const escaped = value.replace(/["\\\u0000-\u001f\u007f]/g, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`);
  return `"${escaped}"`;
}
