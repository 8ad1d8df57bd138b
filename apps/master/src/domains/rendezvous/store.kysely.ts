import type { Db } from '../../db/database.ts';
import type { RendezvousRegistration, RendezvousStore } from './store.ts';
import type { RendezvousRegistrationsTable } from './tables.ts';

const toReg = (r: RendezvousRegistrationsTable): RendezvousRegistration => ({
  guid: r.guid,
  deviceKeyPem: r.device_key,
  ownerChain: JSON.parse(r.owner_chain) as string[],
  to1d: new Uint8Array(Buffer.from(r.to1d, 'base64')),
  expiresAt: r.expires_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class KyselyRendezvousStore implements RendezvousStore {
  constructor(private readonly db: Db) {}

  async find(guid: string): Promise<RendezvousRegistration | undefined> {
    const r = await this.db.selectFrom('rendezvous_registrations').selectAll().where('guid', '=', guid).executeTakeFirst();
    return r && toReg(r);
  }

  async upsert(r: RendezvousRegistration, guard: (existing: RendezvousRegistration | undefined) => void): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom('rendezvous_registrations').selectAll().where('guid', '=', r.guid).executeTakeFirst();
      const existing = row && toReg(row);
      guard(existing);
      const values = { device_key: r.deviceKeyPem, owner_chain: JSON.stringify(r.ownerChain), to1d: Buffer.from(r.to1d).toString('base64'), expires_at: r.expiresAt, updated_at: r.updatedAt };
      if (existing) await tx.updateTable('rendezvous_registrations').set(values).where('guid', '=', r.guid).execute();
      else await tx.insertInto('rendezvous_registrations').values({ guid: r.guid, created_at: r.createdAt, ...values }).execute();
    });
  }

  async putNonce(nonceHash: string, guid: string, expiresAt: string): Promise<void> {
    await this.db.insertInto('rendezvous_nonces').values({ nonce_hash: nonceHash, guid, expires_at: expiresAt }).execute();
  }

  async takeNonce(nonceHash: string, guid: string, now: string): Promise<boolean> {
    // Expired ones are swept on the way, so the table holds only live challenges.
    await this.db.deleteFrom('rendezvous_nonces').where('expires_at', '<=', now).execute();
    const r = await this.db.deleteFrom('rendezvous_nonces').where('nonce_hash', '=', nonceHash).where('guid', '=', guid).where('expires_at', '>', now).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
