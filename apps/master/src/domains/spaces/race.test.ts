// A membership names interfaces of its metal (T4). Adding a membership and changing the metal's
// interfaces each check the other's state before writing; run concurrently, both checks could pass
// on the state before either write, leaving a membership over an interface the metal no longer has
// (or a Phase 1 membership over an interface that is no longer PXE-capable). Each check and its
// write are one transaction, serialized on the metal's row: one request wins, the other is refused.
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';

const adapters: [string, () => string | undefined][] = [
  ['SQLite', () => undefined],
  ['PostgreSQL', () => inject('pgUrl')],
];

const ETH0 = { name: 'eth0', mac: 'dc:a6:32:01:02:03', type: 'ethernet', pxe: true };
const WLAN0 = { name: 'wlan0', mac: 'dc:a6:32:01:02:04', type: 'wifi' };

describe.each(adapters)('T4 a membership and an interface change race; one wins, nothing is left broken (%s)', (_name, pgUrl) => {
  let m: TestMaster;
  let h: Record<string, string>;
  beforeEach(async () => {
    m = await testMaster({ pgUrl: pgUrl() });
    h = m.auth(m.alice.token);
  });
  afterEach(async () => m.close());

  const req = (method: 'POST' | 'PATCH', url: string, payload: unknown) => m.app.inject({ method, url: `/api/v1${url}`, headers: h, payload: payload as object });

  /** Every membership of every metal uses interfaces the metal has, PXE-capable ones in Phase 1 Spaces. */
  async function assertConsistent(): Promise<void> {
    const metals = (await m.app.inject({ url: '/api/v1/metals', headers: h })).json().items as { name: string; interfaces: { name: string; pxe: boolean }[] }[];
    for (const metal of metals) {
      const detail = (await m.app.inject({ url: `/api/v1/metals/${metal.name}`, headers: h })).json() as { spaces: { phase: number; interfaces: string[] }[] };
      for (const s of detail.spaces) {
        for (const n of s.interfaces) {
          const iface = metal.interfaces.find((i) => i.name === n);
          expect(iface, `${metal.name} is in a Space over ${n}, which it no longer has`).toBeDefined();
          if (s.phase === 1) expect(iface!.pxe, `${metal.name} is in a Phase 1 Space over ${n}, no longer PXE-capable`).toBe(true);
        }
      }
    }
  }

  it('Z2 a metal made in Spaces at once (onboarding): one membership event after the interfaces one; a refused membership leaves no metal, no member, no event', async () => {
    const s = m.services;
    const owner = m.alice.id;
    const boot = await s.spaces.create(owner, { name: 'boot', phase: 1 });
    const apps = await s.spaces.create(owner, { name: 'apps', phase: 2 });
    const seen: string[] = [];
    s.events.on('metal.interfaces.changed', (e) => {
      seen.push(`interfaces ${e.metalId}`);
    });
    s.events.on('space.membership.changed', (e) => {
      seen.push(`membership ${e.metalId}`);
    });
    const input = (n: number) => ({ name: `dev-${n}`, interfaces: [ETH0, WLAN0].map((i) => ({ ...i, type: i.type as 'ethernet' | 'wifi', mac: i.mac.replace(/..$/, `${n}${i.mac.slice(-1)}`) })) });
    const metal = await s.spaces.createMetalInSpaces(owner, input(1), (x) => [
      { space: boot, interfaces: ['eth0'], default: true },
      { space: apps, interfaces: x.interfaces.map((i) => i.name), default: false },
    ]);
    expect(seen).toEqual([`interfaces ${metal.id}`, `membership ${metal.id}`]);
    const held = (await s.spaces.membershipsOfMetal(metal.id)).map((x) => ({ space: x.spaceName, interfaces: [...x.interfaces].sort(), isDefault: x.isDefault }));
    expect(held.sort((a, b) => a.space.localeCompare(b.space))).toEqual([
      { space: 'apps', interfaces: ['eth0', 'wlan0'], isDefault: false },
      { space: 'boot', interfaces: ['eth0'], isDefault: true },
    ]);
    expect((await s.spaces.defaultSpaceOf(metal.id))?.spaceId).toBe(boot.id);

    // Phase 1 over wlan0 (not PXE-capable), after a good Phase 2 membership: the whole unit is undone.
    seen.length = 0;
    await expect(
      s.spaces.createMetalInSpaces(owner, input(2), () => [
        { space: apps, interfaces: ['eth0'], default: false },
        { space: boot, interfaces: ['wlan0'], default: true },
      ]),
    ).rejects.toMatchObject({ code: 'phase1_needs_one_pxe_interface' });
    expect(seen).toEqual([]);
    await expect(s.metals.get(owner, 'dev-2')).rejects.toMatchObject({ code: 'metal_not_found' });
    expect(await s.spaces.memberIds(apps.id)).toEqual([metal.id]);
  });

  it('adding a member over wlan0 while a PATCH removes wlan0', async () => {
    expect((await req('POST', '/spaces', { name: 'apps', phase: 2 })).statusCode).toBe(201);
    for (let round = 0; round < 8; round++) {
      const name = `pi-${round}`;
      expect((await req('POST', '/metals', { name, interfaces: [ETH0, WLAN0].map((i) => ({ ...i, mac: i.mac.replace(/..$/, `${round}${i.mac.slice(-1)}`) })) })).statusCode).toBe(201);
      const [add, patch] = await Promise.all([
        req('POST', '/spaces/apps/members', { metal: name, interfaces: ['wlan0'] }),
        req('PATCH', `/metals/${name}`, { interfaces: [{ ...ETH0, mac: ETH0.mac.replace(/..$/, `${round}3`) }] }),
      ]);
      // Exactly one of them changed something: the member over wlan0, or the metal without it.
      const outcome = `${add.statusCode}/${patch.statusCode}`;
      expect(['201/409', '422/200'], `${outcome}: ${add.body} ${patch.body}`).toContain(outcome);
      if (add.statusCode === 422) expect(add.json().error.code).toBe('interface_not_found');
      if (patch.statusCode === 409) expect(patch.json().error.code).toBe('interfaces_in_use');
    }
    await assertConsistent();
  });

  it('adding a Phase 1 member over eth0 while a PATCH takes pxe from eth0', async () => {
    expect((await req('POST', '/spaces', { name: 'base-os', phase: 1 })).statusCode).toBe(201);
    for (let round = 0; round < 8; round++) {
      const name = `pi-${round}`;
      const eth0 = { ...ETH0, mac: ETH0.mac.replace(/..$/, `${round}3`) };
      expect((await req('POST', '/metals', { name, interfaces: [eth0] })).statusCode).toBe(201);
      const [add, patch] = await Promise.all([
        req('POST', '/spaces/base-os/members', { metal: name, interfaces: ['eth0'], default: true }),
        req('PATCH', `/metals/${name}`, { interfaces: [{ ...eth0, pxe: false }] }),
      ]);
      const outcome = `${add.statusCode}/${patch.statusCode}`;
      expect(['201/409', '422/200'], `${outcome}: ${add.body} ${patch.body}`).toContain(outcome);
      if (add.statusCode === 422) expect(add.json().error.code).toBe('phase1_needs_one_pxe_interface');
    }
    await assertConsistent();
  });
});
