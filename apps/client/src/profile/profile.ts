/** S7: what this metal is — vendor/class, what TIPS installed, its interfaces and protocols. */
import { networkInterfaces } from 'node:os';
import type { ClientConfig } from '../config/config.ts';
import type { Profile } from '../master/metal-api.ts';
import type { InstalledGlaze } from '../state/agent-state.ts';

/** The metal's interfaces as the OS sees them (loopback left out: it reaches no one). */
export function interfacesNow(): Profile['interfaces'] {
  const out: Profile['interfaces'] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (!addrs || addrs.every((a) => a.internal)) continue;
    out.push({ name, mac: addrs[0]!.mac, addresses: addrs.map((a) => a.address) });
  }
  return out;
}

/** `protocols`: how this metal can be reached for updates — https always, mqtt when `run` subscribes to hints. */
export function buildProfile(config: ClientConfig, installed: InstalledGlaze[], interfaces = interfacesNow(), protocols: Profile['protocols'] = ['https']): Profile {
  return {
    vendorId: config.vendorId,
    classId: config.classId,
    glazes: installed.map((g) => ({ id: g.id, name: g.name, version: g.version, sequence: g.sequence })),
    interfaces,
    protocols,
  };
}
