// `dreammesh schema`: the config JSON Schema, for editors (yaml-language-server etc.).
import { ConfigSchema } from '../config/schema.js';

export async function main(_argv: string[]): Promise<number> {
  process.stdout.write(JSON.stringify(ConfigSchema, null, 2) + '\n');
  return 0;
}
