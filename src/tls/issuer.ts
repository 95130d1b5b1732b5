// A small CA for one machine and for trying mTLS: a self-signed ECDSA P-256 root whose URI SAN
// names the trust domain, and short-lived workload certificates (X.509-SVIDs) signed by it.
// Certificates are built by @peculiar/x509 on WebCrypto (an optional package, loaded here on
// first use); keys are written mode 0600.
import { webcrypto, createPrivateKey, KeyObject, X509Certificate as NodeX509, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { importOptional } from '../core/optional-dependency.js';
import { serviceSpiffeId, SERVICE_NAME } from './spiffe.js';

type X509Module = typeof import('@peculiar/x509');

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Tolerated clock skew between machines: certificates are valid from a minute ago. */
const SKEW_MS = 60_000;
export const CA_CERT = 'ca.pem';
export const CA_KEY = 'ca-key.pem';
export const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** A usage mistake: the CLI prints it on one line and exits 2. */
export class UsageError extends Error {}

async function x509(): Promise<X509Module> {
  // The library's dependency injection (tsyringe) needs the Reflect metadata polyfill first.
  await importOptional('reflect-metadata', 'dreammesh ca / cert issue');
  const m = await importOptional<X509Module & { default?: X509Module }>('@peculiar/x509', 'dreammesh ca / cert issue');
  const lib = (m.cryptoProvider === undefined ? m.default : m) as X509Module;
  lib.cryptoProvider.set(webcrypto as unknown as Crypto);
  return lib;
}

/** "90s", "15m", "24h", "30d" → milliseconds. */
export function parseTtl(text: string): number {
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(text);
  if (m === null) throw new UsageError(`--ttl: "${text}" is not a duration like 90s, 15m, 24h or 30d`);
  const n = Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (n <= 0) throw new UsageError('--ttl: must be more than 0');
  if (n > 3650 * 86_400_000) throw new UsageError('--ttl: at most 3650d');
  return n;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  return b.toString('hex');
}

function keyPem(k: CryptoKey): string {
  return KeyObject.from(k).export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function writeKey(path: string, pem: string): Promise<void> {
  // An existing file keeps its mode on write: narrow it first, so the new key is never readable by others.
  if (await exists(path)) await chmod(path, 0o600);
  await writeFile(path, pem, { mode: 0o600 });
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

export interface CaInit {
  readonly dir: string;
  readonly trustDomain: string;
  readonly ttlMs: number;
}

export async function initCa(o: CaInit): Promise<{ cert: string; spiffe: string }> {
  if (!TRUST_DOMAIN.test(o.trustDomain)) throw new UsageError(`--trust-domain: "${o.trustDomain}" must be lower-case letters, digits, ".", "_" or "-"`);
  if (await exists(join(o.dir, CA_KEY))) throw new UsageError(`${join(o.dir, CA_KEY)} already exists; refusing to replace a CA (choose another --dir)`);
  const lib = await x509();
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await lib.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=DreamMesh CA ${o.trustDomain}, O=DreamMesh`,
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + o.ttlMs),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new lib.BasicConstraintsExtension(true, 0, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
      await lib.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new lib.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${o.trustDomain}` }]),
    ],
  });
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  await writeKey(join(o.dir, CA_KEY), keyPem(keys.privateKey));
  await writeFile(join(o.dir, CA_CERT), cert.toString('pem') + '\n');
  return { cert: join(o.dir, CA_CERT), spiffe: `spiffe://${o.trustDomain}` };
}

export interface CertIssue {
  readonly caDir: string;
  readonly service: string;
  readonly outDir: string;
  readonly ttlMs: number;
}

/** The trust domain a CA made by initCa names in its URI SAN. */
function trustDomainOf(ca: NodeX509): string {
  const m = /URI:spiffe:\/\/([a-z0-9._-]+)(?:,|$)/.exec(ca.subjectAltName ?? '');
  if (m === null) throw new UsageError('the CA certificate names no spiffe://<trust domain> URI SAN (was it made by dreammesh ca init?)');
  return m[1]!;
}

export async function issueCert(o: CertIssue): Promise<{ spiffeId: string; notAfter: string; files: string[] }> {
  if (!SERVICE_NAME.test(o.service) || o.service.length > 200) throw new UsageError(`--service: "${o.service}" is not a service name (letters, digits, ".", "_", "-"; starting with a letter or digit)`);
  const caCertPath = join(o.caDir, CA_CERT);
  const caKeyPath = join(o.caDir, CA_KEY);
  if (!(await exists(o.caDir))) throw new UsageError(`--ca: ${o.caDir} does not exist (create it with: dreammesh ca init --dir ${o.caDir})`);
  if (!(await exists(caCertPath)) || !(await exists(caKeyPath))) throw new UsageError(`--ca: ${o.caDir} holds no ${CA_CERT} and ${CA_KEY} (a CA directory made by dreammesh ca init)`);
  const caPem = await readFile(caCertPath, 'utf8');
  let caNode: NodeX509;
  let caKeyDer: Buffer;
  try {
    caNode = new NodeX509(caPem);
    caKeyDer = createPrivateKey(await readFile(caKeyPath)).export({ type: 'pkcs8', format: 'der' });
  } catch (e) {
    throw new UsageError(`--ca: ${o.caDir}: the CA files do not parse (${(e as Error).message})`);
  }
  const td = trustDomainOf(caNode);
  const lib = await x509();
  const caKey = await webcrypto.subtle.importKey('pkcs8', caKeyDer, ALG, false, ['sign']);
  const ca = new lib.X509Certificate(caPem);
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const spiffeId = serviceSpiffeId(td, o.service);
  const now = Date.now();
  const notAfter = new Date(Math.min(now + o.ttlMs, new Date(caNode.validTo).getTime()));
  const cert = await lib.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `O=DreamMesh, OU=${o.service}`,
    issuer: ca.subject,
    notBefore: new Date(now - SKEW_MS),
    notAfter,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new lib.BasicConstraintsExtension(false, undefined, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature | lib.KeyUsageFlags.keyAgreement, true),
      new lib.ExtendedKeyUsageExtension([lib.ExtendedKeyUsage.serverAuth, lib.ExtendedKeyUsage.clientAuth]),
      new lib.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
      await lib.AuthorityKeyIdentifierExtension.create(ca),
      await lib.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await mkdir(o.outDir, { recursive: true, mode: 0o700 });
  // Key first, certificate last: a watcher that sees the new certificate finds its key in place.
  const files = [join(o.outDir, 'key.pem'), join(o.outDir, 'ca.pem'), join(o.outDir, 'cert.pem')];
  await writeKey(files[0]!, keyPem(keys.privateKey));
  await writeFile(files[1]!, caPem);
  await writeFile(files[2]!, cert.toString('pem') + '\n');
  return { spiffeId, notAfter: notAfter.toISOString(), files };
}
