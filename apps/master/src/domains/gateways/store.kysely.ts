import type { GatewayId, OwnerId } from '@tips/core';
import { CompiledOnce } from '../../db/compiled-once.ts';
import type { Db } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { GatewaysTable } from '../../db/schema.ts';
import type { ChannelCommand, Gateway, GatewayCertificate, QueuedCommand, TableSnapshot } from './model.ts';
import './tables.ts';
import type { GatewayStore, NonceUse } from './store.ts';

// Three bound parameters per nonce; 500 rows stay well below SQLite's and PostgreSQL's limits.
const NONCE_CHUNK = 500;

const toGateway = (r: GatewaysTable): Gateway => ({
  id: r.id as GatewayId,
  ownerId: r.owner_id as OwnerId,
  name: r.name,
  publicKey: r.public_key,
  enrolledName: r.enrolled_name,
  enrolledAt: r.enrolled_at,
  enrollmentExpiresAt: r.enrollment_expires_at,
  createdAt: r.created_at,
  lastSeenAt: r.last_seen_at,
});

/** The gateways store on Kysely: the same queries on SQLite and PostgreSQL. */
export class KyselyGatewayStore implements GatewayStore {
  private readonly certificateQuery = new CompiledOnce();

  constructor(private readonly db: Db) {}

  async insert(g: Gateway, enrollmentTokenHash: string): Promise<void> {
    await this.db
      .insertInto('gateways')
      .values({
        id: g.id,
        owner_id: g.ownerId,
        name: g.name,
        enrollment_token_hash: enrollmentTokenHash,
        enrollment_expires_at: g.enrollmentExpiresAt,
        public_key: g.publicKey,
        enrolled_name: g.enrolledName,
        enrolled_at: g.enrolledAt,
        created_at: g.createdAt,
        last_seen_at: g.lastSeenAt,
      })
      .execute();
  }

  async findById(id: GatewayId): Promise<Gateway | undefined> {
    const r = await this.db.selectFrom('gateways').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toGateway(r);
  }

  async findByName(ownerId: OwnerId, name: string): Promise<Gateway | undefined> {
    const r = await this.db.selectFrom('gateways').selectAll().where('owner_id', '=', ownerId).where('name', '=', name).executeTakeFirst();
    return r && toGateway(r);
  }

  async list(ownerId: OwnerId, window?: KeysetWindow): Promise<Gateway[]> {
    const rows = await applyKeyset(this.db.selectFrom('gateways').selectAll().where('owner_id', '=', ownerId), 'created_at', 'id', window).execute();
    return rows.map(toGateway);
  }

  async delete(ownerId: OwnerId, id: GatewayId, revokedAt?: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.deleteFrom('gateways').where('id', '=', id).where('owner_id', '=', ownerId).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      if (revokedAt !== undefined) {
        await tx.updateTable('gateway_certificates').set({ status: 'revoked', revoked_at: revokedAt }).where('gateway_id', '=', id).where('status', '=', 'active').execute();
      }
      await tx.deleteFrom('gateway_nonces').where('gateway_id', '=', id).execute();
      await tx.deleteFrom('gateway_tables').where('gateway_id', '=', id).execute();
      await tx.deleteFrom('gateway_commands').where('gateway_id', '=', id).execute();
      return true;
    });
  }

  async enroll(tokenHash: string, now: string, publicKey: string, enrolledName: string | null): Promise<Gateway | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const candidate = await tx
        .selectFrom('gateways')
        .select('id')
        .where('enrollment_token_hash', '=', tokenHash)
        .where('enrolled_at', 'is', null)
        .where('enrollment_expires_at', '>', now)
        .executeTakeFirst();
      if (!candidate) return undefined;
      // The condition repeats the token: under concurrency only the first update still matches it.
      const r = await tx
        .updateTable('gateways')
        .set({ public_key: publicKey, enrolled_name: enrolledName, enrolled_at: now, last_seen_at: now, enrollment_token_hash: null, enrollment_expires_at: null })
        .where('id', '=', candidate.id)
        .where('enrollment_token_hash', '=', tokenHash)
        .where('enrolled_at', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return undefined;
      const row = await tx.selectFrom('gateways').selectAll().where('id', '=', candidate.id).executeTakeFirstOrThrow();
      return toGateway(row);
    });
  }

  async recordCertificate(c: GatewayCertificate): Promise<void> {
    await this.db
      .insertInto('gateway_certificates')
      .values({
        serial: c.serial,
        gateway_id: c.gatewayId,
        owner_id: c.ownerId,
        fingerprint: c.fingerprint,
        not_before: c.notBefore,
        not_after: c.notAfter,
        status: c.status,
        created_at: c.createdAt,
        revoked_at: c.revokedAt,
      })
      .execute();
  }

  async findCertificate(serial: string): Promise<GatewayCertificate | undefined> {
    // Read at every mTLS channel check (each connection, each second): compiled once.
    const [r] = (await this.certificateQuery.execute(this.db, 'certificate', [serial], () => this.db.selectFrom('gateway_certificates').selectAll().where('serial', '=', serial))).rows;
    return (
      r && {
        serial: r.serial,
        gatewayId: r.gateway_id as GatewayId,
        ownerId: r.owner_id as OwnerId,
        fingerprint: r.fingerprint,
        notBefore: r.not_before,
        notAfter: r.not_after,
        status: r.status === 'active' ? 'active' : 'revoked',
        createdAt: r.created_at,
        revokedAt: r.revoked_at,
      }
    );
  }

  async touch(id: GatewayId, at: string): Promise<void> {
    await this.db.updateTable('gateways').set({ last_seen_at: at }).where('id', '=', id).execute();
  }

  async rememberNonces(uses: NonceUse[]): Promise<boolean[]> {
    const key = (at: number | string, gatewayId: string, nonce: string) => `${Number(at)} ${gatewayId} ${nonce}`;
    const firsts = new Map<string, NonceUse>();
    for (const u of uses) {
      const k = key(u.timestamp, u.gatewayId, u.nonce);
      if (!firsts.has(k)) firsts.set(k, u);
    }
    const fresh = new Set<string>();
    const rows = [...firsts.values()];
    for (let i = 0; i < rows.length; i += NONCE_CHUNK) {
      const inserted = await this.db
        .insertInto('gateway_nonces')
        .values(rows.slice(i, i + NONCE_CHUNK).map((u) => ({ at: u.timestamp, gateway_id: u.gatewayId, nonce: u.nonce })))
        .onConflict((oc) => oc.columns(['at', 'gateway_id', 'nonce']).doNothing())
        .returning(['at', 'gateway_id', 'nonce'])
        .execute();
      for (const r of inserted) fresh.add(key(r.at, r.gateway_id, r.nonce));
    }
    // Only the first use within the batch can claim the fresh row.
    return uses.map((u) => {
      const k = key(u.timestamp, u.gatewayId, u.nonce);
      return firsts.get(k) === u && fresh.has(k);
    });
  }

  async forgetNoncesBefore(unixMs: number): Promise<void> {
    await this.db.deleteFrom('gateway_nonces').where('at', '<', unixMs).execute();
  }

  async putTable(s: TableSnapshot): Promise<void> {
    const values = { gateway_id: s.gatewayId, rows: JSON.stringify(s.rows), row_count: s.rows.length, updated_at: s.updatedAt };
    await this.db
      .insertInto('gateway_tables')
      .values(values)
      .onConflict((oc) => oc.column('gateway_id').doUpdateSet({ rows: values.rows, row_count: values.row_count, updated_at: values.updated_at }))
      .execute();
  }

  async tableVersions(ids: GatewayId[]): Promise<Map<GatewayId, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.selectFrom('gateway_tables').select(['gateway_id', 'updated_at']).where('gateway_id', 'in', ids).execute();
    return new Map(rows.map((r) => [r.gateway_id as GatewayId, r.updated_at]));
  }

  async getTable(id: GatewayId): Promise<TableSnapshot | undefined> {
    const r = await this.db.selectFrom('gateway_tables').selectAll().where('gateway_id', '=', id).executeTakeFirst();
    return r && { gatewayId: id, rows: JSON.parse(r.rows) as Record<string, unknown>[], updatedAt: r.updated_at };
  }

  async enqueue(c: QueuedCommand, keepAtMost: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('gateway_commands')
        .values({ id: c.id, gateway_id: c.gatewayId, seq: c.seq, body: JSON.stringify(c.command), created_at: c.createdAt })
        .execute();
      const cutoff = await tx
        .selectFrom('gateway_commands')
        .select('seq')
        .where('gateway_id', '=', c.gatewayId)
        .orderBy('seq', 'desc')
        .offset(keepAtMost)
        .limit(1)
        .executeTakeFirst();
      if (cutoff) await tx.deleteFrom('gateway_commands').where('gateway_id', '=', c.gatewayId).where('seq', '<=', cutoff.seq).execute();
    });
  }

  async pending(id: GatewayId): Promise<QueuedCommand[]> {
    const rows = await this.db.selectFrom('gateway_commands').selectAll().where('gateway_id', '=', id).orderBy('seq').execute();
    return rows.map((r) => ({ id: r.id, gatewayId: id, seq: Number(r.seq), command: JSON.parse(r.body) as ChannelCommand, createdAt: r.created_at }));
  }

  async ack(id: GatewayId, commandId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('gateway_commands').where('gateway_id', '=', id).where('id', '=', commandId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
