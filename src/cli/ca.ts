// `dreammesh ca init --dir DIR [--trust-domain T] [--ttl 87600h]`: a CA for one machine and for
// trying mTLS (docs/mtls.md). Usage mistakes are one line on stderr and exit code 2.
import { parseArgs } from 'node:util';
import { initCa, parseTtl, UsageError } from '../tls/issuer.js';
import { MeshError } from '../core/errors.js';

const USAGE = 'usage: dreammesh ca init --dir DIR [--trust-domain dreammesh.local] [--ttl 87600h]';

export async function main(argv: string[]): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub !== 'init') throw new UsageError(sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`);
    const { values } = parseArgs({ args: rest, options: { dir: { type: 'string' }, 'trust-domain': { type: 'string' }, ttl: { type: 'string' } }, strict: true });
    if (values.dir === undefined || values.dir === '') throw new UsageError('--dir is required');
    const r = await initCa({ dir: values.dir, trustDomain: values['trust-domain'] ?? 'dreammesh.local', ttlMs: parseTtl(values.ttl ?? '87600h') });
    process.stdout.write(`CA ${r.spiffe} written to ${values.dir} (ca.pem, ca-key.pem 0600)\n`);
    return 0;
  } catch (e) {
    return report('ca', e, USAGE);
  }
}

/** One line for people; 2 for what they typed, 1 for anything else. */
export function report(cmd: string, e: unknown, usage: string): number {
  if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
    process.stderr.write(`dreammesh ${cmd}: ${(e as Error).message.split('\n')[0]}\n${usage}\n`);
    return 2;
  }
  const err = e as NodeJS.ErrnoException;
  if (e instanceof MeshError) process.stderr.write(`dreammesh ${cmd}: ${e.code}: ${e.message}\n`);
  else if (err.code !== undefined && err.path !== undefined) {
    process.stderr.write(`dreammesh ${cmd}: ${err.code}: ${err.path}\n`);
    return 2;
  } else process.stderr.write(`dreammesh ${cmd}: ${err.message ?? String(e)}\n`);
  return 1;
}
