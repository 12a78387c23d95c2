// The host name others use to reach a server of this worker (the live log, interactive shells).
// A server bound to one address is reached there. A server bound to every address (0.0.0.0, ::)
// is reached at the host's public address when the host knows one (the aws host reads it from the
// instance metadata, worker-runner passes it), else on loopback, which serves only this machine.
export interface HostAddresses {
  /** host.publicIp: the default, 127.0.0.1, means "not known". */
  publicIp: string;
  publicHostname: string;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

const bracketed = (host: string) => host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;

export function reachableHost(bound: string, addresses: HostAddresses): string {
  if (!WILDCARDS.has(bound)) return bracketed(bound);
  const publicIp = addresses.publicIp.trim();
  if (publicIp && !LOOPBACK.has(publicIp)) return bracketed(publicIp);
  if (addresses.publicHostname.trim()) return addresses.publicHostname.trim();
  return '127.0.0.1';
}
