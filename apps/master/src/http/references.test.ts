import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../testing.ts';

/**
 * References are an ID or a name, never ambiguous: a name may not take the shape of any ID, so a
 * metal named after another metal's ID can never make `DELETE /metals/<that ID>` hit the wrong one.
 */
let m: TestMaster;
beforeAll(async () => {
  m = await testMaster();
});
afterAll(async () => m.close());

const json = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
const metal = (name: string, mac: string) => ({ name, interfaces: [{ name: 'eth0', mac, type: 'ethernet' }] });

describe('T3 names never look like IDs, so a reference names one object', () => {
  it('refuses a metal named after another metal’s ID; DELETE by that ID then removes only the metal it names', async () => {
    const h = json(m.alice.token);
    const victim = (await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: h, payload: metal('victim', '02:00:00:00:01:01') })).json();
    const attack = await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: h, payload: metal(victim.id, '02:00:00:00:01:02') });
    expect(attack.statusCode).toBe(400);
    expect(attack.json().error).toMatchObject({ code: 'invalid_value', field: 'name' });
    const decoy = (await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: h, payload: metal('decoy', '02:00:00:00:01:03') })).json();
    const rename = await m.app.inject({ method: 'PATCH', url: `/api/v1/metals/${decoy.id}`, headers: h, payload: { name: victim.id } });
    expect(rename.statusCode).toBe(400);
    const names = (await m.app.inject({ url: '/api/v1/metals', headers: h })).json().items.map((x: { name: string }) => x.name);
    expect(names.sort()).toEqual(['decoy', 'victim']);
    // The attack of the issue: the metal the user meant ("mtl_…") does not exist, so the other one must not be hit by name.
    expect((await m.app.inject({ method: 'DELETE', url: `/api/v1/metals/${decoy.id}`, headers: m.auth(m.alice.token) })).statusCode).toBe(204);
    expect((await m.app.inject({ url: `/api/v1/metals/${victim.id}`, headers: h })).json().name).toBe('victim');
  });

  it.each([
    ['a metal ID', 'mtl_0123456789abcdefghjkmnpqrs'],
    ['a Space ID in capitals', 'SPC_0123456789ABCDEFGHJKMNPQRS'],
    ['a Glaze ID', 'glz_0123456789abcdefghjkmnpqrs'],
    ['an owner ID', 'own_0123456789abcdefghjkmnpqrs'],
    ['a gateway ID', 'gwy_0123456789abcdefghjkmnpqrs'],
    ['a key ID', 'key_0123456789abcdefghjkmnpqrs'],
    ['an enrollment secret ID', 'ens_0123456789abcdefghjkmnpqrs'],
    ['an API token ID', 'tok_AbCdEfGhIjKlMnOp'],
    ['a gateway command ID', 'cmd_AbCdEfGhIjKlMn-_'],
    ['a discovery record ID', 'reg_00mabcdefgAbCdEfGhIjKl'],
  ])('refuses %s as the name of every kind of object, and creates nothing', async (_what, name) => {
    const h = json(m.alice.token);
    const admin = json(m.adminToken);
    const count = async () => {
      const rows = await Promise.all(['metals', 'spaces', 'glazes', 'gateways', 'keys', 'tokens'].map((t) => m.app.inject({ url: `/api/v1/${t}`, headers: h })));
      const owners = (await m.app.inject({ url: '/api/v1/owners', headers: admin })).json().items.length;
      return [...rows.map((r) => r.json().items.length), owners];
    };
    const before = await count();
    const tries = [
      await m.app.inject({ method: 'POST', url: '/api/v1/metals', headers: h, payload: metal(name, '02:00:00:00:02:01') }),
      await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: h, payload: { name, phase: 2 } }),
      await m.app.inject({ method: 'POST', url: `/api/v1/glazes?name=${name}`, headers: { ...h, 'content-type': 'application/octet-stream' }, payload: Buffer.from('img') }),
      await m.app.inject({ method: 'POST', url: '/api/v1/gateways', headers: h, payload: { name } }),
      await m.app.inject({ method: 'POST', url: '/api/v1/keys', headers: h, payload: { name, serverHeld: true } }),
      await m.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: h, payload: { name } }),
      await m.app.inject({ method: 'POST', url: '/api/v1/owners', headers: admin, payload: { name } }),
    ];
    for (const r of tries) {
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.field).toBe('name');
    }
    expect(await count()).toEqual(before);
  });

  it('looks an ID-shaped reference up only as an ID: one of another kind, or in capitals, names nothing', async () => {
    const h = json(m.alice.token);
    const space = (await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: h, payload: { name: 'lab', phase: 2 } })).json();
    expect((await m.app.inject({ url: `/api/v1/spaces/${space.id}`, headers: h })).statusCode).toBe(200);
    expect((await m.app.inject({ url: `/api/v1/spaces/${space.id.toUpperCase()}`, headers: h })).statusCode).toBe(404);
    expect((await m.app.inject({ url: `/api/v1/metals/${space.id}`, headers: h })).statusCode).toBe(404);
    expect((await m.app.inject({ url: '/api/v1/spaces/lab', headers: h })).json().id).toBe(space.id);
  });

  it('resolves an operator key by ID or by name, never one for the other (it used to match either column)', async () => {
    const h = json(m.alice.token);
    const k = (await m.app.inject({ method: 'POST', url: '/api/v1/keys', headers: h, payload: { name: 'signer', serverHeld: true } })).json();
    const other = (await m.app.inject({ method: 'POST', url: '/api/v1/keys', headers: h, payload: { name: 'other', serverHeld: true } })).json();
    // Simulate a row from before names were checked: a key whose *name* is the other key's ID.
    await m.db.updateTable('operator_keys').set({ name: other.id }).where('id', '=', k.id).execute();
    expect((await m.app.inject({ method: 'DELETE', url: `/api/v1/keys/${other.id}`, headers: m.auth(m.alice.token) })).statusCode).toBe(204);
    const items = (await m.app.inject({ url: '/api/v1/keys', headers: h })).json().items as { id: string; revokedAt: string | null }[];
    const revoked = Object.fromEntries(items.map((x) => [x.id, x.revokedAt !== null]));
    expect(revoked).toMatchObject({ [k.id]: false, [other.id]: true });
  });
});
