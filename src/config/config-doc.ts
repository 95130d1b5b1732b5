// Renders docs/config.md from the schema, so the reference can never drift from the code
// (`dreammesh schema --markdown > docs/config.md`; a unit test checks they match).
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema } from './schema.js';

interface Node {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, Node>;
  items?: Node;
  anyOf?: Node[];
  const?: unknown;
  patternProperties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  minimum?: number;
  maximum?: number;
}

function typeOf(n: Node): string {
  if (n.anyOf) return n.anyOf.map((a) => (a.const !== undefined ? JSON.stringify(a.const) : typeOf(a))).join(' \\| ');
  if (n.type === 'array') return `${n.items ? typeOf(n.items) : 'any'}[]`;
  if (n.type === 'object' && !n.properties) return 'map';
  const range = n.minimum !== undefined || n.maximum !== undefined ? ` (${n.minimum ?? ''}..${n.maximum ?? ''})` : '';
  return (n.type ?? 'any') + range;
}

function walk(n: Node, path: string, rows: string[]): void {
  for (const [key, child] of Object.entries(n.properties ?? {})) {
    const p = path ? `${path}.${key}` : key;
    const def = child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``;
    rows.push(`| \`${p}\` | ${typeOf(child)} | ${def} | ${(child.description ?? '').replace(/\|/g, '\\|')} |`);
    if (child.properties) walk(child, p, rows);
    const values = child.patternProperties ? Object.values(child.patternProperties)[0] : typeof child.additionalProperties === 'object' ? child.additionalProperties : undefined;
    if (values?.properties) walk(values, `${p}.<name>`, rows);
  }
}

export function renderConfigDoc(schema: TSchema = ConfigSchema): string {
  const rows: string[] = [];
  walk(schema, '', rows);
  return [
    '# Configuration reference',
    '',
    'Generated from the schema in src/config/schema.ts by `dreammesh schema --markdown`; do not edit by hand.',
    'Unknown keys are errors. `dreammesh validate FILE` checks a file; `dreammesh schema` prints the JSON Schema.',
    'A relative `registry.file` is resolved against the working directory of the sidecar.',
    '',
    '| field | type | default | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
