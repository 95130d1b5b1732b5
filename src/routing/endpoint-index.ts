// Endpoint address → service, for routing by original destination (transparent mode, or a
// Host that is an endpoint's address). Kept up to date change by change: a registry update
// touches only the services that changed, never every endpoint of the mesh.
export class EndpointIndex {
  private readonly byAddress = new Map<string, Set<string>>();

  add(address: string, service: string): void {
    let s = this.byAddress.get(address);
    if (s === undefined) this.byAddress.set(address, (s = new Set()));
    s.add(service);
  }

  /** Removes one service from an address; returns true when no service uses it any more. */
  remove(address: string, service: string): boolean {
    const s = this.byAddress.get(address);
    if (s === undefined) return true;
    s.delete(service);
    if (s.size > 0) return false;
    this.byAddress.delete(address);
    return true;
  }

  /** The service an address belongs to (the first registered when several share it). */
  service(address: string): string | undefined {
    const s = this.byAddress.get(address);
    return s === undefined ? undefined : s.values().next().value;
  }

  has(address: string): boolean {
    return this.byAddress.has(address);
  }
}
