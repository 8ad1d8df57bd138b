import { generateKeyPairSync } from 'node:crypto';
import { signPop } from '@tips/trust';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestMaster, testMaster } from '../../testing.ts';

let m: TestMaster;
afterEach(async () => m?.close());

const body = Buffer.from('glaze payload for the upload hop');
const holder = () => generateKeyPairSync('ed25519');

async function setup(requireUploadToken: boolean) {
  m = await testMaster({ requireUploadToken });
  const h = m.auth(m.alice.token);
  for (const name of ['base-os', 'other']) await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: h, payload: { name, phase: 1 } });
}

async function issue(scope: string[], key = holder(), ownerToken = m.alice.token) {
  const r = await m.app.inject({
    method: 'POST',
    url: '/api/v1/tokens/issue',
    headers: m.auth(ownerToken),
    payload: { audience: 'urn:tips:master', scope, ttlMinutes: 5, holder: { publicKey: key.publicKey.export({ type: 'spki', format: 'pem' }).toString() } },
  });
  expect(r.statusCode, r.body).toBe(201);
  return { token: r.json().cwt as string, key };
}

async function proofHeaders(token: string, key: ReturnType<typeof holder>, ownerToken = m.alice.token) {
  const { nonce } = (await m.app.inject({ method: 'POST', url: '/api/v1/tokens/challenge', headers: m.auth(ownerToken) })).json();
  return { 'x-tips-token': token, 'x-tips-pop-nonce': nonce, 'x-tips-pop-signature': signPop(nonce, token, key.privateKey) };
}

const upload = (query: string, headers: Record<string, string> = {}, ownerToken = m.alice.token) =>
  m.app.inject({
    method: 'POST',
    url: `/api/v1/glazes?${query}`,
    headers: { ...m.auth(ownerToken), 'content-type': 'application/octet-stream', ...headers },
    payload: body,
  });

const glazes = async () => (await m.app.inject({ url: '/api/v1/glazes', headers: m.auth(m.alice.token) })).json().items as unknown[];

describe('S11 the operator→master upload hop: a scoped, proof-of-possession token', () => {
  it('with --require-upload-token, an API token alone no longer uploads', async () => {
    await setup(true);
    const r = await upload('name=os&spaces=base-os');
    expect(r.statusCode).toBe(401);
    expect(r.json().error).toMatchObject({ code: 'upload_token_required', field: 'x-tips-token' });
    expect(await glazes()).toEqual([]);
  });

  it('accepts an upload token for the Space with a signed fresh challenge, once', async () => {
    await setup(true);
    const { token, key } = await issue(['upload:space:base-os']);
    const headers = await proofHeaders(token, key);
    const ok = await upload('name=os&spaces=base-os', headers);
    expect(ok.statusCode, ok.body).toBe(201);
    const replay = await upload('name=os2&spaces=base-os', headers);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('challenge_invalid');
    expect(await glazes()).toHaveLength(1);
  });

  it.each([
    ['a token without the proof', async (t: string) => ({ 'x-tips-token': t }), 401, 'pop_required'],
    ['a proof by another key', async (t: string) => proofHeaders(t, holder()), 401, 'pop_invalid'],
  ])('refuses %s', async (_what, headersOf, status, code) => {
    await setup(true);
    const { token } = await issue(['upload:space:base-os']);
    const r = await upload('name=os&spaces=base-os', await headersOf(token));
    expect(r.statusCode).toBe(status);
    expect(r.json().error.code).toBe(code);
    expect(await glazes()).toEqual([]);
  });

  it('refuses a token scoped to another Space, or to another action, or for another audience', async () => {
    await setup(true);
    const other = await issue(['upload:space:other']);
    const r1 = await upload('name=os&spaces=base-os', await proofHeaders(other.token, other.key));
    expect(r1.statusCode).toBe(403);
    expect(r1.json().error.code).toBe('token_scope_insufficient');
    const pull = await issue(['pull:space:base-os']);
    expect((await upload('name=os&spaces=base-os', await proofHeaders(pull.token, pull.key))).json().error.code).toBe('token_scope_insufficient');
    const both = await issue(['upload:space:base-os']);
    const r3 = await upload('name=os&spaces=base-os,other', await proofHeaders(both.token, both.key));
    expect(r3.statusCode).toBe(403);
    expect(r3.json().error.message).toContain('upload:space:spc_');
    expect(await glazes()).toEqual([]);
  });

  it("refuses another owner's token even when Bob holds its key", async () => {
    await setup(true);
    const h = m.auth(m.bob.token);
    await m.app.inject({ method: 'POST', url: '/api/v1/spaces', headers: h, payload: { name: 'base-os', phase: 1 } });
    const alices = await issue(['upload:space:base-os']);
    const r = await upload('name=os&spaces=base-os', await proofHeaders(alices.token, alices.key, m.bob.token), m.bob.token);
    // Scopes name Space IDs, so Alice's token can never cover one of Bob's Spaces.
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('token_scope_insufficient');
    expect((await m.app.inject({ url: '/api/v1/glazes', headers: h })).json().items).toEqual([]);
  });

  it('without the flag a token is optional, but a presented one is still checked', async () => {
    await setup(false);
    expect((await upload('name=plain&spaces=base-os')).statusCode).toBe(201);
    const r = await upload('name=bad&spaces=base-os', { 'x-tips-token': 'not-a-token' });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('token_malformed');
  });
});
