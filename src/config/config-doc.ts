// Renders docs/config.md from the schema, so the reference can never drift from the code
// (`dreammesh schema --markdown > docs/config.md`; a unit test checks they match). Every
// nested field is listed, array items as `[]` and map entries as `<name>`, followed by the
// worked examples of config-examples.ts (which the docs test validates like any config).
import { configJsonSchema } from './json-schema.js';
import { CONFIG_EXAMPLES, type ConfigExample } from './config-examples.js';

interface Node {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, Node>;
  required?: string[];
  items?: Node;
  anyOf?: Node[];
  const?: unknown;
  patternProperties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  pattern?: string;
}

function mapValues(n: Node): Node | undefined {
  if (n.patternProperties) return Object.values(n.patternProperties)[0];
  return typeof n.additionalProperties === 'object' ? n.additionalProperties : undefined;
}

function typeOf(n: Node): string {
  if (n.anyOf) return n.anyOf.map((a) => (a.const !== undefined ? JSON.stringify(a.const) : typeOf(a))).join(' \\| ');
  if (n.type === 'array') {
    const item = n.items ? typeOf(n.items) : 'any';
    return `${n.items?.anyOf ? `(${item})` : item}[]`;
  }
  if (n.type === 'object' && !n.properties) {
    const v = mapValues(n);
    return v ? `map of ${typeOf(v)}` : 'map';
  }
  const range = n.minimum !== undefined || n.maximum !== undefined ? ` (${n.minimum ?? ''}..${n.maximum ?? ''})` : '';
  return (n.type ?? 'any') + range;
}

/** The object shapes inside a field: its own, its array items', its map values', its union branches'. */
function nested(n: Node, p: string): [Node, string][] {
  const out: [Node, string][] = [];
  if (n.properties) out.push([n, p]);
  if (n.items) out.push(...nested(n.items, `${p}[]`));
  const values = n.type === 'object' ? mapValues(n) : undefined;
  if (values) out.push(...nested(values, `${p}.<name>`));
  for (const branch of n.anyOf ?? []) if (branch.properties) out.push([branch, p]);
  return out;
}

function walk(n: Node, path: string, rows: string[]): void {
  for (const [key, child] of Object.entries(n.properties ?? {})) {
    const p = path ? `${path}.${key}` : key;
    const def = child.default !== undefined ? `\`${JSON.stringify(child.default)}\`` : n.required?.includes(key) ? 'required' : '';
    rows.push(`| \`${p}\` | ${typeOf(child)} | ${def} | ${(child.description ?? '').replace(/\|/g, '\\|')} |`);
    for (const [shape, at] of nested(child, p)) walk(shape, at, rows);
  }
}

function renderExample(e: ConfigExample): string[] {
  const files = (e.files ?? []).flatMap((f) => ['', `\`${f.name}\`:`, '', `<!-- file: ${f.name} -->`, '```yaml', f.text.trimEnd(), '```']);
  return ['', `### ${e.title}`, '', e.text.trim(), '', '```yaml', e.yaml.trimEnd(), '```', ...files];
}

export function renderConfigDoc(schema: object = configJsonSchema()): string {
  const rows: string[] = [];
  walk(schema, '', rows);
  return [
    '# Configuration reference',
    '',
    'Generated from the schema in src/config/schema.ts by `dreammesh schema --markdown`; do not edit by hand.',
    'Unknown keys are errors. `dreammesh validate FILE` checks a file (and the files it names); `dreammesh schema` prints the JSON Schema.',
    'A relative `registry.file` is resolved against the working directory of the sidecar.',
    'Every field is optional unless marked required; `[]` stands for each item of a list and `<name>` for each entry of a map.',
    '',
    '| field | type | default | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
    '## Examples',
    '',
    'Each example is a complete `mesh.yaml`; the test suite validates every one of them.',
    ...CONFIG_EXAMPLES.flatMap(renderExample),
    '',
  ].join('\n');
}
