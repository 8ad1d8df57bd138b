import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KyselyUpdateStore } from '../apps/master/src/domains/updates/store.kysely.ts';
import type { TestMaster } from '../apps/master/src/testing.ts';
import { cliAgainstTestMaster } from './helpers.ts';

// The real `tips` CLI against an in-process master; what metals would report is written through the
// updates store (the metal side over mTLS is proven in apps/master/src/domains/updates/routes.test.ts).
let m: TestMaster;
let tips: Awaited<ReturnType<typeof cliAgainstTestMaster>>['run'];
beforeAll(async () => {
  ({ m, run: tips } = await cliAgainstTestMaster());
});
afterAll(async () => m.close());

const json = async (args: string[]) => {
  const r = await tips([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};

describe('S7 T14 T16 tips glaze push --handler, metal list/show/rollback/tamper-events, space set', () => {
  it('shows installed Glazes and history, filters by Glaze name@version and vendor, records a rollback and shows tamper events', async () => {
    const metal = await json(['metal', 'create', '--name', 'pi-07', '--iface', 'eth0=02:cc:00:00:00:07,ethernet']);
    await json(['metal', 'create', '--name', 'pi-08', '--iface', 'eth0=02:cc:00:00:00:08,ethernet']);
    const space = await json(['space', 'create', '--name', 'apps', '--phase', '3']);
    await json(['space', 'add', 'apps', 'pi-07', '--iface', 'eth0']);
    writeFileSync(join(m.dir, 'web.img'), 'web 1.4');
    const bad = await tips(['glaze', 'push', join(m.dir, 'web.img'), '--name', 'web', '--handler', 'rpm', '--no-progress']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/handler must be one of archive, rootfs-ab, systemd-service, script/);
    const glaze = await json(['glaze', 'push', join(m.dir, 'web.img'), '--name', 'web', '--version', '1.4', '--handler', 'systemd-service', '--space', 'apps', '--no-progress']);
    expect(glaze).toMatchObject({ handler: 'systemd-service', version: '1.4' });
    expect((await tips(['glaze', 'show', 'web@1.4'])).stdout).toContain('reference: web@1.4');
    expect((await json(['space', 'set', 'apps', '--glaze', 'web@1.4'])).glazeId).toBe(glaze.id);

    const store = new KyselyUpdateStore(m.db);
    await store.recordReport({ id: 'rpt_1', ownerId: m.alice.id, metalId: metal.id, spaceId: space.id, glazeId: glaze.id, result: 'installed', reason: null, sequence: 14, at: '2026-11-29T10:00:00.000Z', cose: new Uint8Array([1]), createdAt: '2026-11-29T10:00:01.000Z' });
    await store.putProfile({ metalId: metal.id, ownerId: m.alice.id, vendorId: 'aaaaaaaa-0000-5000-8000-000000000001', classId: null, glazes: [], interfaces: [], protocols: ['https', 'mqtt'], updatedAt: '2026-11-29T10:00:02.000Z' });
    await store.addEvent({ id: 'evt_1', ownerId: m.alice.id, metalId: metal.id, kind: 'tamper', code: 'software_outside_tips', detail: { changes: [{ path: '/var/lib/dpkg/status', kind: 'package', detail: 'hello 2.10-3' }] }, createdAt: '2026-11-29T10:00:03.000Z' });

    const show = await tips(['metal', 'show', 'pi-07']);
    expect(show.stdout).toMatch(/installed Glazes:\n\s+web\s+1\.4\s+seq 14/);
    expect(show.stdout).toMatch(/last report: 2026-11-29T10:00:00.000Z\s+installed/);
    expect(show.stdout).toContain('package /var/lib/dpkg/status (hello 2.10-3)');
    expect((await json(['metal', 'show', 'pi-07'])).updates.installed[0]).toMatchObject({ glazeId: glaze.id, version: '1.4', sequence: 14 });

    expect((await json(['metal', 'list', '--glaze', 'web@1.4'])).map((x: { name: string }) => x.name)).toEqual(['pi-07']);
    expect((await json(['metal', 'list', '--vendor', 'aaaaaaaa-0000-5000-8000-000000000001'])).map((x: { name: string }) => x.name)).toEqual(['pi-07']);
    expect(await json(['metal', 'list', '--class', 'aaaaaaaa-0000-5000-8000-000000000001'])).toEqual([]);
    const missing = await tips(['metal', 'list', '--glaze', 'web@9']);
    expect(missing.code).toBe(4);

    const rb = await json(['metal', 'rollback', 'pi-07', '--glaze', 'web@1.4']);
    expect(rb.spaces).toEqual([{ spaceId: space.id, glazeId: glaze.id }]);
    const nothing = await tips(['metal', 'rollback', 'pi-08']);
    expect(nothing.code).not.toBe(0);
    expect(nothing.stderr).toContain('nothing_to_roll_back');

    const tamper = await tips(['metal', 'tamper-events', 'pi-07']);
    expect(tamper.stdout).toMatch(/tamper\s+software_outside_tips: package \/var\/lib\/dpkg\/status/);
    expect(tamper.stdout).not.toContain('rollback_requested');
    const all = await json(['metal', 'tamper-events', 'pi-07', '--all']);
    expect(all.map((e: { kind: string }) => e.kind).sort()).toEqual(['rollback_requested', 'tamper']);
    for (const cmd of [['metal', 'rollback'], ['metal', 'tamper-events'], ['metal', 'list'], ['glaze', 'push'], ['space', 'set']]) {
      const h = await tips([...cmd, '--help']);
      expect(h.code).toBe(0);
      expect(h.stdout).toContain('--json');
    }
  }, 120_000);
});
