import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { buildApp, type MasterDeps, type Services } from './app.ts';
import { FsBlobStore } from './blob/fs-blob-store.ts';
import { type Db, openDatabase } from './db/database.ts';

/**
 * An in-process master on a throw-away SQLite file and blob dir, for route tests (`app.inject`);
 * with `pgUrl` (the unit project's `inject('pgUrl')`) on a throw-away schema of that PostgreSQL.
 */
export async function testMaster(opts: { maxGlazeBytes?: number; requireUploadToken?: boolean; pgUrl?: string; tinkerbell?: MasterDeps['tinkerbell']; engineSyncMs?: number; logs?: boolean; sessionTtlSeconds?: number; webDir?: string; lwm2m?: MasterDeps['lwm2m']; publicUrls?: MasterDeps['publicUrls'] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tips-master-test-'));
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const pgAdmin = opts.pgUrl === undefined ? undefined : new pg.Client({ connectionString: opts.pgUrl });
  await pgAdmin?.connect();
  await pgAdmin?.query(`CREATE SCHEMA ${schema}`);
  const db: Db = await openDatabase(opts.pgUrl === undefined ? { kind: 'sqlite', file: join(dir, 'tips.db') } : { kind: 'postgres', url: opts.pgUrl, schema, poolSize: 4 });
  const blobs = await FsBlobStore.open(join(dir, 'glazes'));
  // With `logs`, the master's pino lines (JSON) are kept for the test to read.
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const logger = opts.logs ? { level: 'info', stream } : undefined;
  const { app, services } = await buildApp({ db, blobs, maxGlazeBytes: opts.maxGlazeBytes, requireUploadToken: opts.requireUploadToken, tinkerbell: opts.tinkerbell, engineSyncMs: opts.engineSyncMs, logger, sessionTtlSeconds: opts.sessionTtlSeconds, webDir: opts.webDir, lwm2m: opts.lwm2m, publicUrls: opts.publicUrls });
  const admin = await services.owners.ensureAdmin();
  if (!admin) throw new Error('fresh database must create an admin');
  const alice = await services.owners.createOwnerAsAdmin(admin.owner, 'alice');
  const bob = await services.owners.createOwnerAsAdmin(admin.owner, 'bob');
  return {
    app,
    services: services as Services,
    db,
    blobs,
    dir,
    logs,
    adminToken: admin.token,
    alice: { ...alice.owner, token: alice.token },
    bob: { ...bob.owner, token: bob.token },
    auth: (token: string) => ({ authorization: `Bearer ${token}` }),
    async close() {
      await app.close();
      await db.destroy();
      await pgAdmin?.query(`DROP SCHEMA ${schema} CASCADE`);
      await pgAdmin?.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
export type TestMaster = Awaited<ReturnType<typeof testMaster>>;
