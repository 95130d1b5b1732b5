// The config schema as plain JSON Schema, for editors and for the loader alike. TypeBox lists
// every non-optional property as `required`, but a property with a default may be left out
// (the loader fills it in), so such properties are dropped from `required`: the exported
// schema then accepts exactly the configs the loader accepts, short of the checks JSON Schema
// cannot express (address syntax, egress entries, disjoint split selectors).
import { ConfigSchema } from './schema.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function relax(node: Json): void {
  if (Array.isArray(node)) return node.forEach(relax);
  if (node === null || typeof node !== 'object') return;
  const props = node.properties;
  if (Array.isArray(node.required) && props !== null && typeof props === 'object' && !Array.isArray(props)) {
    const required = node.required.filter((k) => {
      const p = typeof k === 'string' ? props[k] : undefined;
      return !(p !== null && typeof p === 'object' && !Array.isArray(p) && 'default' in p);
    });
    if (required.length > 0) node.required = required;
    else delete node.required;
  }
  for (const v of Object.values(node)) relax(v);
}

/** A fresh copy each call: Ajv and callers may annotate what they get. */
export function configJsonSchema(): Record<string, Json> {
  const s = JSON.parse(JSON.stringify(ConfigSchema)) as Record<string, Json>;
  relax(s);
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...s };
}
