import type { OwnerId, TipsId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { forUpdate } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { FirmwareJobStatus, FirmwareResult, FirmwareState } from './firmware.ts';
import type { FirmwareJob, ObservedValue, QueuedOperation, Registration } from './model.ts';
import type { DeviceMgmtStore } from './store.ts';
import type { Lwm2mFirmwareJobsTable, Lwm2mQueueTable, Lwm2mRegistrationsTable } from './tables.ts';

const toRegistration = (r: Lwm2mRegistrationsTable): Registration => ({
  id: r.id,
  metalId: r.metal_id as TipsId,
  ownerId: r.owner_id as OwnerId,
  endpoint: r.endpoint,
  lwm2mVersion: r.lwm2m_version,
  lifetime: Number(r.lifetime),
  binding: 'U',
  queueMode: Number(r.queue_mode) === 1,
  objects: JSON.parse(r.objects),
  registeredAt: r.registered_at,
  lastUpdate: r.last_update,
  expiresAt: Number(r.expires_at),
  online: Number(r.online) === 1,
});

const toJob = (r: Lwm2mFirmwareJobsTable): FirmwareJob => ({
  id: r.id,
  ownerId: r.owner_id as OwnerId,
  metalId: r.metal_id as TipsId,
  glazeId: r.glaze_id,
  packageUri: r.package_uri,
  status: r.status as FirmwareJobStatus,
  state: r.state === null ? null : (Number(r.state) as FirmwareState),
  result: r.result === null ? null : (Number(r.result) as FirmwareResult),
  message: r.message,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toQueued = (r: Lwm2mQueueTable): QueuedOperation => ({
  id: r.id,
  metalId: r.metal_id as TipsId,
  ownerId: r.owner_id as OwnerId,
  kind: r.kind as QueuedOperation['kind'],
  target: r.target,
  status: r.status as QueuedOperation['status'],
  ...(r.records !== null ? { records: JSON.parse(r.records) } : {}),
  ...(r.job_id !== null ? { jobId: r.job_id } : {}),
  ...(r.error_code !== null ? { error: { code: r.error_code, message: r.error_message ?? '' } } : {}),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const OPEN = ['queued', 'sent'];
const FINISHED = ['done', 'failed'];

export class KyselyDeviceMgmtStore implements DeviceMgmtStore {
  constructor(private readonly db: Db) {}

  async putRegistration(r: Registration): Promise<{ replacedQueueMode: boolean }> {
    return this.db.transaction().execute(async (tx) => {
      const replaced = await tx.deleteFrom('lwm2m_registrations').where('metal_id', '=', r.metalId).returning('queue_mode').executeTakeFirst();
      await tx
        .insertInto('lwm2m_registrations')
        .values({
          id: r.id,
          metal_id: r.metalId,
          owner_id: r.ownerId,
          endpoint: r.endpoint,
          lwm2m_version: r.lwm2mVersion,
          lifetime: r.lifetime,
          binding: r.binding,
          queue_mode: r.queueMode ? 1 : 0,
          objects: JSON.stringify(r.objects),
          registered_at: r.registeredAt,
          last_update: r.lastUpdate,
          expires_at: r.expiresAt,
          online: r.online ? 1 : 0,
        })
        .execute();
      return { replacedQueueMode: Number(replaced?.queue_mode) === 1 };
    });
  }

  async registrationById(id: string): Promise<Registration | undefined> {
    const r = await this.db.selectFrom('lwm2m_registrations').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRegistration(r);
  }

  async registrationOf(metalId: TipsId): Promise<Registration | undefined> {
    const r = await this.db.selectFrom('lwm2m_registrations').selectAll().where('metal_id', '=', metalId).executeTakeFirst();
    return r && toRegistration(r);
  }

  async listRegistrations(ownerId: OwnerId, window?: KeysetWindow): Promise<Registration[]> {
    const rows = await applyKeyset(this.db.selectFrom('lwm2m_registrations').selectAll().where('owner_id', '=', ownerId), 'owner_id', 'metal_id', window).execute();
    return rows.map(toRegistration);
  }

  async touch(id: string, p: Pick<Registration, 'lifetime' | 'binding' | 'queueMode' | 'objects' | 'lastUpdate' | 'expiresAt'>): Promise<boolean> {
    const res = await this.db
      .updateTable('lwm2m_registrations')
      .set({ lifetime: p.lifetime, binding: p.binding, queue_mode: p.queueMode ? 1 : 0, objects: JSON.stringify(p.objects), last_update: p.lastUpdate, expires_at: p.expiresAt, online: 1 })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async deleteRegistration(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('lwm2m_registrations').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  async expire(nowMs: number): Promise<{ id: string; ownerId: OwnerId }[]> {
    const rows = await this.db.selectFrom('lwm2m_registrations').select(['id', 'owner_id']).where('online', '=', 1).where('expires_at', '<', nowMs).execute();
    if (rows.length === 0) return [];
    // The expiry is checked again in the write, so an Update that lands in between keeps the device online.
    await this.db.updateTable('lwm2m_registrations').set({ online: 0 }).where('id', 'in', rows.map((r) => r.id)).where('expires_at', '<', nowMs).execute();
    return rows.map((r) => ({ id: r.id, ownerId: r.owner_id as OwnerId }));
  }

  async counts(): Promise<{ registered: number; online: number }> {
    const r = await this.db
      .selectFrom('lwm2m_registrations')
      .select((eb) => [eb.fn.countAll<number>().as('registered'), eb.fn.sum<number>('online').as('online')])
      .executeTakeFirstOrThrow();
    return { registered: Number(r.registered), online: Number(r.online ?? 0) };
  }

  async putJob(j: FirmwareJob): Promise<void> {
    await this.db
      .insertInto('lwm2m_firmware_jobs')
      .values({
        id: j.id,
        owner_id: j.ownerId,
        metal_id: j.metalId,
        glaze_id: j.glazeId,
        package_uri: j.packageUri,
        status: j.status,
        state: j.state,
        result: j.result,
        message: j.message,
        created_at: j.createdAt,
        updated_at: j.updatedAt,
      })
      .execute();
  }

  async updateJob(id: string, p: Pick<FirmwareJob, 'status' | 'state' | 'result' | 'message' | 'updatedAt'>): Promise<void> {
    await this.db.updateTable('lwm2m_firmware_jobs').set({ status: p.status, state: p.state, result: p.result, message: p.message, updated_at: p.updatedAt }).where('id', '=', id).execute();
  }

  async latestJob(metalId: TipsId): Promise<FirmwareJob | undefined> {
    const r = await this.db.selectFrom('lwm2m_firmware_jobs').selectAll().where('metal_id', '=', metalId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r && toJob(r);
  }

  async putObserved(metalId: TipsId, values: ObservedValue[]): Promise<void> {
    if (values.length === 0) return;
    await this.db
      .insertInto('lwm2m_observed')
      .values(values.map((v) => ({ metal_id: metalId, path: v.path, value: JSON.stringify(v.value), observed_at: v.observedAt })))
      .onConflict((oc) => oc.columns(['metal_id', 'path']).doUpdateSet((eb) => ({ value: eb.ref('excluded.value'), observed_at: eb.ref('excluded.observed_at') })))
      .execute();
  }

  async observed(metalId: TipsId, path: string): Promise<ObservedValue | undefined> {
    const r = await this.db.selectFrom('lwm2m_observed').selectAll().where('metal_id', '=', metalId).where('path', '=', path).executeTakeFirst();
    return r && { path: r.path, value: JSON.parse(r.value), observedAt: r.observed_at };
  }

  async enqueue(op: QueuedOperation, max: number): Promise<QueuedOperation | 'full' | 'awake'> {
    return this.db.transaction().execute(async (tx) => {
      // The registration row is the metal's queue lock: two replicas queueing at once count in turn, and
      // an Update that switches the device to U (it writes this row) is either before (awake) or after
      // (it flushes what is queued here).
      const reg = await forUpdate(tx, tx.selectFrom('lwm2m_registrations').select('queue_mode').where('metal_id', '=', op.metalId)).executeTakeFirst();
      if (!reg || Number(reg.queue_mode) !== 1) return 'awake';
      const open = await tx.selectFrom('lwm2m_queue').select((eb) => eb.fn.countAll<number>().as('n')).where('metal_id', '=', op.metalId).where('status', 'in', OPEN).executeTakeFirstOrThrow();
      if (Number(open.n) >= max) return 'full';
      const last = await tx.selectFrom('lwm2m_queue').select('created_at').where('metal_id', '=', op.metalId).orderBy('created_at', 'desc').limit(1).executeTakeFirst();
      const createdAt = last && last.created_at >= op.createdAt ? new Date(Date.parse(last.created_at) + 1).toISOString() : op.createdAt;
      const stored = { ...op, createdAt, updatedAt: createdAt };
      await tx
        .insertInto('lwm2m_queue')
        .values({
          id: stored.id,
          metal_id: stored.metalId,
          owner_id: stored.ownerId,
          kind: stored.kind,
          target: stored.target,
          status: stored.status,
          ...this.outcome(stored),
          created_at: stored.createdAt,
        })
        .execute();
      return stored;
    });
  }

  /** The columns an operation's outcome lives in (insert and finish write the same mapping). */
  private outcome(op: QueuedOperation) {
    return {
      records: op.records ? JSON.stringify(op.records) : null,
      job_id: op.jobId ?? null,
      error_code: op.error?.code ?? null,
      error_message: op.error?.message ?? null,
      updated_at: op.updatedAt,
    };
  }

  async claimQueued(metalId: TipsId, nowIso: string): Promise<QueuedOperation | undefined> {
    for (;;) {
      const claimed = await this.db.transaction().execute(async (tx) => {
        const next = await forUpdate(tx, tx.selectFrom('lwm2m_queue').selectAll().where('metal_id', '=', metalId).where('status', '=', 'queued').orderBy('created_at').orderBy('id').limit(1)).executeTakeFirst();
        if (!next) return null;
        // Conditional: a replica that read the same row before the other's claim committed claims nothing.
        const res = await tx.updateTable('lwm2m_queue').set({ status: 'sent', updated_at: nowIso }).where('id', '=', next.id).where('status', '=', 'queued').executeTakeFirst();
        return Number(res.numUpdatedRows) === 1 ? toQueued({ ...next, status: 'sent', updated_at: nowIso }) : undefined;
      });
      if (claimed === null) return undefined;
      if (claimed) return claimed;
    }
  }

  async finishQueued(op: QueuedOperation, keepFinished: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('lwm2m_queue').set({ status: op.status, ...this.outcome(op) }).where('id', '=', op.id).where('status', '=', 'sent').execute();
      const old = await tx.selectFrom('lwm2m_queue').select('id').where('metal_id', '=', op.metalId).where('status', 'in', FINISHED).orderBy('created_at', 'desc').orderBy('id', 'desc').offset(keepFinished).limit(1000).execute();
      if (old.length > 0) await tx.deleteFrom('lwm2m_queue').where('id', 'in', old.map((o) => o.id)).execute();
    });
  }

  async failStaleSent(metalId: TipsId, beforeIso: string, error: { code: string; message: string }, nowIso: string): Promise<number> {
    const res = await this.db
      .updateTable('lwm2m_queue')
      .set({ status: 'failed', error_code: error.code, error_message: error.message, updated_at: nowIso })
      .where('metal_id', '=', metalId)
      .where('status', '=', 'sent')
      .where('updated_at', '<', beforeIso)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  async listQueued(metalId: TipsId): Promise<QueuedOperation[]> {
    const rows = await this.db.selectFrom('lwm2m_queue').selectAll().where('metal_id', '=', metalId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toQueued);
  }

  async queuedOperation(metalId: TipsId, id: string): Promise<QueuedOperation | undefined> {
    const r = await this.db.selectFrom('lwm2m_queue').selectAll().where('metal_id', '=', metalId).where('id', '=', id).executeTakeFirst();
    return r && toQueued(r);
  }

  async forgetQueue(metalId: TipsId): Promise<void> {
    await this.db.deleteFrom('lwm2m_queue').where('metal_id', '=', metalId).execute();
  }
}
