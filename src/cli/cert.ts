// `dreammesh cert issue --ca DIR --service NAME --out DIR [--ttl 24h]`: a workload certificate
// (ECDSA P-256, URI SAN spiffe://<trust domain>/service/<name>) with cert.pem, key.pem (0600)
// and ca.pem, the three files mtls.certFile, keyFile and caFile name.
import { parseArgs } from 'node:util';
import { issueCert, parseTtl, UsageError } from '../tls/issuer.js';
import { report } from './ca.js';

const USAGE = 'usage: dreammesh cert issue --ca DIR --service NAME --out DIR [--ttl 24h]';

export async function main(argv: string[]): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub !== 'issue') throw new UsageError(sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`);
    const { values } = parseArgs({ args: rest, options: { ca: { type: 'string' }, service: { type: 'string' }, out: { type: 'string' }, ttl: { type: 'string' } }, strict: true });
    for (const k of ['ca', 'service', 'out'] as const) if (values[k] === undefined || values[k] === '') throw new UsageError(`--${k} is required`);
    const r = await issueCert({ caDir: values.ca!, service: values.service!, outDir: values.out!, ttlMs: parseTtl(values.ttl ?? '24h') });
    process.stdout.write(`${r.spiffeId} valid until ${r.notAfter}: ${r.files.join(', ')}\n`);
    return 0;
  } catch (e) {
    return report('cert', e, USAGE);
  }
}
