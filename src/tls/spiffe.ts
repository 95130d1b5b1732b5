// SPIFFE IDs of DreamMesh workloads: spiffe://<trust domain>/service/<service>, carried as the
// one URI SAN of an X.509-SVID. Parsing reads the SAN that node:crypto already decoded.
import type { X509Certificate } from 'node:crypto';

/** Service names as the registry accepts them. */
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function serviceSpiffeId(trustDomain: string, service: string): string {
  return `spiffe://${trustDomain}/service/${service}`;
}

/** The spiffe:// URI SANs of a certificate (an SVID has exactly one). */
export function spiffeIdsOf(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san === undefined) return [];
  const ids: string[] = [];
  // "DNS:a, URI:spiffe://td/service/x": entries never contain ", " unquoted for URIs.
  for (const part of san.split(/,\s*/)) {
    const m = /^URI:(spiffe:\/\/.+)$/.exec(part.trim().replace(/^"|"$/g, ''));
    if (m !== null) ids.push(m[1]!);
  }
  return ids;
}

/** The service a SPIFFE ID names within the trust domain, or undefined. */
export function serviceOf(id: string, trustDomain: string): string | undefined {
  const prefix = `spiffe://${trustDomain}/service/`;
  if (!id.startsWith(prefix)) return undefined;
  const name = id.slice(prefix.length);
  return SERVICE_NAME.test(name) ? name : undefined;
}

/** The one SPIFFE ID of a peer certificate, described for error messages when there is not exactly one. */
export function presentedId(cert: X509Certificate | undefined): string {
  if (cert === undefined) return 'no certificate';
  const ids = spiffeIdsOf(cert);
  if (ids.length === 0) return `no SPIFFE ID (subject ${cert.subject.replace(/\n/g, ', ')})`;
  return ids.join(' and ');
}
