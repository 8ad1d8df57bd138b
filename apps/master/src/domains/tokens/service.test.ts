// The token service over in-memory ports: issuance checks and claims, challenges, the verify order
// (everything before a challenge is spent), the upload hop and introspection — fast enough for
// mutation testing (mutation/tokens.conf.mjs). The HTTP surface: routes.test.ts, upload-hop.test.ts.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { OwnerId } from '@tips/core';
import { CborTag, decodeCbor, importKey } from '@tips/suit';
import { signPop, spkiOf, verifyCwt, verifyJwt } from '@tips/trust';
import { beforeEach, describe, expect, it } from 'vitest';
import type { EnrollmentService } from '../enrollment/service.ts';
import type { GlazeService } from '../glazes/service.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import type { TokenError } from './errors.ts';
import { CHALLENGE_SECONDS, MAX_TOKEN_MINUTES } from './model.ts';
import { TOKEN_ISSUER, TokenService } from './service.ts';
import type { TokenStore } from './store.ts';

const OWNER = 'own_0000000000000000000000000a' as OwnerId;
const OTHER = 'own_0000000000000000000000000b' as OwnerId;
const METAL = 'mtl_0000000000000000000000000a';
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const notFound = () => Object.assign(new Error('not found'), { code: 'not_found' });
const byName = (table: Record<string, string>) => ({
  async get(owner: OwnerId, ref: string) {
    if (owner !== OWNER) throw notFound();
    const id = table[ref] ?? (Object.values(table).includes(ref) ? ref : undefined);
    if (!id) throw notFound();
    return { id, name: ref };
  },
});
const metals = byName({ pi: METAL }) as unknown as MetalService;
const spaces = byName({ apps: 'spc_0000000000000000000000000a', base: 'spc_0000000000000000000000000b' }) as unknown as SpaceService;
const glazes = byName({ os: 'glz_0000000000000000000000000a' }) as unknown as GlazeService;
const SPC_APPS = 'spc_0000000000000000000000000a';
const SPC_BASE = 'spc_0000000000000000000000000b';
const GLZ_OS = 'glz_0000000000000000000000000a';

class MemoryChallenges implements TokenStore {
  rows = new Map<string, { ownerId: string; expiresAt: string }>();
  async insertChallenge(c: { nonce: string; ownerId: string; expiresAt: string; createdAt: string }) {
    this.rows.set(c.nonce, c);
  }
  async consumeChallenge(nonce: string, now: string) {
    const c = this.rows.get(nonce);
    if (!c || c.expiresAt <= now) return false;
    this.rows.delete(nonce);
    return true;
  }
}

const metalHolder = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const enrollment = {
  async activeKeyOfMetal(owner: OwnerId, ref: string) {
    if (owner !== OWNER || ref !== METAL) throw notFound();
    return new Uint8Array(spkiOf(metalHolder.publicKey));
  },
} as unknown as EnrollmentService;

const issuerKey = importKey(generateKeyPairSync('ed25519').privateKey);
let t: number;
let store: MemoryChallenges;
let svc: TokenService;
let counter: number;
beforeEach(() => {
  t = T0;
  counter = 0;
  store = new MemoryChallenges();
  // Deterministic "random": each call a distinct, recognisable byte pattern.
  const random = { bytes: (n: number) => new Uint8Array(n).fill(++counter) };
  svc = new TokenService(store, metals, spaces, glazes, enrollment, { now: () => new Date(t) }, random, async () => issuerKey);
});

const holder = () => generateKeyPairSync('ed25519');
const pemOf = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
/** The refusal — and every refusal must say what is wrong. */
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: TokenError) => {
      if (!e.message) throw new Error(`${e.code} without a message`);
      return e;
    },
  );
const code = async (p: Promise<unknown>) => (await errorOf(p))?.code ?? 'ok';

async function issue(input: Partial<Parameters<TokenService['issue']>[1]> = {}, key = holder()) {
  const r = await svc.issue(OWNER, { audience: TOKEN_ISSUER, scope: [`upload:space:apps`], holder: { publicKey: pemOf(key.publicKey) }, ...input });
  return { ...r, key };
}
async function proof(token: string, key: KeyObject) {
  const { nonce } = await svc.challenge(OWNER);
  return { nonce, signature: signPop(nonce, token, key) };
}

describe('S11 issuing a token: one hop, the owner’s own resources by ID, minutes of life, a holder key', () => {
  it('writes the claims: issuer, owner subject, audience, exp = now + ttl, nbf 5 s back, iat, a random cti, scopes by ID, cnf; CWT and JWT carry the same', async () => {
    const { cwt, jwt, key, ...out } = await issue({ scope: ['upload:space:apps', 'pull:glaze:os', 'register:metal:pi', 'update:component:rootfs'], ttlMinutes: 7 });
    const now = Math.floor(T0 / 1000);
    expect(out).toEqual({
      cti: '01'.repeat(16),
      audience: TOKEN_ISSUER,
      subject: `urn:tips:owner:${OWNER}`,
      scope: [`upload:space:${SPC_APPS}`, `pull:glaze:${GLZ_OS}`, `register:metal:${METAL}`, 'update:component:rootfs'],
      expiresAt: new Date((now + 7 * 60) * 1000).toISOString(),
    });
    for (const claims of [verifyCwt(new Uint8Array(Buffer.from(cwt, 'base64url')), [issuerKey]), verifyJwt(jwt, [issuerKey])]) {
      const { cnf, ...rest } = claims;
      expect(rest).toEqual({ iss: TOKEN_ISSUER, sub: `urn:tips:owner:${OWNER}`, aud: TOKEN_ISSUER, exp: now + 420, nbf: now - 5, iat: now, cti: new Uint8Array(16).fill(1), scope: out.scope.join(' ') });
      expect(spkiOf(cnf!)).toEqual(spkiOf(key.publicKey));
    }
    // Both name the issuer key: the kid is the last 8 bytes of its SPKI, as /tokens/issuer-key says.
    const { kid, coseKey, jwk } = await svc.issuerKey();
    expect(kid).toBe(spkiOf(issuerKey.publicKey!).subarray(-8).toString('hex'));
    expect(JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid).toBe(kid);
    const sign1 = decodeCbor(new Uint8Array(Buffer.from(cwt, 'base64url')));
    const unprotected = ((sign1 instanceof CborTag ? sign1.value : sign1) as unknown as [Uint8Array, Map<number, unknown>])[1];
    expect(Buffer.from(unprotected.get(4) as Uint8Array).toString('hex')).toBe(kid);
    expect(spkiOf(importKey(new Uint8Array(Buffer.from(coseKey, 'base64url'))).publicKey!)).toEqual(spkiOf(issuerKey.publicKey!));
    expect(jwk).toEqual(issuerKey.publicKey!.export({ format: 'jwk' }));
  });

  it('lives 5 minutes by default and 1..60 minutes when asked; 0, 61 and fractions are refused by field', async () => {
    expect((await issue()).expiresAt).toBe(new Date(Math.floor(T0 / 1000) * 1000 + 5 * 60_000).toISOString());
    expect(await code(issue({ ttlMinutes: 1 }))).toBe('ok');
    expect(await code(issue({ ttlMinutes: MAX_TOKEN_MINUTES }))).toBe('ok');
    for (const ttl of [0, MAX_TOKEN_MINUTES + 1, 1.5]) expect(await errorOf(issue({ ttlMinutes: ttl }))).toMatchObject({ code: 'scope_invalid', field: 'ttlMinutes' });
  });

  it('audience: the master or one of the owner’s own metals; nothing else', async () => {
    expect((await issue({ audience: `urn:tips:metal:${METAL}` })).audience).toBe(`urn:tips:metal:${METAL}`);
    expect(await code(issue({ audience: 'urn:tips:metal:mtl_0000000000000000000000000z' }))).toBe('not_found');
    for (const audience of ['https://evil', 'urn:tips:masterx', 'xurn:tips:master', `urn:tips:metal:${METAL}x`]) {
      expect(await errorOf(issue({ audience })), audience).toMatchObject({ code: 'scope_invalid', field: 'audience' });
    }
  });

  it('scopes: 1 to 16, each <action>:<kind>:<ref> naming the owner’s own resource, refused by index', async () => {
    expect(await errorOf(issue({ scope: [] }))).toMatchObject({ code: 'scope_invalid', field: 'scope' });
    expect(await code(issue({ scope: Array.from({ length: 16 }, () => 'update:component:a') }))).toBe('ok');
    expect(await errorOf(issue({ scope: Array.from({ length: 17 }, () => 'update:component:a') }))).toMatchObject({ code: 'scope_invalid', field: 'scope' });
    const e = await errorOf(issue({ scope: ['update:component:a', 'root:everything:*'] }));
    expect(e).toMatchObject({ code: 'scope_invalid', field: 'scope[1]' });
    expect(e!.message).toContain('"root:everything:*"');
    expect((await errorOf(issue({ scope: [`${'x'.repeat(200)}`] })))!.message).toContain(`"${'x'.repeat(80)}"`);
    expect((await errorOf(issue({ scope: [`${'x'.repeat(200)}`] })))!.message).not.toContain('x'.repeat(81));
    for (const s of ['pull:glaze:nope', 'update:space:nope', 'register:metal:nope']) expect(await code(issue({ scope: [s] })), s).toBe('not_found');
    expect(await code(svc.issue(OTHER, { audience: TOKEN_ISSUER, scope: ['upload:space:apps'], holder: { publicKey: pemOf(holder().publicKey) } }))).toBe('not_found');
  });

  it('holder: exactly one of a public key (Ed25519 or P-256, PEM or JWK) or an enrolled metal, whose certificate key it binds', async () => {
    for (const h of [{}, { publicKey: pemOf(holder().publicKey), metal: 'pi' }]) {
      expect(await errorOf(issue({ holder: h })), JSON.stringify(h)).toMatchObject({ code: 'holder_key_invalid', field: 'holder' });
    }
    expect(await code(issue({ holder: { publicKey: pemOf(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey) } }))).toBe('ok');
    expect(await code(issue({ holder: { publicKey: JSON.stringify(holder().publicKey.export({ format: 'jwk' })) } }))).toBe('ok');
    // A private key given by mistake: its public half is bound.
    const priv = holder();
    const fromPriv = await svc.issue(OWNER, { audience: TOKEN_ISSUER, scope: ['update:component:a'], holder: { publicKey: priv.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() } });
    expect(spkiOf(verifyJwt(fromPriv.jwt, [issuerKey]).cnf!)).toEqual(spkiOf(priv.publicKey));
    for (const bad of [
      pemOf(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey),
      pemOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey),
      pemOf(generateKeyPairSync('ed448').publicKey),
      'nope',
    ]) {
      expect(await errorOf(issue({ holder: { publicKey: bad } }))).toMatchObject({ code: 'holder_key_invalid', field: 'holder.publicKey' });
    }
    const m = await svc.issue(OWNER, { audience: TOKEN_ISSUER, scope: ['pull:glaze:os'], holder: { metal: 'pi' } });
    expect(m.subject).toBe(`urn:tips:metal:${METAL}`);
    expect(spkiOf(verifyJwt(m.jwt, [issuerKey]).cnf!)).toEqual(spkiOf(metalHolder.publicKey));
    expect(await code(svc.issue(OWNER, { audience: TOKEN_ISSUER, scope: ['pull:glaze:os'], holder: { metal: 'nope' } }))).toBe('not_found');
  });

  it('the issuer key is made once, however many tokens', async () => {
    let made = 0;
    const s = new TokenService(store, metals, spaces, glazes, enrollment, { now: () => new Date(t) }, { bytes: (n) => new Uint8Array(n) }, async () => {
      made++;
      return issuerKey;
    });
    await s.key();
    await s.issuerKey();
    await s.issue(OWNER, { audience: TOKEN_ISSUER, scope: ['update:component:a'], holder: { publicKey: pemOf(holder().publicKey) } });
    expect(made).toBe(1);
  });
});

describe('S11 verifying a token: the checks, then a fresh challenge spent once, or the TLS key', () => {
  it('a challenge is 24 random bytes, lives CHALLENGE_SECONDS and is stored for the owner', async () => {
    const c = await svc.challenge(OWNER);
    expect(c).toEqual({ nonce: Buffer.from(new Uint8Array(24).fill(1)).toString('base64url'), expiresAt: new Date(T0 + CHALLENGE_SECONDS * 1000).toISOString() });
    expect(store.rows.get(c.nonce)).toMatchObject({ ownerId: OWNER, expiresAt: c.expiresAt, createdAt: new Date(T0).toISOString() });
  });

  it('accepts a signed fresh challenge once; a replay, an unknown or an expired nonce is challenge_invalid', async () => {
    const tok = await issue();
    const p = await proof(tok.cwt, tok.key.privateKey);
    const v = await svc.verify(tok.cwt, { audience: TOKEN_ISSUER, scope: `upload:space:${SPC_APPS}`, proof: p });
    expect(v).toMatchObject({ format: 'cwt', pop: 'signature', claims: { sub: `urn:tips:owner:${OWNER}` } });
    expect(await errorOf(svc.verify(tok.cwt, { audience: TOKEN_ISSUER, proof: p }))).toMatchObject({ code: 'challenge_invalid', field: 'proof.nonce' });
    expect(await code(svc.verify(tok.cwt, { audience: TOKEN_ISSUER, proof: { nonce: 'made-up', signature: signPop('made-up', tok.cwt, tok.key.privateKey) } }))).toBe('challenge_invalid');
    const late = await proof(tok.jwt, tok.key.privateKey);
    t = T0 + CHALLENGE_SECONDS * 1000;
    expect(await code(svc.verify(tok.jwt, { audience: TOKEN_ISSUER, proof: late }))).toBe('challenge_invalid');
  });

  it('checks everything but the proof before a challenge is spent: a refused token leaves the challenge usable', async () => {
    const tok = await issue();
    const p = await proof(tok.cwt, tok.key.privateKey);
    expect(await errorOf(svc.verify(tok.cwt, { audience: `urn:tips:metal:${METAL}`, proof: p }))).toMatchObject({ code: 'token_audience_mismatch', field: 'token' });
    expect(await errorOf(svc.verify(tok.cwt, { audience: TOKEN_ISSUER, scope: 'pull:glaze:x', proof: p }))).toMatchObject({ code: 'token_scope_insufficient', field: 'scope' });
    expect(await errorOf(svc.verify('%%%', { audience: TOKEN_ISSUER, proof: p }))).toMatchObject({ code: 'token_malformed', field: 'token' });
    expect(store.rows.has(p.nonce)).toBe(true);
    // A proof by another key spends the challenge (it was presented) and is pop_invalid.
    const other = await proof(tok.cwt, holder().privateKey);
    expect(await errorOf(svc.verify(tok.cwt, { audience: TOKEN_ISSUER, proof: other }))).toMatchObject({ code: 'pop_invalid', field: 'proof' });
    expect(await code(svc.verify(tok.cwt, { audience: TOKEN_ISSUER, proof: p }))).toBe('ok');
  });

  it('without a proof: the token is checked first (its own error), then pop_required', async () => {
    const tok = await issue();
    expect(await errorOf(svc.verify(tok.cwt, { audience: TOKEN_ISSUER }))).toMatchObject({ code: 'pop_required', field: 'proof' });
    expect(await code(svc.verify(tok.cwt, { audience: 'urn:tips:nobody' }))).toBe('token_audience_mismatch');
    t = T0 + 6 * 60_000;
    expect(await code(svc.verify(tok.cwt, { audience: TOKEN_ISSUER }))).toBe('token_expired');
  });

  it('mTLS proof: the certificate key of the connection; another key falls back to a signature proof if one was given', async () => {
    const tok = await svc.issue(OWNER, { audience: TOKEN_ISSUER, scope: ['pull:glaze:os'], holder: { metal: 'pi' } });
    const tlsSpki = new Uint8Array(spkiOf(metalHolder.publicKey));
    expect(await svc.verify(tok.cwt, { audience: TOKEN_ISSUER, tlsSpki })).toMatchObject({ pop: 'mtls' });
    const wrongTls = new Uint8Array(spkiOf(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey));
    expect(await errorOf(svc.verify(tok.cwt, { audience: TOKEN_ISSUER, tlsSpki: wrongTls }))).toMatchObject({ code: 'pop_invalid', field: 'proof' });
    const p = await proof(tok.cwt, metalHolder.privateKey);
    expect(await svc.verify(tok.cwt, { audience: TOKEN_ISSUER, tlsSpki: wrongTls, proof: p })).toMatchObject({ pop: 'signature' });
    // Over TLS, a failure other than the key is not retried with the signature.
    const p2 = await proof(tok.cwt, metalHolder.privateKey);
    expect(await code(svc.verify(tok.cwt, { audience: 'urn:tips:nobody', tlsSpki, proof: p2 }))).toBe('token_audience_mismatch');
    expect(store.rows.has(p2.nonce)).toBe(true);
  });

  it('introspection: active with the claims, or inactive with the reason; other failures are not swallowed', async () => {
    const tok = await issue();
    const p = await proof(tok.jwt, tok.key.privateKey);
    const now = Math.floor(T0 / 1000);
    expect(await svc.introspect(tok.jwt, { audience: TOKEN_ISSUER, proof: p })).toEqual({
      active: true,
      iss: TOKEN_ISSUER,
      sub: `urn:tips:owner:${OWNER}`,
      aud: TOKEN_ISSUER,
      exp: now + 300,
      iat: now,
      scope: `upload:space:${SPC_APPS}`,
      cti: '01'.repeat(16),
      format: 'jwt',
      pop: 'signature',
    });
    expect(await svc.introspect(tok.jwt, { audience: TOKEN_ISSUER })).toEqual({ active: false, reason: 'pop_required' });
    const broken = new TokenService(store, metals, spaces, glazes, enrollment, { now: () => new Date(t) }, { bytes: (n) => new Uint8Array(n) }, async () => Promise.reject(new Error('no key')));
    expect((await errorOf(broken.introspect(tok.jwt, { audience: TOKEN_ISSUER })))!.message).toBe('no key');
  });
});

describe('S11 the operator→master upload hop', () => {
  async function uploadToken(scope = ['upload:space:apps', 'upload:space:base'], owner = OWNER) {
    const key = holder();
    const r = await svc.issue(owner, { audience: TOKEN_ISSUER, scope, holder: { publicKey: pemOf(key.publicKey) } });
    const p = await proof(r.cwt, key.privateKey);
    return { token: r.cwt, ...p };
  }

  it('no token: allowed unless required, then upload_token_required', async () => {
    await expect(svc.authorizeUpload(OWNER, [SPC_APPS], {}, false)).resolves.toBeUndefined();
    expect(await errorOf(svc.authorizeUpload(OWNER, [SPC_APPS], {}, true))).toMatchObject({ code: 'upload_token_required', field: 'x-tips-token' });
    expect(await code(svc.authorizeUpload(OWNER, [SPC_APPS], { token: '' }, true))).toBe('upload_token_required');
  });

  it('a token must carry upload:space:<id> for every Space named, with a proof, issued to this owner', async () => {
    expect(await code(svc.authorizeUpload(OWNER, [SPC_APPS, SPC_BASE], await uploadToken(), true))).toBe('ok');
    expect(await code(svc.authorizeUpload(OWNER, [SPC_BASE], await uploadToken(), false))).toBe('ok');
    expect(await errorOf(svc.authorizeUpload(OWNER, [], await uploadToken(), false))).toMatchObject({ code: 'token_scope_insufficient', field: 'spaces' });
    const e = await errorOf(svc.authorizeUpload(OWNER, [SPC_APPS, 'spc_0000000000000000000000000c'], await uploadToken(), true));
    expect(e).toMatchObject({ code: 'token_scope_insufficient', field: 'scope' });
    expect(e!.message).toContain('upload:space:spc_0000000000000000000000000c');
    expect(await code(svc.authorizeUpload(OWNER, [SPC_BASE], await uploadToken(['upload:space:apps']), true))).toBe('token_scope_insufficient');
    const { token, nonce, signature } = await uploadToken();
    expect(await code(svc.authorizeUpload(OWNER, [SPC_APPS], { token, nonce }, true))).toBe('pop_required');
    expect(await code(svc.authorizeUpload(OWNER, [SPC_APPS], { token, signature }, true))).toBe('pop_required');
    // The same token presented by another owner.
    expect(await errorOf(svc.authorizeUpload(OTHER, [SPC_APPS], { token, nonce, signature }, true))).toMatchObject({ code: 'token_owner_mismatch', field: 'x-tips-token' });
    // A metal-held token for the master is not an owner's upload token.
    const mt = await svc.issue(OWNER, { audience: TOKEN_ISSUER, scope: ['upload:space:apps'], holder: { metal: 'pi' } });
    const mp = await proof(mt.cwt, metalHolder.privateKey);
    expect(await code(svc.authorizeUpload(OWNER, [SPC_APPS], { token: mt.cwt, ...mp }, true))).toBe('token_owner_mismatch');
  });
});
