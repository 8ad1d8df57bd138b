import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import { up0002Discovery, up0016Scale } from '../domains/discovery/migrations.ts';
import { up0003Enrollment, up0011Lifecycle } from '../domains/enrollment/migrations.ts';
import { up0004GatewayCertificates } from '../domains/gateways/migrations.ts';
import { up0005MetalMacPerOwner, up0010Perf, up0015Perf, up0018List } from '../domains/metals/migrations.ts';
import { up0007Provisioning, up0012Engines } from '../domains/provisioning/migrations.ts';
import { up0006ListKeysets } from './keyset-indexes.ts';
import { up0008Updates, up0015ConsoleViews } from '../domains/updates/migrations.ts';
import { up0014Onboarding } from '../domains/vouchers/migrations.ts';
import { up0014Rendezvous } from '../domains/rendezvous/migrations.ts';
import { up0015Bootstrap } from '../domains/bootstrap/migrations.ts';
import { up0013Console } from '../domains/sessions/migrations.ts';
import { up0015Telemetry } from '../domains/telemetry/migrations.ts';
import { up0015Constrained } from '../domains/constrained/migrations.ts';
import { up0015DeviceMgmt, up0016Lwm2m, up0017Lwm2m } from '../domains/devicemgmt/migrations.ts';

// Migrations are code, not files, so they ship with the sources and run the same on both dialects.
// Only portable types: text, integer, bigint. Each domain's tables carry its prefix.
export const migrations: Record<string, Migration> = {
  '0001_foundation': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('owners')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('is_admin', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull().references('owners.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema
        .createTable('metals')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('metals_owner_name', ['owner_id', 'name'])
        .execute();
      await db.schema
        .createTable('metal_interfaces')
        .addColumn('metal_id', 'text', (c) => c.notNull().references('metals.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('mac', 'text', (c) => c.notNull().unique())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('pxe', 'integer', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('metal_interfaces_pk', ['metal_id', 'name'])
        .execute();
      await db.schema
        .createTable('spaces')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('phase', 'integer', (c) => c.notNull())
        .addColumn('glaze_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('spaces_owner_name', ['owner_id', 'name'])
        .execute();
      await db.schema
        .createTable('space_members')
        .addColumn('space_id', 'text', (c) => c.notNull().references('spaces.id').onDelete('cascade'))
        .addColumn('metal_id', 'text', (c) => c.notNull())
        .addColumn('interface_name', 'text', (c) => c.notNull())
        .addColumn('is_default', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('space_members_pk', ['space_id', 'metal_id', 'interface_name'])
        .execute();
      await db.schema.createIndex('space_members_metal').on('space_members').column('metal_id').execute();
      await db.schema
        .createTable('glazes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('media_type', 'text', (c) => c.notNull())
        .addColumn('blob_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('glazes_owner_name', ['owner_id', 'name'])
        .execute();
      await db.schema
        .createTable('glaze_spaces')
        .addColumn('glaze_id', 'text', (c) => c.notNull().references('glazes.id').onDelete('cascade'))
        .addColumn('space_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('glaze_spaces_pk', ['glaze_id', 'space_id'])
        .execute();
    },
  },
  '0002_discovery': { up: up0002Discovery },
  '0003_enrollment': { up: up0003Enrollment },
  '0004_gateway_certificates': { up: up0004GatewayCertificates },
  '0005_metal_mac_per_owner': { up: up0005MetalMacPerOwner },
  '0006_list_keysets': { up: up0006ListKeysets },
  '0007_provisioning': { up: up0007Provisioning },
  '0008_updates': { up: up0008Updates },
  '0010_perf': { up: up0010Perf },
  '0011_lifecycle': { up: up0011Lifecycle },
  '0012_engines': { up: up0012Engines },
  '0013_console': { up: up0013Console },
  '0014_onboarding': {
    async up(db: Kysely<unknown>) {
      await up0014Onboarding(db);
      await up0014Rendezvous(db);
    },
  },
  '0015_bootstrap': { up: up0015Bootstrap },
  '0015_console_views': { up: up0015ConsoleViews },
  '0015_constrained': { up: up0015Constrained },
  '0015_devicemgmt': { up: up0015DeviceMgmt },
  '0015_perf': { up: up0015Perf },
  '0015_telemetry': { up: up0015Telemetry },
  '0016_lwm2m': { up: up0016Lwm2m },
  '0016_scale': { up: up0016Scale },
  '0017_lwm2m': { up: up0017Lwm2m },
  '0018_list': { up: up0018List },
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema up to date; safe to run on every start (the migrator takes a lock). */
export async function migrateToLatest(db: Kysely<unknown>): Promise<void> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}
