import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RunningMaster, startMaster } from './helpers.ts';

/**
 * T2 B5: stateless master replicas on PostgreSQL. Two real master processes share one database
 * and one blob directory; what one writes the other serves, and either can be killed.
 */
let dir: string;
let dbName: string;
let admin: pg.Client;
const masters: RunningMaster[] = [];
const token = `tips_${randomBytes(32).toString('base64url')}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-pg-'));
  admin = new pg.Client({ connectionString: inject('pgUrl') });
  await admin.connect();
  dbName = `replicas_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(inject('pgUrl'));
  url.pathname = `/${dbName}`;
  const [a, b] = await Promise.all(
    ['a', 'b'].map(() => startMaster(['--data-dir', join(dir, 'shared'), '--database-url', url.toString()], { TIPS_BOOTSTRAP_ADMIN_TOKEN: token })),
  );
  masters.push(a!, b!);
});
afterAll(async () => {
  for (const m of masters) await m.stop();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

const call = async (m: RunningMaster, method: string, path: string, body?: unknown) => {
  const r = await fetch(`${m.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: r.status === 204 ? undefined : await r.json() };
};

describe('T2 B5 master replicas on one PostgreSQL', () => {
  it('starts two replicas at once: one migration, one admin', async () => {
    const url = new URL(inject('pgUrl'));
    url.pathname = `/${dbName}`;
    const replicaDb = new pg.Client({ connectionString: url.toString() });
    await replicaDb.connect();
    const owners = await replicaDb.query('SELECT count(*)::int AS n FROM owners');
    const migrations = await replicaDb.query('SELECT count(*)::int AS n FROM kysely_migration');
    await replicaDb.end();
    expect(owners.rows[0].n).toBe(1);
    expect(migrations.rows[0].n).toBeGreaterThanOrEqual(1);
    for (const m of masters) expect((await call(m, 'GET', '/api/v1/me')).body.name).toBe('admin');
  });

  it('serves from one replica what the other wrote, including Glaze bytes', async () => {
    const [a, b] = masters as [RunningMaster, RunningMaster];
    const created = await call(a, 'POST', '/api/v1/metals', { name: 'pi', interfaces: [{ name: 'eth0', mac: '02:aa:00:00:00:01', type: 'ethernet', pxe: true }] });
    expect(created.status).toBe(201);
    expect((await call(b, 'GET', '/api/v1/metals/pi')).body.id).toBe(created.body.id);
    const dup = await call(b, 'POST', '/api/v1/metals', { name: 'pi2', interfaces: [{ name: 'eth0', mac: '02:aa:00:00:00:01', type: 'ethernet' }] });
    expect(dup.status).toBe(409);

    const bytes = randomBytes(100_000);
    const up = await fetch(`${a.url}/api/v1/glazes?name=img`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(up.status).toBe(201);
    const down = await fetch(`${b.url}/api/v1/glazes/img/content`, { headers: { authorization: `Bearer ${token}` } });
    expect(Buffer.from(await down.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('keeps serving when one replica is killed', async () => {
    const [a, b] = masters as [RunningMaster, RunningMaster];
    await a.stop('SIGKILL');
    expect((await call(b, 'GET', '/api/v1/metals')).body.items).toHaveLength(1);
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
  });
});
