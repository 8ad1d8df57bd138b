import type { OwnerId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { AppScope, AppToken, Heartbeat, TelemetrySample } from './model.ts';
import type { TelemetryStore } from './store.ts';
import type { TelemetryAppTokensTable, TelemetryHeartbeatsTable, TelemetrySamplesTable } from './tables.ts';

const toSample = (r: TelemetrySamplesTable): TelemetrySample => ({ id: r.id, metalId: r.metal_id, ownerId: r.owner_id as OwnerId, at: r.at, receivedAt: r.received_at, values: JSON.parse(r.values_json) });
const toHeartbeat = (r: TelemetryHeartbeatsTable): Heartbeat => ({ metalId: r.metal_id, ownerId: r.owner_id as OwnerId, at: r.at, receivedAt: r.received_at, values: JSON.parse(r.values_json) });
const toToken = (r: TelemetryAppTokensTable): AppToken => ({ id: r.id, ownerId: r.owner_id as OwnerId, metalId: r.metal_id, name: r.name, scope: JSON.parse(r.scope) as AppScope[], createdAt: r.created_at, expiresAt: r.expires_at });

export class KyselyTelemetryStore implements TelemetryStore {
  constructor(private readonly db: Db) {}

  async insertSample(s: TelemetrySample): Promise<void> {
    await this.db.insertInto('telemetry_samples').values({ id: s.id, metal_id: s.metalId, owner_id: s.ownerId, at: s.at, received_at: s.receivedAt, values_json: JSON.stringify(s.values) }).execute();
  }

  async listSamples(metalId: string, since: string | undefined, window?: KeysetWindow): Promise<TelemetrySample[]> {
    let q = this.db.selectFrom('telemetry_samples').selectAll().where('metal_id', '=', metalId);
    if (since !== undefined) q = q.where('received_at', '>', since);
    return (await applyKeyset(q, 'received_at', 'id', window).execute()).map(toSample);
  }

  async deleteSamplesBefore(receivedAt: string): Promise<number> {
    const r = await this.db.deleteFrom('telemetry_samples').where('received_at', '<', receivedAt).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async putHeartbeat(h: Heartbeat): Promise<void> {
    const values = { owner_id: h.ownerId, at: h.at, received_at: h.receivedAt, values_json: JSON.stringify(h.values) };
    await this.db
      .insertInto('telemetry_heartbeats')
      .values({ metal_id: h.metalId, ...values })
      .onConflict((oc) => oc.column('metal_id').doUpdateSet(values))
      .execute();
  }

  async findHeartbeat(metalId: string): Promise<Heartbeat | undefined> {
    const r = await this.db.selectFrom('telemetry_heartbeats').selectAll().where('metal_id', '=', metalId).executeTakeFirst();
    return r && toHeartbeat(r);
  }

  async insertAppToken(t: AppToken, tokenHash: string): Promise<void> {
    await this.db
      .insertInto('telemetry_app_tokens')
      .values({ id: t.id, owner_id: t.ownerId, metal_id: t.metalId, name: t.name, scope: JSON.stringify(t.scope), token_hash: tokenHash, created_at: t.createdAt, expires_at: t.expiresAt })
      .execute();
  }

  async findAppTokenByHash(tokenHash: string): Promise<AppToken | undefined> {
    const r = await this.db.selectFrom('telemetry_app_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && toToken(r);
  }

  async listAppTokens(ownerId: OwnerId, window?: KeysetWindow): Promise<AppToken[]> {
    const q = this.db.selectFrom('telemetry_app_tokens').selectAll().where('owner_id', '=', ownerId);
    return (await applyKeyset(q, 'created_at', 'id', window).execute()).map(toToken);
  }

  async deleteAppToken(ownerId: OwnerId, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('telemetry_app_tokens').where('owner_id', '=', ownerId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
