import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';
import { TestGateway } from '../gateways/test-client.ts';

let m: TestMaster;
let alice: Record<string, string>;
let gw: TestGateway;
beforeEach(async () => {
  m = await testMaster();
  alice = m.auth(m.alice.token);
  gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-lab');
});
afterEach(async () => m.close());

const ETH = '02:aa:00:00:00:01';
const WLAN = '02:aa:00:00:00:02';
const join = (mac: string, o: Record<string, unknown> = {}) => ({ mac, ip: '10.77.0.20', gatewayInterface: 'lan0', interfaceType: 'ethernet', pxe: true, ...o });

async function metal(name = 'pi', token = m.alice.token, macs = [ETH, WLAN]) {
  const r = await m.app.inject({
    method: 'POST',
    url: '/api/v1/metals',
    headers: m.auth(token),
    payload: { name, interfaces: macs.map((mac, i) => ({ name: `if${i}`, mac, type: i === 0 ? 'ethernet' : 'wifi', pxe: i === 0 })) },
  });
  expect(r.statusCode).toBe(201);
  return r.json().id as string;
}
async function space(name: string, phase: number, token = m.alice.token) {
  expect((await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: m.auth(token), payload: { name, phase } })).statusCode).toBe(201);
}
async function member(spaceName: string, metalName: string, isDefault: boolean, token = m.alice.token) {
  const r = await m.app.inject({
    method: 'POST',
    url: `/api/v1/spaces/${spaceName}/members`,
    headers: m.auth(token),
    payload: { metal: metalName, interfaces: ['if0'], default: isDefault },
  });
  expect(r.statusCode).toBe(201);
}
async function listen(): Promise<string> {
  await m.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(m.app.server.address() as AddressInfo).port}`;
}
const failures = async (q = '', headers = alice) => (await m.app.inject({ url: `/api/v1/discovery/failures${q}`, headers })).json();

describe('T6 registration decision', () => {
  it('blocks an unknown MAC with unknown_mac and no TIPS ID', async () => {
    const r = await gw.register(join(ETH));
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
  });

  it('blocks a metal without a default Space (no_default_space, with its TIPS ID)', async () => {
    const id = await metal();
    expect((await gw.register(join(ETH))).json()).toEqual({ decision: 'blocked', reason: 'no_default_space', tipsId: id });
  });

  it('is not satisfied by a non-default Space membership, not even a Phase 1 one', async () => {
    const id = await metal();
    await space('os', 1);
    await space('apps', 2);
    await member('os', 'pi', false);
    await member('apps', 'pi', false);
    expect((await gw.register(join(ETH))).json()).toEqual({ decision: 'blocked', reason: 'no_default_space', tipsId: id });
  });

  it('confirms a metal with a default Phase 1 Space: active with its TIPS ID, on any of its interfaces', async () => {
    const id = await metal();
    await space('os', 1);
    await member('os', 'pi', true);
    expect((await gw.register(join(ETH))).json()).toEqual({ decision: 'active', tipsId: id });
    expect((await gw.register(join(WLAN.toUpperCase(), { interfaceType: 'wifi', pxe: false }))).json()).toEqual({ decision: 'active', tipsId: id });
  });

  it('blocks a metal that was blocked (metal_blocked) until it is unblocked', async () => {
    const id = await metal();
    await space('os', 1);
    await member('os', 'pi', true);
    expect((await m.app.inject({ method: 'POST', url: '/api/v1/metals/pi/block', headers: alice, payload: { reason: 'tamper' } })).statusCode).toBe(202);
    expect((await gw.register(join(ETH))).json()).toEqual({ decision: 'blocked', reason: 'metal_blocked', tipsId: id });
    expect((await m.app.inject({ method: 'POST', url: '/api/v1/metals/pi/unblock', headers: alice })).statusCode).toBe(202);
    expect((await gw.register(join(ETH))).json()).toEqual({ decision: 'active', tipsId: id });
    const again = await m.app.inject({ method: 'POST', url: '/api/v1/metals/pi/unblock', headers: alice });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('metal_not_blocked');
  });

  it("T6 decides among the gateway owner's metals only: another owner's gateway learns nothing of the metal", async () => {
    const id = await metal();
    await space('os', 1);
    await member('os', 'pi', true);
    const bobs = await TestGateway.enroll(m.app, m.bob.token, 'gw-bob');
    // To Bob's gateway, Alice's MAC is as unknown as any other: no reason, answer or record tells otherwise.
    expect((await bobs.register(join(ETH))).json()).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
    expect((await bobs.register(join('02:aa:00:00:0f:0f'))).json()).toEqual({ decision: 'blocked', reason: 'unknown_mac' });
    const f = await failures('', m.auth(m.bob.token));
    expect(f.items.map((r: { reason: string; tipsId?: string }) => [r.reason, r.tipsId])).toEqual([
      ['unknown_mac', undefined],
      ['unknown_mac', undefined],
    ]);
    expect(JSON.stringify(f)).not.toContain(id);
    // Bob declares the same MAC: each gateway registers it as its own owner's metal.
    const bobsId = await metal('bobs-pi', m.bob.token, [ETH]);
    await space('bos', 1, m.bob.token);
    await member('bos', 'bobs-pi', true, m.bob.token);
    expect((await bobs.register(join(ETH))).json()).toEqual({ decision: 'active', tipsId: bobsId });
    expect((await gw.register(join(ETH))).json()).toEqual({ decision: 'active', tipsId: id });
    // Blocking Alice's metal changes nothing for Bob's, and is not visible to Bob.
    expect((await m.app.inject({ method: 'POST', url: '/api/v1/metals/pi/block', headers: alice, payload: {} })).statusCode).toBe(202);
    expect((await gw.register(join(ETH))).json()).toEqual({ decision: 'blocked', reason: 'metal_blocked', tipsId: id });
    expect((await bobs.register(join(ETH))).json()).toEqual({ decision: 'active', tipsId: bobsId });
    expect(JSON.stringify(await failures('', m.auth(m.bob.token)))).not.toContain(id);
  });

  it('checks the rule in order: a blocked metal without a default Space is metal_blocked', async () => {
    const id = await metal();
    await m.app.inject({ method: 'POST', url: '/api/v1/metals/pi/block', headers: alice, payload: {} });
    expect((await gw.register(join(ETH))).json()).toEqual({ decision: 'blocked', reason: 'metal_blocked', tipsId: id });
  });

  it.each([
    [{ mac: 'nope' }, 'mac'],
    [{ mac: 'ff:ff:ff:ff:ff:ff' }, 'mac'],
    [{ ip: '10.0.0.256' }, 'ip'],
    [{ gatewayInterface: 'lan 0' }, 'gatewayInterface'],
    [{ interfaceType: 'token-ring' }, 'interfaceType'],
    [{ hostname: 'a b' }, 'hostname'],
    [{ extra: 1 }, 'extra'],
  ])('refuses a malformed registration %j naming the field, recording nothing', async (over, field) => {
    const r = await gw.register(join(ETH, over));
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe(field);
    expect((await m.app.inject({ url: '/api/v1/discovery/registrations', headers: alice })).json().items).toEqual([]);
  });
});

describe('T6 T9 batch registration: one signed request, one decision and one record per item', () => {
  const registrations = async () => (await m.app.inject({ url: '/api/v1/discovery/registrations?limit=1000', headers: alice })).json().items as Record<string, unknown>[];

  it('decides each item by the same rule as a lone registration, in order, and records each', async () => {
    const id = await metal('pi');
    const other = await metal('cam', m.alice.token, ['02:aa:00:00:00:03']);
    await space('os', 1);
    await member('os', 'pi', true);
    const items = [join(ETH), join('02:bb:00:00:00:09', { ip: '10.77.0.21' }), join('02:aa:00:00:00:03', { hostname: 'cam-1' }), join(WLAN.toUpperCase(), { interfaceType: 'wifi', pxe: false })];
    const r = await gw.registerBatch(items);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      items: [
        { decision: 'active', tipsId: id },
        { decision: 'blocked', reason: 'unknown_mac' },
        { decision: 'blocked', reason: 'no_default_space', tipsId: other },
        { decision: 'active', tipsId: id },
      ],
    });
    // The same answers as the single endpoint gives for each of them.
    for (const [i, item] of items.entries()) expect((await gw.register(item)).json()).toEqual(r.json().items[i]);
    const recs = await registrations();
    expect(recs).toHaveLength(8);
    // Records of one millisecond have no order among themselves: compare the batch's four as a set.
    const batchRecs = recs.slice(4).map((x) => [x.mac, x.decision, x.reason ?? null, x.tipsId ?? null, x.hostname ?? null, x.gatewayId]);
    const byMac = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
    expect(batchRecs.sort(byMac)).toEqual(
      [
        [ETH, 'active', null, id, null, gw.id],
        ['02:bb:00:00:00:09', 'blocked', 'unknown_mac', null, null, gw.id],
        ['02:aa:00:00:00:03', 'blocked', 'no_default_space', other, 'cam-1', gw.id],
        [WLAN, 'active', null, id, null, gw.id],
      ].sort(byMac),
    );
  });

  it("T6 decides a batch among the gateway owner's metals only: another owner's MACs are unknown_mac", async () => {
    await metal('pi');
    await space('os', 1);
    await member('os', 'pi', true);
    const bobs = await TestGateway.enroll(m.app, m.bob.token, 'gw-bob');
    const r = await bobs.registerBatch([join(ETH), join(WLAN)]);
    expect(r.json()).toEqual({ items: [{ decision: 'blocked', reason: 'unknown_mac' }, { decision: 'blocked', reason: 'unknown_mac' }] });
  });

  it.each([
    [[join(ETH), join(WLAN, { ip: '10.0.0.256' })], 'items[1].ip'],
    [[join(ETH, { mac: 'nope' })], 'items[0].mac'],
    [[join(ETH), join(WLAN), join(ETH, { gatewayInterface: 'lan 0' })], 'items[2].gatewayInterface'],
    [[join(ETH, { interfaceType: 'token-ring' })], 'items[0].interfaceType'],
    [[join(ETH, { pxe: 'yes' })], 'items[0].pxe'],
    [[join(ETH, { hostname: 'a b' })], 'items[0].hostname'],
    [[join(ETH, { extra: 1 })], 'items[0].extra'],
    [[{ ip: '10.0.0.1', gatewayInterface: 'lan0' }], 'items[0].mac'],
    [[join(ETH), 'x'], 'items[1]'],
    [[join(ETH, { interfaceType: 'x'.repeat(100_000) })], 'items[0].interfaceType'],
    [[join(ETH, { mac: `02:aa:00:00:00:01${' '.repeat(100)}` })], 'items[0].mac'],
    [[], 'items'],
    [Array.from({ length: 257 }, () => join(ETH)), 'items'],
  ])('refuses a batch with a bad item (%#) naming items[i].field, recording nothing', async (items, field) => {
    await metal('pi');
    const r = await gw.registerBatch(items);
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe(field);
    expect(r.body.length).toBeLessThan(500);
    expect(await registrations()).toEqual([]);
  });

  it('takes 256 items in one request', async () => {
    const items = Array.from({ length: 256 }, (_, i) => join(`02:cc:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`));
    const r = await gw.registerBatch(items);
    expect(r.statusCode).toBe(200);
    expect(r.json().items).toHaveLength(256);
    expect(await registrations()).toHaveLength(256);
  });

  it('is signed like every gateway request: unsigned, body-swapped or replayed batches are refused and record nothing', async () => {
    const unsigned = await m.app.inject({ method: 'POST', url: '/api/gateway/v1/registrations/batch', payload: { items: [join(ETH)] } });
    expect(unsigned.statusCode).toBe(401);
    const swapped = await gw.registerBatch([join(ETH)], { signedBody: JSON.stringify({ items: [join(WLAN)] }) });
    expect(swapped.statusCode).toBe(401);
    const nonce = 'bbbbbbbbbbbbbbbbbbbbbb';
    const timestamp = Date.now();
    expect((await gw.registerBatch([join(ETH)], { nonce, timestamp })).statusCode).toBe(200);
    expect((await gw.registerBatch([join(ETH)], { nonce, timestamp })).statusCode).toBe(401);
    expect(await registrations()).toHaveLength(1);
  });
});

describe('T9 failed registrations are recorded and retrievable', () => {
  beforeEach(async () => {
    await metal('pi');
    await space('os', 1);
    await gw.register(join('02:bb:00:00:00:01', { ip: '10.77.0.30', gatewayInterface: 'lan1', interfaceType: 'wifi', pxe: false, hostname: 'cam-1' }));
    await gw.register(join(ETH));
    await member('os', 'pi', true);
    await gw.register(join(ETH));
  });

  it('lists failures newest first with when, which gateway, which address and why', async () => {
    const f = await failures();
    expect(f.items).toEqual([
      { at: expect.any(String), gatewayId: gw.id, gatewayName: 'gw-lab', mac: ETH, ip: '10.77.0.20', interfaceType: 'ethernet', gatewayInterface: 'lan0', pxe: true, decision: 'blocked', reason: 'no_default_space', tipsId: expect.stringMatching(/^mtl_/) },
      { at: expect.any(String), gatewayId: gw.id, gatewayName: 'gw-lab', mac: '02:bb:00:00:00:01', ip: '10.77.0.30', interfaceType: 'wifi', gatewayInterface: 'lan1', pxe: false, hostname: 'cam-1', decision: 'blocked', reason: 'unknown_mac' },
    ]);
    expect(Date.parse(f.items[0].at)).toBeGreaterThanOrEqual(Date.parse(f.items[1].at));
    const all = (await m.app.inject({ url: '/api/v1/discovery/registrations', headers: alice })).json();
    expect(all.items.map((r: { decision: string }) => r.decision)).toEqual(['active', 'blocked', 'blocked']);
  });

  it('filters by MAC, gateway, reason, time and limit', async () => {
    expect((await failures(`?mac=${encodeURIComponent('02-BB-00-00-00-01')}`)).items.map((r: { reason: string }) => r.reason)).toEqual(['unknown_mac']);
    expect((await failures('?reason=no_default_space')).items).toHaveLength(1);
    expect((await failures(`?gatewayId=${gw.id}`)).items).toHaveLength(2);
    expect((await failures('?gatewayId=gwy_00000000000000000000000000')).items).toHaveLength(0);
    expect((await failures('?limit=1')).items).toHaveLength(1);
    expect((await failures(`?since=${new Date(Date.now() + 60_000).toISOString()}`)).items).toHaveLength(0);
    expect((await failures('?since=2000-01-01')).items).toHaveLength(2);
    for (const [q, field] of [
      ['?mac=x', 'mac'],
      ['?reason=bored', 'reason'],
      ['?since=yesterday', 'since'],
      ['?limit=0', 'limit'],
      ['?colour=red', 'querystring.colour'],
    ]) {
      const r = await m.app.inject({ url: `/api/v1/discovery/failures${q}`, headers: alice });
      expect(r.statusCode, q).toBe(400);
      expect(r.json().error.field).toBe(field);
    }
  });

  it('exports failures as JSON lines, oldest first, across pages', async () => {
    for (let i = 0; i < 520; i++) await gw.register(join(`02:cc:00:00:${String(Math.floor(i / 256)).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}`));
    const r = await m.app.inject({ url: '/api/v1/discovery/failures.jsonl', headers: alice });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('application/x-ndjson');
    const lines = r.body.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(522);
    expect(lines[0]).toMatchObject({ mac: '02:bb:00:00:00:01', reason: 'unknown_mac' });
    expect(new Set(lines.map((l) => `${l.at}${l.mac}`)).size).toBe(522);
    const filtered = await m.app.inject({ url: '/api/v1/discovery/failures.jsonl?reason=no_default_space', headers: alice });
    expect(filtered.body.trimEnd().split('\n')).toHaveLength(1);
    const all = await m.app.inject({ url: '/api/v1/discovery/registrations.jsonl?decision=active', headers: alice });
    expect(JSON.parse(all.body)).toMatchObject({ decision: 'active', mac: ETH });
    const bad = await m.app.inject({ url: '/api/v1/discovery/failures.jsonl?since=soon', headers: alice });
    expect(bad.statusCode).toBe(400);
  });

  it("shows another owner nothing of these records", async () => {
    expect((await failures('', m.auth(m.bob.token))).items).toEqual([]);
    const r = await m.app.inject({ url: '/api/v1/discovery/failures.jsonl', headers: m.auth(m.bob.token) });
    expect(r.body).toBe('');
  });
});

describe('T10 T16 commands over the gateway channel (real WebSocket)', () => {
  it("T10: adding the MAC to a metal sends clear to the owner's gateway that blocked it, not to another owner's", async () => {
    const base = await listen();
    const ch = await gw.connect(base);
    const bobs = await TestGateway.enroll(m.app, m.bob.token, 'gw-bob');
    const bobsChannel = await bobs.connect(base);
    await metal('pi', m.alice.token, [WLAN]);
    await space('os', 1);
    expect((await gw.register(join(ETH))).json().reason).toBe('unknown_mac');
    expect((await bobs.register(join(ETH))).json().reason).toBe('unknown_mac');
    const r = await m.app.inject({
      method: 'PATCH',
      url: '/api/v1/metals/pi',
      headers: alice,
      payload: { interfaces: [{ name: 'if0', mac: ETH, type: 'ethernet', pxe: true }, { name: 'if1', mac: WLAN, type: 'wifi' }] },
    });
    expect(r.statusCode).toBe(200);
    const clear = await ch.next((c) => c.type === 'clear');
    expect(clear).toEqual({ id: expect.any(String), type: 'clear', mac: ETH });
    ch.ack(clear);
    await new Promise((r) => setTimeout(r, 200));
    expect(bobsChannel.received).toEqual([]);
    await Promise.all([ch.close(), bobsChannel.close()]);
  });

  it('T10: a metal gaining a default Space sends clear for its blocked MACs', async () => {
    const base = await listen();
    await metal();
    await space('os', 1);
    await space('apps', 2);
    expect((await gw.register(join(ETH))).json().reason).toBe('no_default_space');
    const ch = await gw.connect(base);
    await member('apps', 'pi', false);
    await new Promise((r) => setTimeout(r, 200));
    expect(ch.received).toEqual([]);
    await member('os', 'pi', true);
    expect(await ch.next((c) => c.type === 'clear')).toMatchObject({ type: 'clear', mac: ETH });
    expect((await gw.register(join(ETH))).json().decision).toBe('active');
    await ch.close();
  });

  it('T16: blocking a metal sends block with its MACs to every connected gateway of the owner within 5 s', async () => {
    const base = await listen();
    const id = await metal();
    const second = await TestGateway.enroll(m.app, m.alice.token, 'gw-hall');
    const bobs = await TestGateway.enroll(m.app, m.bob.token, 'gw-bob');
    const [c1, c2, cb] = await Promise.all([gw.connect(base), second.connect(base), bobs.connect(base)]);
    const gateways = (await m.app.inject({ url: '/api/v1/gateways', headers: alice })).json().items;
    expect(gateways.every((g: { connected: boolean }) => g.connected)).toBe(true);
    const t0 = Date.now();
    const r = await m.app.inject({ method: 'POST', url: `/api/v1/metals/${id}/block`, headers: alice, payload: { reason: 'tamper detected' } });
    expect(r.statusCode).toBe(202);
    expect(r.json()).toEqual({ tipsId: id, macs: [ETH, WLAN], gateways: 2 });
    for (const ch of [c1, c2]) {
      expect(await ch.next((c) => c.type === 'block', 5000)).toEqual({ id: expect.any(String), type: 'block', tipsId: id, macs: [ETH, WLAN], reason: 'tamper detected' });
    }
    expect(Date.now() - t0).toBeLessThan(5000);
    await new Promise((res) => setTimeout(res, 200));
    expect(cb.received).toEqual([]);
    await m.app.inject({ method: 'POST', url: `/api/v1/metals/${id}/unblock`, headers: alice });
    const unblocks = [await c1.next((c) => c.type === 'unblock' && c.mac === ETH), await c1.next((c) => c.type === 'unblock' && c.mac === WLAN)];
    expect(unblocks.map((u) => u.mac)).toEqual([ETH, WLAN]);
    await Promise.all([c1.close(), c2.close(), cb.close()]);
  });

  it("T16: another owner cannot block one's metal (404)", async () => {
    await metal();
    const r = await m.app.inject({ method: 'POST', url: '/api/v1/metals/pi/block', headers: m.auth(m.bob.token), payload: {} });
    expect(r.statusCode).toBe(404);
    expect((await gw.register(join(ETH))).json().reason).toBe('no_default_space');
  });

  it('queues commands for a disconnected gateway, delivers them on reconnect, and re-sends until acked', async () => {
    const base = await listen();
    const id = await metal();
    await m.app.inject({ method: 'POST', url: `/api/v1/metals/${id}/block`, headers: alice, payload: {} });
    const first = await gw.connect(base);
    const block = await first.next((c) => c.type === 'block');
    expect(block).toMatchObject({ tipsId: id, macs: [ETH, WLAN] });
    await first.close();
    const second = await gw.connect(base);
    expect((await second.next((c) => c.type === 'block')).id).toBe(block.id);
    second.ack(block);
    await new Promise((r) => setTimeout(r, 200));
    await second.close();
    const third = await gw.connect(base);
    await new Promise((r) => setTimeout(r, 300));
    expect(third.received).toEqual([]);
    await third.close();
  });

  it('refuses a channel without a valid signature, and closes the channel of a removed gateway', async () => {
    const base = await listen();
    await expect(gw.connect(base, { timestamp: Date.now() - 120_000 })).rejects.toThrow(/HTTP 401/);
    const ch = await gw.connect(base);
    expect((await m.app.inject({ method: 'DELETE', url: '/api/v1/gateways/gw-lab', headers: alice })).statusCode).toBe(204);
    expect(await ch.closed).toBe(4001);
    await expect(gw.connect(base)).rejects.toThrow(/HTTP 401/);
  });
});
