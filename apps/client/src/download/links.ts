/**
 * T17: which local addresses a multi-homed download may bind to. The master's work item names the
 * metal's interfaces that link it to the Space (name, MAC, the addresses the profile registered);
 * the OS decides what they are now. An interface is matched by MAC first (the Metal Object's name
 * need not be the kernel's), then by name; its first IPv4 address is used (an IPv6 link-local address
 * would need a scope, and one address a link is enough to bind a socket to it).
 */
import { type NetworkInterfaceInfo, networkInterfaces } from 'node:os';

export interface LinkSpec {
  name: string;
  mac: string;
  addresses: string[];
}

/** One path of a multi-homed download: a local address to bind the sockets to, and its interface. */
export interface Link {
  iface: string;
  localAddress: string;
}

export function resolveLinks(wanted: readonly LinkSpec[] | undefined, os: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): Link[] {
  const out: Link[] = [];
  const seen = new Set<string>();
  for (const w of wanted ?? []) {
    const mac = w.mac.toLowerCase();
    const entry =
      Object.entries(os).find(([, addrs]) => addrs?.some((a) => !a.internal && a.mac.toLowerCase() === mac)) ?? Object.entries(os).find(([name]) => name === w.name);
    if (!entry?.[1]) continue;
    const v4 = entry[1].filter((a) => a.family === 'IPv4' && !a.internal);
    const pick = v4.find((a) => w.addresses.includes(a.address)) ?? v4[0];
    if (!pick || seen.has(pick.address)) continue;
    seen.add(pick.address);
    out.push({ iface: entry[0], localAddress: pick.address });
  }
  return out;
}
