import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../app.ts';
import { FsBlobStore } from '../../blob/fs-blob-store.ts';
import { type Db, openDatabase } from '../../db/database.ts';
import type { Owner } from '../owners/model.ts';
import type { NotificationBus } from './model.ts';

// The broker side is proven with mosquitto_sub in e2e/phase3-mqtt.test.ts (retire); here every
// other way a metal loses its standing reaches the bus's disconnect, through the real services.
let dir: string;
let db: Db;
let s: Services;
let owner: Owner;
let closed: string[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-mqtt-revocation-'));
  db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
  s = createServices({ db, blobs: await FsBlobStore.open(join(dir, 'glazes')) });
  owner = (await s.owners.ensureAdmin())!.owner;
  closed = [];
  const bus: NotificationBus = {
    url: 'mqtts://localhost:1',
    publish: async () => {},
    connectedMetals: () => 0,
    disconnectMetal: (id) => {
      closed.push(id);
      return 1;
    },
    close: async () => {},
  };
  s.notifications.useBus(bus);
});
afterEach(async () => {
  await db.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('S14 T16 a metal that loses its standing loses its open MQTT connection', () => {
  it('block, certificate revocation, retirement and deletion each close it; unrelated metals keep theirs', async () => {
    const pi = await s.metals.create(owner.id, { name: 'pi', interfaces: [{ name: 'eth0', mac: '02:aa:00:00:00:01', type: 'ethernet', pxe: true }] });
    await s.metals.create(owner.id, { name: 'other', interfaces: [{ name: 'eth0', mac: '02:aa:00:00:00:02', type: 'ethernet', pxe: true }] });
    expect(closed).toEqual([]);
    await s.discovery.block(owner.id, 'pi');
    expect(closed).toEqual([pi.id]);
    await s.enrollment.revokeMetal(owner.id, 'pi');
    expect(closed).toEqual([pi.id, pi.id]);
    await s.enrollment.retireMetal(owner.id, 'pi');
    expect(closed).toEqual([pi.id, pi.id, pi.id]);
    await s.metals.delete(owner.id, 'pi');
    expect(closed).toEqual([pi.id, pi.id, pi.id, pi.id]);
  });
});
