// Parses `conntrack -L -o extended` into the NAT columns of the interface table (paper Fig. 4):
// the original tuple gives the metal's local port and the destination; the reply tuple's destination
// is the translated (masqueraded) address and its destination port the outgoing port.
import type { NatEntry } from './table.ts';

export interface ConntrackFlow extends NatEntry {
  source: string;
}

const PROTO = /^(?:ipv4\s+\d+\s+)?([a-z0-9]+)\s+\d+\s/;

/** One flow per line; lines that are not IPv4 flows are ignored. */
export function parseConntrack(text: string): ConntrackFlow[] {
  const flows: ConntrackFlow[] = [];
  for (const line of text.split('\n')) {
    const m = PROTO.exec(line.trim());
    if (!m || line.trim().startsWith('ipv6')) continue;
    const orig: Record<string, string> = {};
    const reply: Record<string, string> = {};
    for (const tok of line.trim().split(/\s+/)) {
      const eq = tok.indexOf('=');
      if (eq <= 0) continue;
      const k = tok.slice(0, eq);
      const v = tok.slice(eq + 1);
      if (!['src', 'dst', 'sport', 'dport'].includes(k)) continue;
      if (orig[k] === undefined) orig[k] = v;
      else if (reply[k] === undefined) reply[k] = v;
    }
    if (!orig.src || !orig.dst || !reply.src || !reply.dst) continue;
    const port = (v: string | undefined) => (v === undefined ? null : Number(v));
    flows.push({
      source: orig.src,
      protocol: m[1]!,
      localPort: port(orig.sport),
      destination: orig.dst,
      destinationPort: port(orig.dport),
      translatedAddress: reply.dst,
      outgoingPort: port(reply.dport),
    });
  }
  return flows;
}

/** Flows whose source was translated, keyed by the metal's address. */
export function natByAddress(flows: ConntrackFlow[]): Map<string, NatEntry[]> {
  const out = new Map<string, NatEntry[]>();
  for (const f of flows) {
    if (f.translatedAddress === f.source) continue;
    const { source, ...entry } = f;
    const list = out.get(source) ?? [];
    list.push(entry);
    out.set(source, list);
  }
  return out;
}
