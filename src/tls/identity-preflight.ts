// What `dreammesh validate` (and `run`, before binding) checks of the mtls section: the files
// exist and parse, the key matches the certificate, it chains to the CA and carries a SPIFFE
// ID of the trust domain that names this sidecar's `service`, and it is not about to expire.
import type { MeshConfig } from '../config/schema.js';
import { isMeshError } from '../core/errors.js';
import { identityFiles } from './identity-store.js';
import { loadIdentity } from './workload-identity.js';

export interface IdentityCheck {
  readonly problems: string[];
  readonly checked: string[];
  readonly warnings: string[];
}

export function checkIdentity(config: MeshConfig, now = Date.now()): IdentityCheck {
  const out: IdentityCheck = { problems: [], checked: [], warnings: [] };
  const mtls = config.mtls;
  const files = identityFiles(mtls);
  if (files === undefined) {
    const some = mtls.certFile !== undefined || mtls.keyFile !== undefined || mtls.caFile !== undefined;
    if (mtls.mode !== 'off' || some) out.problems.push(`mtls: certFile, keyFile and caFile are all required${mtls.mode !== 'off' ? ` when mode is ${mtls.mode}` : ' when one is set'}`);
    return out;
  }
  try {
    const id = loadIdentity(files, mtls.trustDomain);
    out.checked.push(`mtls identity ${id.spiffeId} (serial ${id.leaf.serialNumber}, valid until ${id.notAfter.toISOString()})`);
    if (config.service !== undefined && id.service !== config.service) {
      out.problems.push(`mtls.certFile: the certificate names ${id.spiffeId}, but service is "${config.service}" (peers check that the SPIFFE ID names the service they route to)`);
    }
    if (id.notAfter.getTime() <= now) out.problems.push(`mtls.certFile: the certificate expired at ${id.notAfter.toISOString()}`);
    else if (id.notAfter.getTime() - now <= mtls.expiryMarginSeconds * 1000)
      out.warnings.push(`mtls.certFile: the certificate expires at ${id.notAfter.toISOString()}, within mtls.expiryMarginSeconds (/ready will be false)`);
    if (mtls.mode !== 'off' && config.app === undefined) out.warnings.push(`mtls.mode is ${mtls.mode} but there is no app, so no inbound listener: only outbound mTLS is used`);
  } catch (e) {
    out.problems.push(isMeshError(e) ? e.message : String(e));
  }
  return out;
}
