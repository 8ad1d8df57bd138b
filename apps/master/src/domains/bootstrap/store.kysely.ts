import type { OwnerId } from '@tips/core';
import type { Db } from '../../db/database.ts';
import { applyKeyset, type KeysetWindow } from '../../db/keyset.ts';
import type { Attestation, BootstrapProfile, OnboardingRecord, OnboardingState, Protocol } from './model.ts';
import type { BootstrapStore } from './store.ts';
import type { BootstrapProfilesTable, OnboardingsTable } from './tables.ts';

const toProfile = (r: BootstrapProfilesTable): BootstrapProfile => ({
  id: r.id,
  ownerId: r.owner_id as OwnerId,
  name: r.name,
  priority: Number(r.priority),
  match: JSON.parse(r.match),
  phase1Glaze: r.phase1_glaze,
  spaces: JSON.parse(r.spaces) as string[],
  protocols: JSON.parse(r.protocols) as Protocol[],
  agent: JSON.parse(r.agent),
  attestation: r.attestation as Attestation,
  pcrs: JSON.parse(r.pcrs) as number[],
  pcrDigest: r.pcr_digest,
  ...(r.lwm2m ? { lwm2m: JSON.parse(r.lwm2m) } : {}),
  createdAt: r.created_at,
});

const toRecord = (r: OnboardingsTable): OnboardingRecord => ({
  id: r.id,
  ownerId: r.owner_id as OwnerId,
  guid: r.guid,
  status: r.status as OnboardingState,
  reason: r.reason,
  profileId: r.profile_id,
  verifier: r.verifier as Attestation | null,
  metalId: r.metal_id,
  secretId: r.secret_id,
  facts: r.facts === null ? null : JSON.parse(r.facts),
  events: JSON.parse(r.events),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const recordRow = (r: OnboardingRecord): OnboardingsTable => ({
  id: r.id,
  owner_id: r.ownerId,
  guid: r.guid,
  status: r.status,
  reason: r.reason,
  profile_id: r.profileId,
  verifier: r.verifier,
  metal_id: r.metalId,
  secret_id: r.secretId,
  facts: r.facts === null ? null : JSON.stringify(r.facts),
  events: JSON.stringify(r.events),
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});

/** The columns a profile's changeable fields are stored in (insert and update write the same mapping). */
const profileColumns = (p: BootstrapProfile) => ({
  name: p.name,
  priority: p.priority,
  match: JSON.stringify(p.match),
  phase1_glaze: p.phase1Glaze,
  spaces: JSON.stringify(p.spaces),
  protocols: JSON.stringify(p.protocols),
  agent: JSON.stringify(p.agent),
  attestation: p.attestation,
  pcrs: JSON.stringify(p.pcrs),
  pcr_digest: p.pcrDigest,
  lwm2m: p.lwm2m ? JSON.stringify(p.lwm2m) : null,
});

export class KyselyBootstrapStore implements BootstrapStore {
  constructor(private readonly db: Db) {}

  async insertProfile(p: BootstrapProfile): Promise<void> {
    await this.db
      .insertInto('bootstrap_profiles')
      .values({ id: p.id, owner_id: p.ownerId, ...profileColumns(p), created_at: p.createdAt })
      .execute();
  }

  async updateProfile(p: BootstrapProfile): Promise<void> {
    await this.db
      .updateTable('bootstrap_profiles')
      .set(profileColumns(p))
      .where('id', '=', p.id)
      .where('owner_id', '=', p.ownerId)
      .execute();
  }

  async listProfiles(ownerId: OwnerId, window?: KeysetWindow): Promise<BootstrapProfile[]> {
    const q = this.db.selectFrom('bootstrap_profiles').selectAll().where('owner_id', '=', ownerId);
    return (await applyKeyset(q, 'created_at', 'id', window).execute()).map(toProfile);
  }

  async findProfile(ownerId: OwnerId, idOrName: string): Promise<BootstrapProfile | undefined> {
    const col = idOrName.startsWith('bpr_') ? 'id' : 'name';
    const r = await this.db.selectFrom('bootstrap_profiles').selectAll().where('owner_id', '=', ownerId).where(col, '=', idOrName).executeTakeFirst();
    return r && toProfile(r);
  }

  async findProfileById(id: string): Promise<BootstrapProfile | undefined> {
    const r = await this.db.selectFrom('bootstrap_profiles').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toProfile(r);
  }


  async findRecordByMetal(ownerId: OwnerId, metalId: string): Promise<OnboardingRecord | undefined> {
    const r = await this.db.selectFrom('onboardings').selectAll().where('owner_id', '=', ownerId).where('metal_id', '=', metalId).orderBy('updated_at', 'desc').executeTakeFirst();
    return r && toRecord(r);
  }

  async findRecord(ownerId: OwnerId, guid: string): Promise<OnboardingRecord | undefined> {
    const r = await this.db.selectFrom('onboardings').selectAll().where('owner_id', '=', ownerId).where('guid', '=', guid).executeTakeFirst();
    return r && toRecord(r);
  }

  async findRecordById(ownerId: OwnerId, id: string): Promise<OnboardingRecord | undefined> {
    const r = await this.db.selectFrom('onboardings').selectAll().where('owner_id', '=', ownerId).where('id', '=', id).executeTakeFirst();
    return r && toRecord(r);
  }

  async findRecordBySecret(secretId: string): Promise<OnboardingRecord | undefined> {
    const r = await this.db.selectFrom('onboardings').selectAll().where('secret_id', '=', secretId).executeTakeFirst();
    return r && toRecord(r);
  }

  async putRecord(r: OnboardingRecord): Promise<void> {
    const row = recordRow(r);
    const { id: _id, owner_id: _o, guid: _g, created_at: _c, ...changes } = row;
    await this.db
      .insertInto('onboardings')
      .values(row)
      .onConflict((oc) => oc.columns(['owner_id', 'guid']).doUpdateSet(changes))
      .execute();
  }

  async listRecords(ownerId: OwnerId, status: OnboardingState | undefined, window?: KeysetWindow): Promise<OnboardingRecord[]> {
    let q = this.db.selectFrom('onboardings').selectAll().where('owner_id', '=', ownerId);
    if (status) q = q.where('status', '=', status);
    return (await applyKeyset(q, 'created_at', 'id', window).execute()).map(toRecord);
  }
}
