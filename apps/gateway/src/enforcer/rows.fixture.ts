// Interface-table rows for the enforcer's tests and bench (one definition, not one per file).
import type { InterfaceRow } from '../table/table.ts';

/** A row of the gateway's interface table with everything but MAC, state, address and LAN interface at rest. */
export const interfaceRow = (mac: string, state: InterfaceRow['state'], ip: string | null, gatewayInterface = 'br0'): InterfaceRow => ({
  mac,
  gatewayInterface,
  tipsId: null,
  state,
  type: 'ethernet',
  ip,
  pxe: false,
  hostname: null,
  since: 0,
  reason: null,
  attempts: 0,
  updatedAt: 0,
  nat: [],
});

/** The i-th locally administered MAC (02:00:00:xx:xx:xx), for tables of up to 2^24 rows. */
export const macOf = (i: number): string =>
  `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
