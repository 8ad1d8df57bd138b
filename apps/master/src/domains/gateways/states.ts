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
  /** Metal IDs per (owner, state), valid while no table and no metal changed (`invalidate`). */
  private readonly sets = new Map<string, { key: string; at: number; ids: Set<string> }>();
  private generation = 0;
  constructor(private readonly gateways: GatewayService) {}

  /** The owner's gateways that reported a table, each with its index (tables re-read only when a new snapshot came). */
  async indexes(ownerId: OwnerId): Promise<{ gateway: { id: string; name: string }; index: Indexed & { byState: Map<string, string[]> } }[]> {
    const out = [];
    for (const { gateway, updatedAt } of await this.gateways.tableVersions(ownerId)) {
      if (updatedAt === null) continue;
      let index = this.cache.get(gateway.id);
      if (index?.updatedAt !== updatedAt) {
        const t = await this.gateways.tableOf(gateway.id as never);
        if (!t) continue;
        index = build(t.updatedAt, t.rows);
        this.cache.set(gateway.id, index);
      }
      out.push({ gateway: { id: gateway.id, name: gateway.name }, index });
    }
    return out;
  }

  /** MACs in this state at any of the owner's gateways (from each gateway's latest table). */
  async macsInState(ownerId: OwnerId, state: InterfaceStateName): Promise<Mac[]> {
    const out = new Set<string>();
    for (const { index } of await this.indexes(ownerId)) for (const mac of index.byState.get(state) ?? []) out.add(mac);
    return [...out] as Mac[];
  }

  /**
   * The metal IDs `resolve` makes of the MACs in a state, kept while the tables and the metals stay
   * as they were (a page change of a filtered fleet view asks again with the same answer). Kept at
   * most 30 s, so a metal change this replica did not see is picked up.
   */
  async metalsInState(ownerId: OwnerId, state: InterfaceStateName, resolve: (macs: Mac[]) => Promise<Set<string>>): Promise<Set<string>> {
    const indexes = await this.indexes(ownerId);
    const key = `${this.generation}|${indexes.map((i) => `${i.gateway.id}@${i.index.updatedAt}`).join(',')}`;
    const hit = this.sets.get(`${ownerId}|${state}`);
    if (hit && hit.key === key && Date.now() - hit.at < 30_000) return hit.ids;
    const macs = new Set<string>();
    for (const { index } of indexes) for (const mac of index.byState.get(state) ?? []) macs.add(mac);
    const ids = await resolve([...macs] as Mac[]);
    this.sets.set(`${ownerId}|${state}`, { key, at: Date.now(), ids });
    return ids;
  }

  /** A metal's interfaces changed or it was deleted: the MAC → metal sets are stale. */
  invalidate(): void {
    this.generation++;
    this.sets.clear();
  }
}

function build(updatedAt: string, rows: Record<string, unknown>[]): Indexed & { byState: Map<string, string[]> } {
  const byMac = new Map<string, Record<string, unknown>[]>();
  const byState = new Map<string, string[]>();
  for (const row of rows) {
    const mac = String(row.mac).toLowerCase();
    const same = byMac.get(mac);
    if (same) same.push(row);
    else byMac.set(mac, [row]);
    const st = String(row.state);
    const list = byState.get(st);
    if (list) list.push(mac);
    else byState.set(st, [mac]);
  }
  return { updatedAt, byMac, byState };
}

export function interfaceStateRoutes(app: FastifyInstance, gateways: GatewayService, states = new InterfaceStateIndex(gateways)): void {

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
      for (const { gateway: g, index } of await states.indexes(req.owner.id)) {
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
