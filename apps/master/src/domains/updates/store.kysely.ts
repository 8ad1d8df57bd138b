import type { GlazeId, OwnerId, SpaceId, TipsId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { applyKeyset, containsText, type KeysetWindow } from '../../db/keyset.ts';
import type { InstallReport, Installation, MetalEvent, MetalEventKind, MetalProfile, ReportResult } from './model.ts';
import type { UpdateStore } from './store.ts';
import type { MetalEventsTable, MetalInstallationsTable, MetalReportsTable } from './tables.ts';

const installation = (r: MetalInstallationsTable): Installation => ({
  metalId: r.metal_id as TipsId,
  spaceId: r.space_id as SpaceId,
  ownerId: r.owner_id as OwnerId,
  installedGlazeId: r.installed_glaze_id as GlazeId | null,
  installedSequence: r.installed_sequence === null ? null : Number(r.installed_sequence),
  installedAt: r.installed_at,
  lastGlazeId: r.last_glaze_id as GlazeId,
  lastResult: r.last_result as ReportResult,
  lastReason: r.last_reason,
  updatedAt: r.updated_at,
});

const report = (r: MetalReportsTable): InstallReport => ({
  id: r.id,
  ownerId: r.owner_id as OwnerId,
  metalId: r.metal_id as TipsId,
  spaceId: r.space_id as SpaceId,
  glazeId: r.glaze_id as GlazeId,
  result: r.result as ReportResult,
  reason: r.reason,
  sequence: Number(r.sequence),
  at: r.at,
  cose: new Uint8Array(Buffer.from(r.cose, 'base64')),
  createdAt: r.created_at,
});

const event = (r: MetalEventsTable): MetalEvent => ({
  id: r.id,
  ownerId: r.owner_id as OwnerId,
  metalId: r.metal_id as TipsId,
  kind: r.kind as MetalEventKind,
  code: r.code,
  detail: JSON.parse(r.detail) as Record<string, unknown>,
  createdAt: r.created_at,
});

export class KyselyUpdateStore implements UpdateStore {
  constructor(private readonly db: Db) {}

  async putProfile(p: MetalProfile): Promise<void> {
    const row = {
      metal_id: p.metalId,
      owner_id: p.ownerId,
      vendor_id: p.vendorId,
      class_id: p.classId,
      glazes: JSON.stringify(p.glazes),
      interfaces: JSON.stringify(p.interfaces),
      protocols: JSON.stringify(p.protocols),
      updated_at: p.updatedAt,
    };
    const { metal_id: _m, ...rest } = row;
    await this.db
      .insertInto('metal_profiles')
      .values(row)
      .onConflict((oc) => oc.column('metal_id').doUpdateSet(rest))
      .execute();
  }

  async profile(metalId: TipsId): Promise<MetalProfile | undefined> {
    const r = await this.db.selectFrom('metal_profiles').selectAll().where('metal_id', '=', metalId).executeTakeFirst();
    if (!r) return undefined;
    return {
      metalId: r.metal_id as TipsId,
      ownerId: r.owner_id as OwnerId,
      vendorId: r.vendor_id,
      classId: r.class_id,
      glazes: JSON.parse(r.glazes),
      interfaces: JSON.parse(r.interfaces),
      protocols: JSON.parse(r.protocols),
      updatedAt: r.updated_at,
    };
  }

  async metalsMatching(ownerId: OwnerId, q: { vendorId?: string; classId?: string; glazeId?: GlazeId }): Promise<TipsId[]> {
    let found: Set<string> | undefined;
    const narrow = (ids: string[]) => {
      found = found === undefined ? new Set(ids) : new Set(ids.filter((id) => found!.has(id)));
    };
    if (q.vendorId !== undefined || q.classId !== undefined) {
      let s = this.db.selectFrom('metal_profiles').select('metal_id').where('owner_id', '=', ownerId);
      if (q.vendorId !== undefined) s = s.where('vendor_id', '=', q.vendorId);
      if (q.classId !== undefined) s = s.where('class_id', '=', q.classId);
      narrow((await s.execute()).map((r) => r.metal_id));
    }
    if (q.glazeId !== undefined) {
      // What a signed report says is installed, or what the metal's profile lists (a Phase 1 Glaze).
      const installed = await this.db.selectFrom('metal_installations').select('metal_id').where('owner_id', '=', ownerId).where('installed_glaze_id', '=', q.glazeId).execute();
      const listed = await this.db
        .selectFrom('metal_profiles')
        .select('metal_id')
        .where('owner_id', '=', ownerId)
        .where(containsText(this.db, 'glazes', `"id":${JSON.stringify(q.glazeId)}`))
        .execute();
      narrow([...installed, ...listed].map((r) => r.metal_id));
    }
    return [...(found ?? [])].sort() as TipsId[];
  }

  async recordReport(r: InstallReport): Promise<Installation> {
    return this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('metal_reports')
        .values({
          id: r.id,
          owner_id: r.ownerId,
          metal_id: r.metalId,
          space_id: r.spaceId,
          glaze_id: r.glazeId,
          result: r.result,
          reason: r.reason,
          sequence: String(r.sequence),
          at: r.at,
          cose: Buffer.from(r.cose).toString('base64'),
          created_at: r.createdAt,
        })
        .execute();
      const prev = await tx.selectFrom('metal_installations').selectAll().where('metal_id', '=', r.metalId).where('space_id', '=', r.spaceId).executeTakeFirst();
      const installed = r.result === 'installed';
      // `rolled_back` of the Glaze it runs (a manual rollback): the metal left it for the one it ran
      // before. (`rolled_back` of a new Glaze whose health check failed leaves the installed one as is.)
      const back = r.result === 'rolled_back' && prev?.installed_glaze_id === r.glazeId ? await this.ranBefore(tx, r) : undefined;
      const next: MetalInstallationsTable = {
        metal_id: r.metalId,
        space_id: r.spaceId,
        owner_id: r.ownerId,
        installed_glaze_id: installed ? r.glazeId : back ? back.glazeId : (prev?.installed_glaze_id ?? null),
        installed_sequence: installed ? String(r.sequence) : back ? back.sequence : (prev?.installed_sequence ?? null),
        installed_at: installed ? r.at : back ? (back.glazeId === null ? null : r.at) : (prev?.installed_at ?? null),
        last_glaze_id: r.glazeId,
        last_result: r.result,
        last_reason: r.reason,
        updated_at: r.createdAt,
      };
      if (prev) {
        const { metal_id: _m, space_id: _s, ...set } = next;
        await tx.updateTable('metal_installations').set(set).where('metal_id', '=', r.metalId).where('space_id', '=', r.spaceId).execute();
      } else {
        await tx.insertInto('metal_installations').values(next).execute();
      }
      return back ? { ...installation(next), rolledBackFrom: r.glazeId } : installation(next);
    });
  }

  /**
   * What the metal ran in this Space before the Glaze a `rolled_back` report leaves: its newest
   * `installed` report of another Glaze that no later `rolled_back` report left (null: nothing TIPS installed).
   */
  private async ranBefore(tx: Db, r: InstallReport): Promise<{ glazeId: string | null; sequence: string | null }> {
    const rows = await tx
      .selectFrom('metal_reports')
      .select(['id', 'glaze_id', 'result', 'sequence'])
      .where('metal_id', '=', r.metalId)
      .where('space_id', '=', r.spaceId)
      .where('result', 'in', ['installed', 'rolled_back'])
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    const left = new Set<string>([r.glazeId]);
    for (const row of rows) {
      if (row.id === r.id) continue;
      if (row.result === 'rolled_back') left.add(row.glaze_id);
      else if (!left.has(row.glaze_id)) return { glazeId: row.glaze_id, sequence: row.sequence };
    }
    return { glazeId: null, sequence: null };
  }

  async installations(metalId: TipsId): Promise<Installation[]> {
    return (await this.db.selectFrom('metal_installations').selectAll().where('metal_id', '=', metalId).orderBy('space_id').execute()).map(installation);
  }

  async reports(metalId: TipsId, limit: number): Promise<InstallReport[]> {
    const rows = await this.db.selectFrom('metal_reports').selectAll().where('metal_id', '=', metalId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(report);
  }

  async addEvent(e: MetalEvent): Promise<void> {
    await this.db
      .insertInto('metal_events')
      .values({ id: e.id, owner_id: e.ownerId, metal_id: e.metalId, kind: e.kind, code: e.code, detail: JSON.stringify(e.detail), created_at: e.createdAt })
      .execute();
  }

  async events(metalId: TipsId, kind: MetalEventKind | undefined, limit: number): Promise<MetalEvent[]> {
    let q = this.db.selectFrom('metal_events').selectAll().where('metal_id', '=', metalId);
    if (kind) q = q.where('kind', '=', kind);
    return (await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute()).map(event);
  }

  async ownerEvents(ownerId: OwnerId, kind: MetalEventKind, window: KeysetWindow): Promise<MetalEvent[]> {
    const q = this.db.selectFrom('metal_events').selectAll().where('owner_id', '=', ownerId).where('kind', '=', kind);
    return (await applyKeyset(q, 'created_at', 'id', window, 'desc').execute()).map(event);
  }

  async forgetMetal(metalId: TipsId): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('metal_profiles').where('metal_id', '=', metalId).execute();
      await tx.deleteFrom('metal_installations').where('metal_id', '=', metalId).execute();
      await tx.deleteFrom('metal_reports').where('metal_id', '=', metalId).execute();
      await tx.deleteFrom('metal_events').where('metal_id', '=', metalId).execute();
    });
  }
}
