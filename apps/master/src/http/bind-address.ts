import { type NetworkInterfaceInfo, networkInterfaces } from 'node:os';

/**
 * What the master says about where it listens: the address it is really bound to and, when that is
 * a wildcard (0.0.0.0, ::), which addresses of this host a client can use instead.
 */
export interface ListenLine {
  /** URL of the bound address, e.g. http://0.0.0.0:8080 or http://127.0.0.1:8080. */
  bound: string;
  /** URL to give to clients (a usable address; the bound one when it is not a wildcard). */
  usable: string;
  /** The line printed at start. */
  line: string;
}

const bracket = (a: string) => (a.includes(':') ? `[${a}]` : a);

export function describeListen(
  host: string,
  port: number,
  scheme: 'http' | 'https' | 'coaps',
  boundUrl: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): ListenLine {
  const wildcard = host === '0.0.0.0' ? 'IPv4' : host === '::' || host === '::0' ? 'IPv6 and IPv4' : undefined;
  if (wildcard === undefined) return { bound: boundUrl, usable: boundUrl, line: `listening on ${boundUrl}` };
  const all = Object.values(interfaces).flatMap((list) => list ?? []);
  const external = all.filter((i) => !i.internal && (i.family === 'IPv4' || (wildcard !== 'IPv4' && !i.address.startsWith('fe80:'))));
  external.sort((a, b) => (a.family === b.family ? 0 : a.family === 'IPv4' ? -1 : 1));
  const url = (a: string) => `${scheme}://${bracket(a)}:${port}`;
  const usable = [...external.slice(0, 3).map((i) => url(i.address)), url('127.0.0.1')];
  const bound = url(host === '0.0.0.0' ? '0.0.0.0' : '::');
  return {
    bound,
    usable: usable[0]!,
    line: `listening on ${bound} (every ${wildcard} address of this host; reach it at ${usable.join(' or ')})`,
  };
}
