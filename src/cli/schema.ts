// `dreammesh schema [--markdown]`: the config JSON Schema, for editors (yaml-language-server
// etc.), or the Markdown reference in docs/config.md.
import { configJsonSchema } from '../config/json-schema.js';
import { renderConfigDoc } from '../config/config-doc.js';

export async function main(argv: string[]): Promise<number> {
  if (argv.length > 1 || (argv[0] !== undefined && argv[0] !== '--markdown')) {
    process.stderr.write('usage: dreammesh schema [--markdown]\n');
    return 2;
  }
  process.stdout.write(argv[0] === '--markdown' ? renderConfigDoc() : JSON.stringify(configJsonSchema(), null, 2) + '\n');
  return 0;
}
