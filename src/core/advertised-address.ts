// The address peers are told to reach this instance at (etcd registration) when the config
// does not name one: the bound inbound listener, or for a wildcard bind the first external IPv4.
import { networkInterfaces } from 'node:os';
import { formatHostPort, type ListenAddress } from './address.js';
import { MeshError } from './errors.js';

export function advertisedAddress(inbound: ListenAddress): string {
  if (inbound.kind !== 'tcp') throw new MeshError('MESH_ERR_CONFIG_INVALID', 'instance.address: required when listeners.inbound is a unix socket (peers need host:port)');
  if (inbound.host !== '0.0.0.0' && inbound.host !== '::') return formatHostPort(inbound.host, inbound.port);
  for (const addrs of Object.values(networkInterfaces())) {
    const a = addrs?.find((x) => x.family === 'IPv4' && !x.internal);
    if (a !== undefined) return formatHostPort(a.address, inbound.port);
  }
  throw new MeshError('MESH_ERR_CONFIG_INVALID', `instance.address: listeners.inbound binds ${inbound.host} and no external interface address was found; set instance.address to a routable host:port`);
}
