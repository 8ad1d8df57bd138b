import type { GlazeId, Mac, OwnerId, SpaceId, TipsId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { isUniqueViolation } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import { type Engine, type InstallerReport, isOpen, type JobId, type JobQuery, type JobState, type Phase1Job, type Transition } from './model.ts';
import type { ProvisioningStore } from './store.ts';
import type { ProvisioningJobsTable } from './tables.ts';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

function row(j: Phase1Job): ProvisioningJobsTable {
  return {
    id: j.id,
    owner_id: j.ownerId,
    metal_id: j.metalId,
    open_metal_id: isOpen(j.state) ? j.metalId : null,
    interface_name: j.interfaceName,
    mac: j.mac,
    space_id: j.spaceId,
    engine: j.engine,
    state: j.state,
    reason: j.reason,
    detail: j.detail,
    glaze_id: j.glaze?.id ?? null,
    glaze_name: j.glaze?.name ?? null,
    glaze_size: j.glaze?.size ?? null,
    glaze_sha256: j.glaze?.sha256 ?? null,
    glaze_manifest: j.glaze ? b64(j.glaze.manifest) : null,
    glaze_sequence: j.glaze?.sequence ?? null,
    token_hash: j.tokenHash,
    installer_key: j.installerKey,
    enrollment_secret_id: j.enrollmentSecretId,
    transitions: JSON.stringify(j.transitions),
    report_cose: j.report ? b64(j.report.cose) : null,
    report_json: j.report ? JSON.stringify(j.report.payload) : null,
    report_at: j.report?.receivedAt ?? null,
    created_at: j.createdAt,
    updated_at: j.updatedAt,
  };
}

function job(r: ProvisioningJobsTable): Phase1Job {
  return {
    id: r.id as JobId,
    ownerId: r.owner_id as OwnerId,
    metalId: r.metal_id as TipsId,
    interfaceName: r.interface_name,
    mac: r.mac as Mac,
    spaceId: r.space_id as SpaceId,
    engine: r.engine as Engine,
    state: r.state as JobState,
    reason: r.reason,
    detail: r.detail,
    glaze:
      r.glaze_id === null
        ? null
        : {
            id: r.glaze_id as GlazeId,
            name: r.glaze_name ?? '',
            size: Number(r.glaze_size),
            sha256: r.glaze_sha256 ?? '',
            manifest: unb64(r.glaze_manifest ?? ''),
            sequence: Number(r.glaze_sequence),
          },
    tokenHash: r.token_hash,
    installerKey: r.installer_key,
    enrollmentSecretId: r.enrollment_secret_id,
    transitions: JSON.parse(r.transitions) as Transition[],
    report: r.report_cose === null ? null : { cose: unb64(r.report_cose), payload: JSON.parse(r.report_json ?? 'null') as InstallerReport, receivedAt: r.report_at ?? '' },
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export class KyselyProvisioningStore implements ProvisioningStore {
  constructor(private readonly db: Db) {}

  async insert(j: Phase1Job): Promise<boolean> {
    try {
      await this.db.insertInto('provisioning_jobs').values(row(j)).execute();
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async update(j: Phase1Job, expected: JobState): Promise<boolean> {
    const { id, owner_id: _o, metal_id: _m, created_at: _c, ...rest } = row(j);
    const r = await this.db.updateTable('provisioning_jobs').set(rest).where('id', '=', id).where('state', '=', expected).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async findById(id: JobId): Promise<Phase1Job | undefined> {
    const r = await this.db.selectFrom('provisioning_jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r && job(r);
  }

  async findOpen(metalId: TipsId): Promise<Phase1Job | undefined> {
    const r = await this.db.selectFrom('provisioning_jobs').selectAll().where('open_metal_id', '=', metalId).executeTakeFirst();
    return r && job(r);
  }

  async openInSpace(spaceId: SpaceId): Promise<Phase1Job[]> {
    const rows = await this.db.selectFrom('provisioning_jobs').selectAll().where('space_id', '=', spaceId).where('open_metal_id', 'is not', null).execute();
    return rows.map(job);
  }

  async openByEngine(engine: Engine): Promise<Phase1Job[]> {
    const rows = await this.db.selectFrom('provisioning_jobs').selectAll().where('engine', '=', engine).where('open_metal_id', 'is not', null).execute();
    return rows.map(job);
  }

  async latest(metalId: TipsId): Promise<Phase1Job | undefined> {
    const r = await this.db.selectFrom('provisioning_jobs').selectAll().where('metal_id', '=', metalId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r && job(r);
  }

  async lastInstalled(metalId: TipsId): Promise<Phase1Job | undefined> {
    const r = await this.db
      .selectFrom('provisioning_jobs')
      .selectAll()
      .where('metal_id', '=', metalId)
      .where('state', '=', 'installed')
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && job(r);
  }

  async list(ownerId: OwnerId, query: JobQuery, window?: KeysetWindow): Promise<Phase1Job[]> {
    let q = this.db.selectFrom('provisioning_jobs').selectAll().where('owner_id', '=', ownerId);
    if (query.metalId !== undefined) q = q.where('metal_id', '=', query.metalId);
    if (query.state !== undefined) q = q.where('state', '=', query.state);
    return (await applyKeyset(q, 'created_at', 'id', window, 'desc').execute()).map(job);
  }
}
