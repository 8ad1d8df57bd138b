import { Type } from '@sinclair/typebox';
import { InvalidValueError, type Mac, type OwnerId, parseMac } from '@tips/core';
import type { FastifyInstance } from 'fastify';
import { errorResponses } from '../../http/schemas.ts';
import type { GatewayService } from './service.ts';

const MAX_MACS = 200;

const StateOut = Type.Object({
  mac: Type.String(),
  gatewayId: Type.String(),
  gatewayName: Type.String(),
  gatewayInterface: Type.Union([Type.String(), Type.Null()]),
  state: Type.String({ description: 'as the gateway reported it: pending | active | blocked' }),
  ip: Type.Union([Type.String(), Type.Null()]),
  tipsId: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  lastSeenAt: Type.Union([Type.String(), Type.Null()], { description: 'when the gateway last updated this row' }),
  reportedAt: Type.String({ description: 'when the gateway reported the table this row is from' }),
});

interface Indexed {
  updatedAt: string;
  byMac: Map<string, Record<string, unknown>[]>;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * Per-interface state across the owner's gateways (T11), for a page of metals: the fleet view asks
 * once per page with the MACs it shows instead of reading every gateway's whole table. Each
 * gateway's table is indexed by MAC once per snapshot it reports.
 */
export const INTERFACE_STATES = ['pending', 'active', 'blocked'] as const;
export type InterfaceStateName = (typeof INTERFACE_STATES)[number];

/**
 * The owner's gateways' latest tables, indexed by MAC (and by state) once per reported snapshot:
 * the interface-states route and the metal list's `state` filter read them through this.
 */
export class InterfaceStateIndex {
  private readonly cache = new Map<string, Indexed & { byState: Map<string, string[]> }>();
  constructor(private readonly gateways: GatewayService) {}

  async indexOf(ownerId: OwnerId, gatewayId: string): Promise<(Indexed & { byState: Map<string, string[]> }) | undefined> {
    const g = await this.gateways.show(ownerId, gatewayId);
    if (!g.table) return undefined;
    const hit = this.cache.get(g.id);
    if (hit?.updatedAt === g.table.updatedAt) return hit;
    const byMac = new Map<string, Record<string, unknown>[]>();
    const byState = new Map<string, string[]>();
    for (const row of g.table.rows) {
      const mac = String(row.mac).toLowerCase();
      byMac.set(mac, [...(byMac.get(mac) ?? []), row]);
      const st = String(row.state);
      const list = byState.get(st);
      if (list) list.push(mac);
      else byState.set(st, [mac]);
    }
    const fresh = { updatedAt: g.table.updatedAt, byMac, byState };
    this.cache.set(g.id, fresh);
    return fresh;
  }

  /** MACs in this state at any of the owner's gateways (from each gateway's latest table). */
  async macsInState(ownerId: OwnerId, state: InterfaceStateName): Promise<Mac[]> {
    const out = new Set<string>();
    for (const g of await this.gateways.list(ownerId)) {
      const index = await this.indexOf(ownerId, g.id);
      for (const mac of index?.byState.get(state) ?? []) out.add(mac);
    }
    return [...out] as Mac[];
  }
}

export function interfaceStateRoutes(app: FastifyInstance, gateways: GatewayService, states = new InterfaceStateIndex(gateways)): void {
  const indexOf = (ownerId: OwnerId, gatewayId: string) => states.indexOf(ownerId, gatewayId);

  app.get<{ Querystring: { macs: string } }>(
    '/interface-states',
    {
      schema: {
        tags: ['gateways'],
        summary: `The state of interfaces (by MAC, up to ${MAX_MACS}) in the latest table of each of the caller's gateways (T11)`,
        description: 'One item per (MAC, gateway) row; a MAC no gateway has reported has no item.',
        querystring: Type.Object({ macs: Type.String({ maxLength: MAX_MACS * 18, description: 'MAC addresses, comma-separated' }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(StateOut) }), ...errorResponses(400) },
      },
    },
    async (req) => {
      const parts = req.query.macs.split(',').filter((m) => m !== '');
      if (parts.length > MAX_MACS) throw new InvalidValueError('querystring.macs', `at most ${MAX_MACS} MACs`);
      const macs = new Set(parts.map((m) => String(parseMac(m, 'querystring.macs'))));
      const items = [];
      for (const g of await gateways.list(req.owner.id)) {
        const index = await indexOf(req.owner.id, g.id);
        if (!index) continue;
        for (const mac of macs) {
          for (const row of index.byMac.get(mac) ?? []) {
            items.push({
              mac,
              gatewayId: g.id,
              gatewayName: g.name,
              gatewayInterface: str(row.gatewayInterface),
              state: String(row.state),
              ip: str(row.ip),
              tipsId: str(row.tipsId),
              reason: str(row.reason),
              lastSeenAt: typeof row.updatedAt === 'number' ? new Date(row.updatedAt).toISOString() : null,
              reportedAt: index.updatedAt,
            });
          }
        }
      }
      return { items };
    },
  );
}
