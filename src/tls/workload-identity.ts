// A workload identity read from PEM files any CA can write (step-ca, Vault, cert-manager,
// SPIRE): the certificate (leaf, then intermediates), its key and the CA bundle peers must
// chain to. Everything is checked before the identity is used: the key matches, the leaf
// carries a SPIFFE ID of the trust domain and chains to the CA. The TLS contexts for both
// directions are built once per identity, so a rotation swaps them in one assignment.
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { MeshError } from '../core/errors.js';
import { serviceOf, spiffeIdsOf } from './spiffe.js';

export interface IdentityFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

export interface IdentityBytes {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

export interface WorkloadIdentity {
  readonly leaf: X509Certificate;
  readonly spiffeId: string;
  readonly service: string;
  readonly trustDomain: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly caSubjects: readonly string[];
  /** Context of TLS connections this sidecar accepts (inbound) and makes (outbound). */
  readonly context: SecureContext;
  readonly bytes: IdentityBytes;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function readIdentityFiles(files: IdentityFiles): IdentityBytes {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls.${what}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  };
  return { cert: read('certFile', files.certFile), key: read('keyFile', files.keyFile), ca: read('caFile', files.caFile) };
}

function certificates(what: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls.${what}: no PEM certificate in the file`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls.${what}: certificate ${i + 1} does not parse (${(e as Error).message})`);
    }
  });
}

/** Does `leaf` chain, through `intermediates`, to one of `roots`? (Signatures only; dates are checked apart.) */
function chainsTo(leaf: X509Certificate, intermediates: readonly X509Certificate[], roots: readonly X509Certificate[]): boolean {
  let cur = leaf;
  for (let depth = 0; depth <= intermediates.length; depth++) {
    if (roots.some((r) => cur.checkIssued(r) && cur.verify(r.publicKey))) return true;
    const next = intermediates.find((i) => i !== cur && cur.checkIssued(i) && cur.verify(i.publicKey));
    if (next === undefined) return false;
    cur = next;
  }
  return false;
}

/** Checks and builds an identity; throws MESH_ERR_IDENTITY_INVALID naming what is wrong. */
export function buildIdentity(bytes: IdentityBytes, trustDomain: string): WorkloadIdentity {
  const [leaf, ...intermediates] = certificates('certFile', bytes.cert);
  const roots = certificates('caFile', bytes.ca);
  let key;
  try {
    key = createPrivateKey(bytes.key);
  } catch (e) {
    throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls.keyFile: not a PEM private key (${(e as Error).message})`);
  }
  if (!leaf!.checkPrivateKey(key)) throw new MeshError('MESH_ERR_IDENTITY_INVALID', 'mtls.keyFile: the key does not match the certificate in mtls.certFile');
  const ids = spiffeIdsOf(leaf!);
  if (ids.length !== 1) throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls.certFile: the certificate must carry exactly one spiffe:// URI SAN, it has ${ids.length}`);
  const spiffeId = ids[0]!;
  const service = serviceOf(spiffeId, trustDomain);
  if (service === undefined) throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls.certFile: ${spiffeId} is not spiffe://${trustDomain}/service/<name> (mtls.trustDomain)`);
  if (!chainsTo(leaf!, intermediates, roots)) throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls.certFile: the certificate (issuer ${oneLine(leaf!.issuer)}) does not chain to a CA in mtls.caFile`);
  let context: SecureContext;
  try {
    context = createSecureContext({ cert: bytes.cert, key: bytes.key, ca: bytes.ca, minVersion: 'TLSv1.3' });
  } catch (e) {
    throw new MeshError('MESH_ERR_IDENTITY_INVALID', `mtls: the files do not make a TLS context (${(e as Error).message})`);
  }
  return {
    leaf: leaf!,
    spiffeId,
    service,
    trustDomain,
    notBefore: new Date(leaf!.validFrom),
    notAfter: new Date(leaf!.validTo),
    caSubjects: roots.map((r) => oneLine(r.subject)),
    context,
    bytes,
  };
}

export function loadIdentity(files: IdentityFiles, trustDomain: string): WorkloadIdentity {
  return buildIdentity(readIdentityFiles(files), trustDomain);
}

export function oneLine(dn: string): string {
  return dn.trim().split('\n').join(', ');
}
