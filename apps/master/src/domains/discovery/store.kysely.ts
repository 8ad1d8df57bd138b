import type { GatewayId, InterfaceType, Mac, OwnerId, TipsId } from '@tips/core';
import { CompiledOnce } from '../../db/compiled-once.ts';
import type { Db } from '../../db/database.ts';
import type { DiscoveryRegistrationsTable } from '../../db/schema.ts';
import type { BlockReason, Decision, MetalBlock, RegistrationQuery, RegistrationRecord } from './model.ts';
import type { DiscoveryStore } from './store.ts';

const toRecord = (r: DiscoveryRegistrationsTable): RegistrationRecord => ({
  id: r.id,
  at: r.at,
  ownerId: r.owner_id as OwnerId,
  gatewayId: r.gateway_id as GatewayId,
  mac: r.mac as Mac,
  ip: r.ip,
  gatewayInterface: r.gateway_interface,
  interfaceType: r.interface_type as InterfaceType,
  pxe: r.pxe === 1,
  hostname: r.hostname,
  decision: r.decision as Decision,
  reason: r.reason as BlockReason | null,
  tipsId: r.tips_id as TipsId | null,
  idempotencyKey: r.idempotency_key,
});

const toRow = (r: RegistrationRecord): DiscoveryRegistrationsTable => ({
  id: r.id,
  at: r.at,
  owner_id: r.ownerId,
  gateway_id: r.gatewayId,
  mac: r.mac,
  ip: r.ip,
  gateway_interface: r.gatewayInterface,
  interface_type: r.interfaceType,
  pxe: r.pxe ? 1 : 0,
  hostname: r.hostname,
  decision: r.decision,
  reason: r.reason,
  tips_id: r.tipsId,
  idempotency_key: r.idempotencyKey,
});

/** A row's values in the order of `toRow`'s keys: the order the INSERT binds them. */
const rowValues = (r: RegistrationRecord, out: unknown[]): void => {
  out.push(r.id, r.at, r.ownerId, r.gatewayId, r.mac, r.ip, r.gatewayInterface, r.interfaceType, r.pxe ? 1 : 0, r.hostname, r.decision, r.reason, r.tipsId, r.idempotencyKey);
};

// SQLite caps bound parameters per statement; 14 columns × 50 rows stays far below it.
const INSERT_CHUNK = 50;

/** The discovery store on Kysely: the same queries on SQLite and PostgreSQL. */
export class KyselyDiscoveryStore implements DiscoveryStore {
  /** The record INSERT for 1…INSERT_CHUNK rows, compiled once per row count (it runs for every decision). */
  private readonly inserts = new CompiledOnce();

  constructor(private readonly db: Db) {}

  async record(records: RegistrationRecord[]): Promise<RegistrationRecord[]> {
    if (records.length === 0) return [];
    return this.db.transaction().execute(async (tx) => {
      const inserted = new Set<string>();
      for (let i = 0; i < records.length; i += INSERT_CHUNK) {
        const chunk = records.slice(i, i + INSERT_CHUNK);
        const values: unknown[] = [];
        for (const r of chunk) rowValues(r, values);
        const { rows } = await this.inserts.execute(tx, `insert ${chunk.length}`, values, () =>
          tx
            .insertInto('discovery_registrations')
            .values(chunk.map(toRow))
            // A registration already recorded under this gateway's key (a retry) adds nothing.
            .onConflict((oc) => oc.columns(['gateway_id', 'idempotency_key']).doNothing())
            .returning('id'),
        );
        for (const r of rows) inserted.add(r.id);
      }
      if (inserted.size === records.length) return records;
      const retried = records.filter((r) => !inserted.has(r.id));
      // Read in the same transaction: a conflicting row is committed (or ours, from this very batch).
      const earlier = await tx
        .selectFrom('discovery_registrations')
        .selectAll()
        .where((eb) => eb.or(retried.map((r) => eb.and([eb('gateway_id', '=', r.gatewayId), eb('idempotency_key', '=', r.idempotencyKey)]))))
        .execute();
      const byKey = new Map(earlier.map((r) => [`${r.gateway_id} ${r.idempotency_key}`, toRecord(r)]));
      return records.map((r) => {
        if (inserted.has(r.id)) return r;
        const e = byKey.get(`${r.gatewayId} ${r.idempotencyKey}`);
        if (!e) throw new Error(`decision record ${r.id} neither inserted nor found under its idempotency key`);
        return e;
      });
    });
  }

  async list(ownerId: OwnerId, q: RegistrationQuery): Promise<RegistrationRecord[]> {
    let s = this.db.selectFrom('discovery_registrations').selectAll().where('owner_id', '=', ownerId);
    if (q.mac !== undefined) s = s.where('mac', '=', q.mac);
    if (q.gatewayId !== undefined) s = s.where('gateway_id', '=', q.gatewayId);
    if (q.reason !== undefined) s = s.where('reason', '=', q.reason);
    if (q.decision !== undefined) s = s.where('decision', '=', q.decision);
    if (q.since !== undefined) s = s.where('at', '>=', q.since);
    const after = q.after;
    if (after) {
      s = s.where((eb) => eb.or([eb('at', '>', after.at), eb.and([eb('at', '=', after.at), eb('id', '>', after.id)])])).orderBy('at').orderBy('id');
    } else {
      const before = q.before;
      if (before) s = s.where((eb) => eb(eb.refTuple('at', 'id'), '<', eb.tuple(before.at, before.id)));
      s = s.orderBy('at', 'desc').orderBy('id', 'desc');
    }
    return (await s.limit(q.limit).execute()).map(toRecord);
  }

  async gatewaysThatBlocked(macs: Mac[]): Promise<{ gatewayId: GatewayId; mac: Mac }[]> {
    if (macs.length === 0) return [];
    const rows = await this.db
      .selectFrom('discovery_registrations')
      .select(['gateway_id', 'mac'])
      .where('mac', 'in', macs)
      .where('decision', '=', 'blocked')
      .groupBy(['gateway_id', 'mac'])
      .orderBy('gateway_id')
      .orderBy('mac')
      .execute();
    return rows.map((r) => ({ gatewayId: r.gateway_id as GatewayId, mac: r.mac as Mac }));
  }

  async putBlock(b: MetalBlock): Promise<void> {
    const values = { metal_id: b.metalId, owner_id: b.ownerId, reason: b.reason, blocked_at: b.blockedAt };
    await this.db
      .insertInto('discovery_blocks')
      .values(values)
      .onConflict((oc) => oc.column('metal_id').doUpdateSet({ reason: values.reason, blocked_at: values.blocked_at }))
      .execute();
  }

  async removeBlock(metalId: TipsId): Promise<boolean> {
    const r = await this.db.deleteFrom('discovery_blocks').where('metal_id', '=', metalId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async blockedMetalIds(): Promise<TipsId[]> {
    const rows = await this.db.selectFrom('discovery_blocks').select('metal_id').execute();
    return rows.map((r) => r.metal_id as TipsId);
  }

  async findBlock(metalId: TipsId): Promise<MetalBlock | undefined> {
    const r = await this.db.selectFrom('discovery_blocks').selectAll().where('metal_id', '=', metalId).executeTakeFirst();
    return r && { metalId: r.metal_id as TipsId, ownerId: r.owner_id as OwnerId, reason: r.reason, blockedAt: r.blocked_at };
  }
}
