// The enrollment service over in-memory ports (no database, no TLS): every check of secrets, CSRs,
// the mTLS identity and the throttle, fast enough for mutation testing (mutation/enrollment.conf.mjs).
// The HTTP surface and the real stores are tested in routes.test.ts and db/store.contract.test.ts.
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { InvalidValueError, type OwnerId, type TipsId } from '@tips/core';
import { certificateFingerprint, issueCertificate, parseCertificate, serialFrom, x509 } from '@tips/trust';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DomainEvents } from '../../events.ts';
import { systemRandom } from '../../ports.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import { createEphemeralCa, type MasterCa } from './ca.ts';
import { EnrollmentError } from './errors.ts';
import { type EnrollmentSecret, FAILED_ENROLLMENT_WINDOW_MS, type IssuedCertificate, MAX_FAILED_ENROLLMENTS, MAX_FAILED_ENROLLMENTS_PER_IDENTITY, MAX_SECRET_TTL_MINUTES, MAX_SECRET_USES } from './model.ts';
import { EnrollmentService, estIdentity } from './service.ts';
import type { EnrollmentStore } from './store.ts';

const OWNER = 'own_0000000000000000000000000a' as OwnerId;
const OTHER_OWNER = 'own_0000000000000000000000000b' as OwnerId;
const M1 = 'mtl_0000000000000000000000000a' as TipsId;
const M2 = 'mtl_0000000000000000000000000b' as TipsId;
const SPACE1 = 'spc_0000000000000000000000000a';
const SPACE2 = 'spc_0000000000000000000000000b';
const T0 = Date.parse('2030-01-01T00:00:00.000Z');

class MemoryStore implements EnrollmentStore {
  secrets = new Map<string, { secret: EnrollmentSecret; secretHash: string }>();
  certs = new Map<string, IssuedCertificate>();
  enrollRefuses = false;
  async insertSecret(secret: EnrollmentSecret, secretHash: string) {
    if ([...this.secrets.values()].some((s) => s.secretHash === secretHash)) throw Object.assign(new Error('unique'), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
    this.secrets.set(secret.id, { secret: structuredClone(secret), secretHash });
  }
  async findSecret(id: string) {
    const s = this.secrets.get(id);
    return s && { secret: structuredClone(s.secret), secretHash: s.secretHash };
  }
  async findSecretByHash(h: string) {
    const s = [...this.secrets.values()].find((x) => x.secretHash === h);
    return s && structuredClone(s.secret);
  }
  async listSecrets(ownerId: OwnerId) {
    return [...this.secrets.values()].filter((s) => s.secret.ownerId === ownerId).map((s) => s.secret);
  }
  async revokeSecret(ownerId: OwnerId, id: string, at: string) {
    const s = this.secrets.get(id);
    if (!s || s.secret.ownerId !== ownerId || s.secret.revokedAt) return false;
    s.secret.revokedAt = at;
    return true;
  }
  async enrollWithSecret(secretId: string, now: string, cert: IssuedCertificate) {
    const s = this.secrets.get(secretId)!;
    if (this.enrollRefuses || s.secret.uses >= s.secret.maxUses || s.secret.expiresAt <= now || s.secret.revokedAt) return false;
    s.secret.uses++;
    this.certs.set(cert.serial, cert);
    return true;
  }
  async reenroll(previous: string, _now: string, cert: IssuedCertificate) {
    const p = this.certs.get(previous);
    if (p?.status !== 'active') return false;
    this.certs.set(cert.serial, cert);
    return true;
  }
  async supersedeOlder(cert: IssuedCertificate, now: string) {
    let n = 0;
    for (const c of this.certs.values()) {
      if (c.status === 'active' && c.serial !== cert.serial && c.subject.kind === cert.subject.kind && c.subject.id === cert.subject.id && c.createdAt <= cert.createdAt) {
        Object.assign(c, { status: 'revoked', revokedAt: now, revokeReason: 'superseded' });
        n++;
      }
    }
    return n;
  }
  async findCertificate(serial: string) {
    return this.certs.get(serial);
  }
  async listCertificates(ownerId: OwnerId, subject?: { kind: string; id: string }) {
    return [...this.certs.values()].filter((c) => c.ownerId === ownerId && (!subject || (c.subject.kind === subject.kind && c.subject.id === subject.id)));
  }
  async revokeSubject(subject: { kind: string; id: string }, at: string, reason: string) {
    let n = 0;
    for (const c of this.certs.values()) {
      if (c.status === 'active' && c.subject.kind === subject.kind && c.subject.id === subject.id) {
        Object.assign(c, { status: 'revoked', revokedAt: at, revokeReason: reason });
        n++;
      }
    }
    return n;
  }
  async revokeCertificate(ownerId: OwnerId, serial: string, at: string, reason: string) {
    const c = this.certs.get(serial);
    if (!c || c.ownerId !== ownerId || c.status !== 'active') return false;
    Object.assign(c, { status: 'revoked', revokedAt: at, revokeReason: reason });
    return true;
  }
  retired = new Map<string, string>();
  async retire(_ownerId: OwnerId, metalId: string, at: string) {
    if (!this.retired.has(metalId)) this.retired.set(metalId, at);
    const certificates = await this.revokeSubject({ kind: 'metal', id: metalId }, at, 'retired');
    let secrets = 0;
    for (const s of this.secrets.values()) {
      if (s.secret.scope.kind === 'metal' && s.secret.scope.id === metalId && !s.secret.revokedAt) {
        s.secret.revokedAt = at;
        secrets++;
      }
    }
    return { retiredAt: this.retired.get(metalId)!, certificates, secrets };
  }
  async retiredAt(metalId: string) {
    return this.retired.get(metalId);
  }
}

const notFound = (what: string) => Object.assign(new Error(`${what} not found`), { code: 'not_found' });
/** Metals M1 and M2 of OWNER, by ID or name; M1 is a member of SPACE1 (Phase 1). */
const metals = {
  async get(ownerId: OwnerId, ref: string) {
    const byRef: Record<string, TipsId> = { [M1]: M1, 'pi-1': M1, [M2]: M2, 'pi-2': M2 };
    if (ownerId !== OWNER || !byRef[ref]) throw notFound('metal');
    return { id: byRef[ref], name: ref };
  },
} as unknown as MetalService;
const spaces = {
  async get(ownerId: OwnerId, ref: string) {
    if (ownerId !== OWNER) throw notFound('space');
    if (ref === SPACE1 || ref === 'fleet') return { id: SPACE1, name: 'fleet', phase: 1 };
    if (ref === SPACE2 || ref === 'apps') return { id: SPACE2, name: 'apps', phase: 2 };
    throw notFound('space');
  },
  async membershipsOfMetal(id: TipsId) {
    return id === M1 ? [{ spaceId: 'spc_other', isDefault: false, phase: 1 }, { spaceId: SPACE1, isDefault: true, phase: 1 }] : [];
  },
} as unknown as SpaceService;

let ca: MasterCa;
beforeAll(async () => {
  ca = await createEphemeralCa(new Date(T0 - 86_400_000), systemRandom);
});

let t: number;
let store: MemoryStore;
let events: DomainEvents;
let svc: EnrollmentService;
const clock = { now: () => new Date(t) };
beforeEach(() => {
  t = T0;
  store = new MemoryStore();
  events = new DomainEvents();
  svc = new EnrollmentService(store, metals, spaces, events, clock, systemRandom, async () => ca, 48);
});

async function csrFor(opts: { uris?: string[]; cn?: string; curve?: 'P-256' | 'P-384'; keys?: CryptoKeyPair } = {}) {
  const alg = { name: 'ECDSA', namedCurve: opts.curve ?? 'P-256' } as const;
  const keys = opts.keys ?? ((await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${opts.cn ?? 'metal'}`,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: opts.curve === 'P-384' ? 'SHA-384' : 'SHA-256' },
    extensions: opts.uris?.length ? [new x509.SubjectAlternativeNameExtension(opts.uris.map((value) => ({ type: 'url' as const, value })))] : [],
  });
  return { der: new Uint8Array(csr.rawData), keys };
}
const csrOf = (id: string) => csrFor({ uris: [`urn:tips:metal:${id}`] });
/** The refusal's code — and every refusal must say what is wrong (a message the operator can act on). */
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string; message?: string }) => (e.message ? (e.code ?? String(e)) : `${e.code} without a message`),
  );
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: EnrollmentError | InvalidValueError) => {
      if (!e.message) throw new Error(`${(e as EnrollmentError).code} without a message`);
      return e;
    },
  );

async function secret(input: Parameters<EnrollmentService['createSecret']>[1] = { metal: 'pi-1' }) {
  const r = await svc.createSecret(OWNER, input);
  return { id: r.secret.id, secret: r.value!, record: r.secret };
}

describe('S6 enrollment secrets: created per metal or per Phase 1 Space, bounded, stored hashed', () => {
  it('makes a one-use, one-day secret by default; the value is est_ + 43 base64url characters and only its SHA-256 is stored', async () => {
    const { secret: value, record } = await svc.createSecret(OWNER, { metal: 'pi-1' }).then((r) => ({ secret: r.value!, record: r.secret }));
    expect(value).toMatch(/^est_[A-Za-z0-9_-]{43}$/);
    expect(record).toEqual({
      id: expect.stringMatching(/^ens_[0-9a-hjkmnp-tv-z]{26}$/),
      ownerId: OWNER,
      scope: { kind: 'metal', id: M1 },
      method: 'secret',
      maxUses: 1,
      uses: 0,
      expiresAt: new Date(T0 + 1440 * 60_000).toISOString(),
      createdAt: new Date(T0).toISOString(),
      revokedAt: null,
    });
    expect((await store.findSecret(record.id))!.secretHash).toBe(createHash('sha256').update(value).digest('hex'));
    expect(await svc.listSecrets(OWNER)).toHaveLength(1);
    expect(await svc.listSecrets(OTHER_OWNER)).toHaveLength(0);
  });

  it('takes maxUses 1..MAX and expiresInMinutes 1..MAX, and refuses anything else by field; nothing is stored', async () => {
    const ok = await svc.createSecret(OWNER, { space: 'fleet', maxUses: MAX_SECRET_USES, expiresInMinutes: MAX_SECRET_TTL_MINUTES });
    expect(ok.secret).toMatchObject({ scope: { kind: 'space', id: SPACE1 }, maxUses: MAX_SECRET_USES, expiresAt: new Date(T0 + MAX_SECRET_TTL_MINUTES * 60_000).toISOString() });
    expect((await svc.createSecret(OWNER, { metal: 'pi-1', maxUses: 1, expiresInMinutes: 1 })).secret.expiresAt).toBe(new Date(T0 + 60_000).toISOString());
    store.secrets.clear();
    const bad: [Parameters<EnrollmentService['createSecret']>[1], string][] = [
      [{}, 'metal'],
      [{ metal: 'pi-1', space: 'fleet' }, 'space'],
      [{ metal: 'pi-1', maxUses: 0 }, 'maxUses'],
      [{ metal: 'pi-1', maxUses: MAX_SECRET_USES + 1 }, 'maxUses'],
      [{ metal: 'pi-1', maxUses: 1.5 }, 'maxUses'],
      [{ metal: 'pi-1', expiresInMinutes: 0 }, 'expiresInMinutes'],
      [{ metal: 'pi-1', expiresInMinutes: MAX_SECRET_TTL_MINUTES + 1 }, 'expiresInMinutes'],
      [{ metal: 'pi-1', expiresInMinutes: 2.5 }, 'expiresInMinutes'],
    ];
    for (const [input, field] of bad) {
      const e = await errorOf(svc.createSecret(OWNER, input));
      expect(e, JSON.stringify(input)).toBeInstanceOf(InvalidValueError);
      expect((e as InvalidValueError).field, JSON.stringify(input)).toBe(field);
    }
    const phase2 = await errorOf(svc.createSecret(OWNER, { space: 'apps' }));
    expect(phase2).toMatchObject({ code: 'scope_invalid', field: 'space' });
    expect(phase2!.message).toContain('Phase 2');
    expect(await code(svc.createSecret(OTHER_OWNER, { metal: 'pi-1' }))).toBe('not_found');
    expect(store.secrets.size).toBe(0);
  });

  it('image-key mode stores the SPKI hash of a P-256 key, no secret; refuses another curve, garbage, and the same key twice', async () => {
    const image = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = image.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const r = await svc.createSecret(OWNER, { metal: 'pi-1', imagePublicKey: pem });
    expect(r.value).toBeUndefined();
    expect(r.secret.method).toBe('image-key');
    const spki = image.publicKey.export({ type: 'spki', format: 'der' });
    expect((await store.findSecret(r.secret.id))!.secretHash).toBe(`spki:${createHash('sha256').update(spki).digest('hex')}`);
    const again = await errorOf(svc.createSecret(OWNER, { metal: 'pi-2', imagePublicKey: pem }));
    expect(again).toMatchObject({ field: 'imagePublicKey', message: expect.stringContaining('already registered') });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(await errorOf(svc.createSecret(OWNER, { metal: 'pi-1', imagePublicKey: p384 }))).toMatchObject({ field: 'imagePublicKey', message: expect.stringContaining('P-256') });
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(await errorOf(svc.createSecret(OWNER, { metal: 'pi-1', imagePublicKey: ed }))).toMatchObject({ field: 'imagePublicKey' });
    expect(await errorOf(svc.createSecret(OWNER, { metal: 'pi-1', imagePublicKey: 'nope' }))).toMatchObject({ field: 'imagePublicKey' });
    // A storage failure that is not a duplicate is not dressed up as one.
    const failing = new EnrollmentService(
      { ...store, insertSecret: async () => Promise.reject(new Error('disk full')) } as unknown as EnrollmentStore,
      metals,
      spaces,
      events,
      clock,
      systemRandom,
      async () => ca,
    );
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect((await errorOf(failing.createSecret(OWNER, { metal: 'pi-1', imagePublicKey: other })))!.message).toBe('disk full');
  });

  it('revokes a secret once; an unknown or already revoked one is secret_not_found', async () => {
    const s = await secret();
    await svc.revokeSecret(OWNER, s.id);
    expect((await store.findSecret(s.id))!.secret.revokedAt).toBe(new Date(T0).toISOString());
    expect(await errorOf(svc.revokeSecret(OWNER, s.id))).toMatchObject({ code: 'secret_not_found', field: 'id' });
    expect(await code(svc.revokeSecret(OTHER_OWNER, (await secret()).id))).toBe('secret_not_found');
    const long = (await errorOf(svc.revokeSecret(OWNER, 'e'.repeat(100))))!.message;
    expect(long).toContain('e'.repeat(40));
    expect(long).not.toContain('e'.repeat(41));
  });
});

describe('S6 simpleenroll: the secret, then a CSR naming exactly the metal it may enroll', () => {
  it('issues a certificate for the CSR key naming the metal, living the configured hours from a minute before now', async () => {
    const s = await secret();
    const csr = await csrOf(M1);
    const { der, record } = await svc.enroll(s, csr.der);
    const cert = parseCertificate(der);
    expect(cert.notBefore.getTime()).toBe(T0 - 60_000);
    expect(cert.notAfter.getTime()).toBe(T0 + 48 * 3_600_000);
    expect(Buffer.from(cert.publicKey.rawData)).toEqual(Buffer.from(await crypto.subtle.exportKey('spki', csr.keys.publicKey)));
    expect(await cert.verify({ publicKey: ca.intermediate.cert.publicKey, signatureOnly: true })).toBe(true);
    // A client certificate (TLS Web Client Authentication), never one a server could use.
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    expect(record).toEqual({
      serial: cert.serialNumber.toLowerCase(),
      ownerId: OWNER,
      subject: { kind: 'metal', id: M1 },
      fingerprint: await certificateFingerprint(cert),
      publicKey: Buffer.from(cert.publicKey.rawData).toString('base64'),
      notBefore: new Date(T0 - 60_000).toISOString(),
      notAfter: new Date(T0 + 48 * 3_600_000).toISOString(),
      status: 'active',
      issuedVia: 'enroll',
      secretId: s.id,
      revokedAt: null,
      revokeReason: null,
      createdAt: new Date(T0).toISOString(),
    });
    expect(store.certs.get(record.serial)).toEqual(record);
    expect((await store.findSecret(s.id))!.secret.uses).toBe(1);
  });

  it('the default lifetime is a week', async () => {
    const plain = new EnrollmentService(store, metals, spaces, events, clock, systemRandom, async () => ca);
    const s = await plain.createSecret(OWNER, { metal: 'pi-1' });
    const { der } = await plain.enroll({ id: s.secret.id, secret: s.value! }, (await csrOf(M1)).der);
    expect(parseCertificate(der).notAfter.getTime()).toBe(T0 + 7 * 24 * 3_600_000);
  });

  it('refuses a wrong, malformed, revoked, expired or spent secret, and an image key used as a password', async () => {
    const s = await secret({ metal: 'pi-1', maxUses: 2, expiresInMinutes: 10 });
    const csr = (await csrOf(M1)).der;
    expect(await code(svc.enroll({ id: s.id, secret: `est_${'A'.repeat(43)}` }, csr))).toBe('enrollment_secret_invalid');
    expect(await code(svc.enroll({ id: 'ens_x', secret: s.secret }, csr))).toBe('enrollment_secret_invalid');
    expect(await code(svc.enroll({ id: `${s.id}x`, secret: s.secret }, csr))).toBe('enrollment_secret_invalid');
    expect(await code(svc.enroll({ id: s.id, secret: `${s.secret}x` }, csr))).toBe('enrollment_secret_invalid');
    expect(await code(svc.enroll({ id: s.id, secret: s.secret.slice(1) }, csr))).toBe('enrollment_secret_invalid');
    // A non-secret-shaped value hashed as is must not match a stored hash of that very value.
    const odd = { id: s.id, secret: 'x' };
    store.secrets.get(s.id)!.secretHash = createHash('sha256').update('x').digest('hex');
    expect(await code(svc.enroll(odd, csr))).toBe('enrollment_secret_invalid');
    store.secrets.get(s.id)!.secretHash = createHash('sha256').update(s.secret).digest('hex');
    t = T0 + 10 * 60_000 - 1;
    expect(await code(svc.enroll(s, csr))).toBe('ok');
    t = T0 + 10 * 60_000;
    expect(await code(svc.enroll(s, csr))).toBe('enrollment_secret_expired');
    t = T0;
    expect(await code(svc.enroll(s, csr))).toBe('ok');
    expect(await code(svc.enroll(s, csr))).toBe('enrollment_secret_exhausted');
    const r = await secret();
    await svc.revokeSecret(OWNER, r.id);
    expect(await code(svc.enroll(r, csr))).toBe('enrollment_secret_invalid');
    const image = await csrOf(M2);
    const pem = createPublicKey({ key: Buffer.from(await crypto.subtle.exportKey('spki', image.keys.publicKey)), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString();
    const ik = await svc.createSecret(OWNER, { metal: 'pi-2', imagePublicKey: pem });
    const spkiHash = (await store.findSecret(ik.secret.id))!.secretHash;
    expect(await code(svc.enroll({ id: ik.secret.id, secret: spkiHash }, image.der))).toBe('enrollment_secret_invalid');
    // Each refusal is a security event the throttle counts.
    expect(((await errorOf(svc.enroll({ id: s.id, secret: 'x' }, csr))) as EnrollmentError).security).toBe(true);
  });

  it('an unusable secret is refused before anything is signed or written (both secret and image-key mode)', async () => {
    let attempts = 0;
    const enrollWithSecret = store.enrollWithSecret.bind(store);
    store.enrollWithSecret = async (...args) => {
      attempts++;
      return enrollWithSecret(...args);
    };
    const expired = await secret({ metal: 'pi-1', expiresInMinutes: 1 });
    const spent = await secret({ metal: 'pi-1', maxUses: 1 });
    const revoked = await secret({ metal: 'pi-1' });
    await svc.revokeSecret(OWNER, revoked.id);
    store.secrets.get(spent.id)!.secret.uses = 1;
    const image = await csrOf(M2);
    const pem = createPublicKey({ key: Buffer.from(await crypto.subtle.exportKey('spki', image.keys.publicKey)), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString();
    const ik = await svc.createSecret(OWNER, { metal: 'pi-2', imagePublicKey: pem });
    store.secrets.get(ik.secret.id)!.secret.uses = 1;
    t = T0 + 60_000;
    const csr = (await csrOf(M1)).der;
    expect(await code(svc.enroll(expired, csr))).toBe('enrollment_secret_expired');
    expect(await code(svc.enroll(spent, csr))).toBe('enrollment_secret_exhausted');
    expect(await code(svc.enroll(revoked, csr))).toBe('enrollment_secret_invalid');
    expect(await code(svc.enroll(undefined, image.der))).toBe('enrollment_secret_exhausted');
    expect(attempts).toBe(0);
  });

  it('refuses CSRs that are not P-256, do not verify, name no metal, two metals, a gateway, or another metal; nothing is spent', async () => {
    const s = await secret({ metal: 'pi-1', maxUses: 5 });
    const bad = async (der: Uint8Array) => {
      const e = (await errorOf(svc.enroll(s, der))) as EnrollmentError;
      return `${e.code}/${e.field}`;
    };
    expect(await bad(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]))).toBe('csr_malformed/csr');
    expect(await bad((await csrFor({ uris: [`urn:tips:metal:${M1}`], curve: 'P-384' })).der)).toBe('csr_key_unsupported/csr');
    // Key B's SubjectPublicKeyInfo swapped into a request signed by key A: well-formed, but A's signature does not verify under B.
    const a = await csrOf(M1);
    const b = await csrOf(M1);
    const spkiA = Buffer.from(await crypto.subtle.exportKey('spki', a.keys.publicKey));
    const spkiB = Buffer.from(await crypto.subtle.exportKey('spki', b.keys.publicKey));
    const swapped = Buffer.from(a.der);
    spkiB.copy(swapped, swapped.indexOf(spkiA));
    expect(await bad(new Uint8Array(swapped))).toBe('csr_signature_invalid/csr');
    expect(await bad((await csrFor({ cn: 'hello' })).der)).toBe('csr_identity_missing/csr');
    expect(await bad((await csrFor({ uris: [`urn:tips:metal:${M1}`, `urn:tips:metal:${M2}`] })).der)).toBe('csr_identity_mismatch/csr');
    expect(await bad((await csrFor({ uris: [`urn:tips:metal:${M1}`, 'urn:tips:gateway:gwy_0000000000000000000000000a'] })).der)).toBe('csr_identity_mismatch/csr');
    expect(await bad((await csrFor({ uris: ['urn:tips:gateway:gwy_0000000000000000000000000a'] })).der)).toBe('csr_identity_mismatch/csr');
    expect(await bad((await csrOf(M2)).der)).toBe('csr_identity_mismatch/csr');
    // The CN alone names the metal too.
    expect(await code(svc.enroll(s, (await csrFor({ cn: M1 })).der))).toBe('ok');
    expect((await store.findSecret(s.id))!.secret.uses).toBe(1);
    expect(store.certs.size).toBe(1);
  });

  it('a Space secret enrolls members of that Space only; an unknown metal is a mismatch', async () => {
    const s = await secret({ space: 'fleet', maxUses: 3 });
    expect(await code(svc.enroll(s, (await csrOf(M2)).der))).toBe('csr_identity_mismatch');
    expect(await code(svc.enroll(s, (await csrOf('mtl_0000000000000000000000000z')).der))).toBe('csr_identity_mismatch');
    expect(await code(svc.enroll(s, (await csrOf(M1)).der))).toBe('ok');
  });

  it('losing the race for the last use drops the signed certificate: exhausted, or the reason the secret became unusable', async () => {
    const s = await secret({ metal: 'pi-1', maxUses: 3 });
    store.enrollRefuses = true;
    expect(await code(svc.enroll(s, (await csrOf(M1)).der))).toBe('enrollment_secret_exhausted');
    // Revoked meanwhile: the caller learns that, not "exhausted".
    const findSecret = store.findSecret.bind(store);
    let calls = 0;
    store.findSecret = async (id) => {
      const found = await findSecret(id);
      if (++calls === 2 && found) found.secret.revokedAt = new Date(T0).toISOString();
      return found;
    };
    expect(await code(svc.enroll(s, (await csrOf(M1)).der))).toBe('enrollment_secret_invalid');
    store.findSecret = async (id) => (id === s.id && calls++ % 2 === 1 ? undefined : findSecret(id));
    calls = 0;
    expect(await code(svc.enroll(s, (await csrOf(M1)).der))).toBe('enrollment_secret_exhausted');
    expect(store.certs.size).toBe(0);
  });

  it('T14 image-key mode: the CSR signed by the registered key enrolls without a secret; any other key, or garbage, is unauthenticated', async () => {
    const image = await csrOf(M2);
    const pem = createPublicKey({ key: Buffer.from(await crypto.subtle.exportKey('spki', image.keys.publicKey)), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString();
    const ik = await svc.createSecret(OWNER, { metal: 'pi-2', imagePublicKey: pem, maxUses: 1 });
    expect(await code(svc.enroll(undefined, (await csrOf(M2)).der))).toBe('enrollment_unauthenticated');
    expect(await code(svc.enroll(undefined, new Uint8Array([1, 2, 3])))).toBe('enrollment_unauthenticated');
    // The image key may only enroll its metal.
    expect(await code(svc.enroll(undefined, (await csrFor({ uris: [`urn:tips:metal:${M1}`], keys: image.keys })).der))).toBe('csr_identity_mismatch');
    const { record } = await svc.enroll(undefined, image.der);
    expect(record).toMatchObject({ subject: { kind: 'metal', id: M2 }, secretId: ik.secret.id, issuedVia: 'enroll' });
    expect(await code(svc.enroll(undefined, image.der))).toBe('enrollment_secret_exhausted');
    await svc.revokeSecret(OWNER, ik.secret.id);
    expect(await code(svc.enroll(undefined, image.der))).toBe('enrollment_secret_invalid');
    // A failure that is not about the CSR is not hidden as "unauthenticated".
    const broken = new EnrollmentService(
      { ...store, findSecretByHash: async () => Promise.reject(new Error('db down')) } as unknown as EnrollmentStore,
      metals,
      spaces,
      events,
      clock,
      systemRandom,
      async () => ca,
    );
    expect((await errorOf(broken.enroll(undefined, image.der)))!.message).toBe('db down');
  });
});

describe('S6 mTLS identity, re-enrollment and revocation', () => {
  async function enrolled(id: TipsId = M1) {
    const s = await secret({ metal: id });
    const csr = await csrOf(id);
    const r = await svc.enroll(s, csr.der);
    return { ...r, keys: csr.keys };
  }
  const peer = (der: Uint8Array, authorized = true) => ({ authorized, der });

  it('resolves an active certificate we issued to its metal, and refuses everything else by reason', async () => {
    const { der, record } = await enrolled();
    const p = await svc.authenticateMetal(peer(der));
    expect(p).toEqual({ metalId: M1, ownerId: OWNER, serial: record.serial, fingerprint: record.fingerprint, notAfter: record.notAfter, spki: new Uint8Array(parseCertificate(der).publicKey.rawData) });
    expect(await code(svc.authenticateMetal(undefined))).toBe('client_certificate_required');
    expect(await code(svc.authenticateMetal({ authorized: true }))).toBe('client_certificate_required');
    expect(await code(svc.authenticateMetal(peer(der, false)))).toBe('client_certificate_invalid');
    expect(await code(svc.authenticateMetal(peer(new Uint8Array([1, 2, 3]))))).toBe('client_certificate_invalid');
    // Issued by our CA but naming a gateway, or two metals: not a metal certificate.
    const keys = (await csrOf(M1)).keys;
    const mint = (identity: { kind: 'metal' | 'gateway'; id: string }, extra: Partial<{ notBefore: Date; notAfter: Date }> = {}) =>
      issueCertificate(ca.intermediate, { identity, publicKey: keys.publicKey, serial: serialFrom(systemRandom.bytes(16)), notBefore: new Date(T0 - 60_000), notAfter: new Date(T0 + 3_600_000), usage: 'client', ...extra });
    const gw = await mint({ kind: 'gateway', id: 'gwy_0000000000000000000000000a' });
    expect(await errorOf(svc.authenticateMetal(peer(new Uint8Array(gw.rawData))))).toMatchObject({ code: 'client_certificate_invalid', message: expect.stringContaining('does not name a metal') });
    // Ours by the CA, but never recorded: unknown.
    const stray = await mint({ kind: 'metal', id: M1 });
    expect(await code(svc.authenticateMetal(peer(new Uint8Array(stray.rawData))))).toBe('certificate_unknown');
    // A record under that serial with another fingerprint, or for another subject: unknown.
    const strayRecord = { ...record, serial: stray.serialNumber.toLowerCase() };
    store.certs.set(strayRecord.serial, strayRecord);
    expect(await code(svc.authenticateMetal(peer(new Uint8Array(stray.rawData))))).toBe('certificate_unknown');
    strayRecord.fingerprint = await certificateFingerprint(stray);
    expect(await code(svc.authenticateMetal(peer(new Uint8Array(stray.rawData))))).toBe('ok');
    strayRecord.subject = { kind: 'metal', id: M2 };
    expect(await code(svc.authenticateMetal(peer(new Uint8Array(stray.rawData))))).toBe('certificate_unknown');
    strayRecord.subject = { kind: 'gateway', id: M1 };
    expect(await code(svc.authenticateMetal(peer(new Uint8Array(stray.rawData))))).toBe('certificate_unknown');
  });

  it('validity is checked against the record at the second: before notBefore and after notAfter are expired', async () => {
    const { der, record } = await enrolled();
    t = Date.parse(record.notAfter);
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('ok');
    t = Date.parse(record.notAfter) + 1;
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('certificate_expired');
    t = Date.parse(record.notBefore);
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('ok');
    t = Date.parse(record.notBefore) - 1;
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('certificate_expired');
  });

  it('a blocked metal is refused while blocked; revocations by metal, by serial, by ID and by deletion bite at once', async () => {
    const { der, record } = await enrolled();
    let blocked = new Set<string>([M1]);
    svc.useBlockCheck(async (id) => blocked.has(id));
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('metal_blocked');
    blocked = new Set();
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('ok');
    expect(await svc.revokeMetal(OWNER, 'pi-1')).toBe(1);
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('certificate_revoked');
    expect(store.certs.get(record.serial)).toMatchObject({ status: 'revoked', revokeReason: 'operator', revokedAt: new Date(T0).toISOString() });
    expect(await code(svc.revokeMetal(OTHER_OWNER, 'pi-1'))).toBe('not_found');

    const second = await enrolled();
    await expect(svc.revokeCertificate(OWNER, second.record.serial.toUpperCase())).resolves.toBeUndefined();
    expect(store.certs.get(second.record.serial)!.status).toBe('revoked');
    expect(store.certs.get(second.record.serial)).toMatchObject({ revokeReason: 'operator', revokedAt: new Date(T0).toISOString() });
    expect(await errorOf(svc.revokeCertificate(OWNER, second.record.serial))).toMatchObject({ code: 'certificate_not_found', field: 'serial' });
    const long = (await errorOf(svc.revokeCertificate(OWNER, 'f'.repeat(100))))!.message;
    expect(long).toContain('f'.repeat(64));
    expect(long).not.toContain('f'.repeat(65));

    const third = await enrolled();
    expect(await svc.revokeMetalById(M1, 'blocked')).toBe(1);
    expect(store.certs.get(third.record.serial)!.revokeReason).toBe('blocked');

    const fourth = await enrolled();
    await events.emit('metal.deleted', { ownerId: OWNER, metalId: M1, macs: [] });
    expect(store.certs.get(fourth.record.serial)).toMatchObject({ status: 'revoked', revokeReason: 'deleted' });
  });

  it('S14 retirement: certificates and metal secrets revoked, the next mTLS request answers metal_retired, no secret enrolls it again', async () => {
    const { der, record } = await enrolled();
    const unused = await secret({ metal: M1 });
    const fleet = await secret({ space: 'fleet', maxUses: 5 });
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('ok');
    t = T0 + 5000;
    // Both metal secrets are revoked: the spent one and the unused one.
    expect(await svc.retireMetal(OWNER, 'pi-1')).toEqual({ metal: M1, retiredAt: new Date(T0 + 5000).toISOString(), certificatesRevoked: 1, secretsRevoked: 2 });
    expect(store.certs.get(record.serial)).toMatchObject({ status: 'revoked', revokeReason: 'retired' });
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('metal_retired');
    // Neither its own (revoked) secret nor a Space's secret enrolls it again; the Space secret is not spent.
    expect(await code(svc.enroll(unused, (await csrOf(M1)).der))).toBe('enrollment_secret_invalid');
    expect(await code(svc.enroll(fleet, (await csrOf(M1)).der))).toBe('metal_retired');
    expect(store.secrets.get(fleet.id)!.secret.uses).toBe(0);
    expect([...store.certs.values()].filter((c) => c.subject.id === M1 && c.status === 'active')).toEqual([]);
    // Idempotent: the first retirement time stays.
    t = T0 + 9000;
    expect(await svc.retireMetal(OWNER, M1)).toEqual({ metal: M1, retiredAt: new Date(T0 + 5000).toISOString(), certificatesRevoked: 0, secretsRevoked: 0 });
    expect(await svc.retiredAt(M1)).toBe(new Date(T0 + 5000).toISOString());
    expect(await svc.retiredAt(M2)).toBeNull();
    // Another owner cannot retire it (no oracle either).
    expect(await code(svc.retireMetal(OTHER_OWNER, 'pi-2'))).toBe('not_found');
    expect(await svc.retiredAt(M2)).toBeNull();
  });

  it('re-enrolls the same metal with a fresh key; the old certificate is superseded; any other identity is refused', async () => {
    const { der } = await enrolled();
    const principal = await svc.authenticateMetal(peer(der));
    const mismatch = async (uris: string[]) => code(svc.reenroll(principal, (await csrFor({ uris })).der));
    expect(await mismatch([`urn:tips:metal:${M2}`])).toBe('csr_identity_mismatch');
    expect(await mismatch([`urn:tips:metal:${M1}`, `urn:tips:metal:${M2}`])).toBe('csr_identity_mismatch');
    expect(await mismatch(['urn:tips:gateway:gwy_0000000000000000000000000a'])).toBe('csr_identity_mismatch');
    expect(await code(svc.reenroll(principal, (await csrFor({ cn: 'x' })).der))).toBe('csr_identity_mismatch');
    expect(await code(svc.reenroll(principal, new Uint8Array([1])))).toBe('csr_malformed');
    t = T0 + 1000;
    const next = await svc.reenroll(principal, (await csrOf(M1)).der);
    expect(next.record).toMatchObject({ issuedVia: 'reenroll', secretId: null, ownerId: OWNER, subject: { kind: 'metal', id: M1 }, createdAt: new Date(T0 + 1000).toISOString() });
    expect(parseCertificate(next.der).notAfter.getTime()).toBe(T0 + 1000 + 48 * 3_600_000);
    // S14: the old certificate works until the new one is used (the answer may never have reached the metal)…
    expect(store.certs.get(principal.serial)!.status).toBe('active');
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('ok');
    // …and is superseded the moment the new one is.
    expect((await svc.authenticateMetal(peer(next.der))).serial).toBe(next.record.serial);
    expect(store.certs.get(principal.serial)).toMatchObject({ status: 'revoked', revokeReason: 'superseded' });
    expect(await code(svc.authenticateMetal(peer(der)))).toBe('certificate_revoked');
    // The old certificate cannot renew a second time.
    expect(await code(svc.reenroll(principal, (await csrOf(M1)).der))).toBe('certificate_revoked');
  });

  it('lists certificates per owner and metal; the token binding key is the newest active certificate key', async () => {
    expect(await errorOf(svc.activeKeyOfMetal(OWNER, 'pi-1'))).toMatchObject({ code: 'certificate_not_found', field: 'metal' });
    const a = await enrolled(M1);
    await enrolled(M2);
    expect((await svc.listCertificates(OWNER)).length).toBe(2);
    expect((await svc.listCertificates(OWNER, 'pi-2')).map((c) => c.subject.id)).toEqual([M2]);
    expect(await svc.listCertificates(OTHER_OWNER)).toEqual([]);
    expect(Buffer.from(await svc.activeKeyOfMetal(OWNER, 'pi-1'))).toEqual(Buffer.from(parseCertificate(a.der).publicKey.rawData));
    // Two active certificates (an older one kept by the store): the later one binds.
    const older = { ...a.record, serial: '01', publicKey: Buffer.from('older').toString('base64') };
    store.certs = new Map([[older.serial, older], ...store.certs]);
    expect(Buffer.from(await svc.activeKeyOfMetal(OWNER, 'pi-1'))).toEqual(Buffer.from(parseCertificate(a.der).publicKey.rawData));
    store.certs.get(a.record.serial)!.status = 'revoked';
    expect(Buffer.from(await svc.activeKeyOfMetal(OWNER, 'pi-1')).toString()).toBe('older');
  });

  it('serves the CA as intermediate then root, and as PEM; the CA source is asked once', async () => {
    let asked = 0;
    const s = new EnrollmentService(store, metals, spaces, events, clock, systemRandom, async () => {
      asked++;
      return ca;
    });
    const { parseCertsOnlyPkcs7 } = await import('@tips/trust');
    expect(parseCertsOnlyPkcs7(await s.caCertificates()).map((c) => c.subject)).toEqual([ca.intermediate.cert.subject, ca.root.subject]);
    expect(await s.caPem()).toEqual({ rootPem: expect.stringContaining('BEGIN CERTIFICATE'), intermediatePem: expect.stringContaining('BEGIN CERTIFICATE') });
    expect(asked).toBe(1);
  });
});

describe('D1 the EST refusal throttle, per (address, identity) under a per-address ceiling', () => {
  const refused = () => Promise.reject(new EnrollmentError('enrollment_secret_invalid', 'no'));
  const works = () => Promise.resolve('issued');

  it('one identity is locked after its limit; others at the address are not; throttled attempts count toward neither', async () => {
    for (let i = 0; i < MAX_FAILED_ENROLLMENTS * 2; i++) await code(svc.throttled('198.51.100.7', 'secret ens_bad', refused));
    expect(await code(svc.throttled('198.51.100.7', 'secret ens_bad', works))).toBe('too_many_attempts');
    expect(await code(svc.throttled('198.51.100.7', 'secret ens_good', works))).toBe('ok');
    expect(await code(svc.throttled('203.0.113.9', 'secret ens_bad', works))).toBe('ok');
  });

  it('rotating identities meets the address ceiling exactly; the window frees both', async () => {
    const perId = MAX_FAILED_ENROLLMENTS_PER_IDENTITY;
    const full = Math.floor(MAX_FAILED_ENROLLMENTS / perId);
    for (let n = 0; n < full; n++) for (let i = 0; i < perId - 1; i++) await code(svc.throttled('198.51.100.7', `secret ens_${n}`, refused));
    // One short of the ceiling (each identity one short of its own limit too): still open.
    for (let n = 0; n < full - 1; n++) await code(svc.throttled('198.51.100.7', `secret ens_${n}`, refused));
    const counted = full * (perId - 1) + (full - 1);
    for (let i = counted; i < MAX_FAILED_ENROLLMENTS - 1; i++) await code(svc.throttled('198.51.100.7', `secret ens_extra${i}`, refused));
    expect(await code(svc.throttled('198.51.100.7', 'secret ens_fresh', works))).toBe('ok');
    await code(svc.throttled('198.51.100.7', 'secret ens_last', refused));
    expect(await code(svc.throttled('198.51.100.7', 'secret ens_fresh', works))).toBe('too_many_attempts');
    t += FAILED_ENROLLMENT_WINDOW_MS - 1;
    expect(await code(svc.throttled('198.51.100.7', 'secret ens_fresh', works))).toBe('too_many_attempts');
    t += 1;
    expect(await code(svc.throttled('198.51.100.7', 'secret ens_fresh', works))).toBe('ok');
  });

  it('counts exactly per identity, restarts the count in a new window, and ignores refusals that are not security events', async () => {
    for (let i = 0; i < MAX_FAILED_ENROLLMENTS_PER_IDENTITY - 1; i++) await code(svc.throttled('192.0.2.1', 'secret ens_a', refused));
    expect(await code(svc.throttled('192.0.2.1', 'secret ens_a', works))).toBe('ok');
    await code(svc.throttled('192.0.2.1', 'secret ens_a', refused));
    expect(await code(svc.throttled('192.0.2.1', 'secret ens_a', works))).toBe('too_many_attempts');
    t += FAILED_ENROLLMENT_WINDOW_MS;
    await code(svc.throttled('192.0.2.1', 'secret ens_a', refused));
    expect(await code(svc.throttled('192.0.2.1', 'secret ens_a', works))).toBe('ok');
    // Started one refusal into a new window: the limit counts from there, not from the old window.
    for (let i = 0; i < MAX_FAILED_ENROLLMENTS_PER_IDENTITY - 2; i++) await code(svc.throttled('192.0.2.1', 'secret ens_a', refused));
    expect(await code(svc.throttled('192.0.2.1', 'secret ens_a', works))).toBe('ok');
    await code(svc.throttled('192.0.2.1', 'secret ens_a', refused));
    expect(await code(svc.throttled('192.0.2.1', 'secret ens_a', works))).toBe('too_many_attempts');
    for (let i = 0; i < MAX_FAILED_ENROLLMENTS_PER_IDENTITY * 2; i++) {
      await code(svc.throttled('192.0.2.2', 'none', () => Promise.reject(new EnrollmentError('csr_malformed', 'x'))));
      await code(svc.throttled('192.0.2.2', 'none', () => Promise.reject(new Error('boom'))));
    }
    expect(await code(svc.throttled('192.0.2.2', 'none', works))).toBe('ok');
    // The refusal itself reaches the caller unchanged.
    expect(await errorOf(svc.throttled('192.0.2.3', 'x', refused))).toMatchObject({ code: 'enrollment_secret_invalid' });
  });

  it('forgets the oldest entries beyond its bound instead of growing', async () => {
    for (let i = 0; i < MAX_FAILED_ENROLLMENTS_PER_IDENTITY; i++) await code(svc.throttled('192.0.2.50', 'secret ens_first', refused));
    expect(await code(svc.throttled('192.0.2.50', 'secret ens_first', works))).toBe('too_many_attempts');
    // 10,000 other addresses (two entries each) push the first out.
    for (let i = 0; i < 10_000; i++) await code(svc.throttled(`10.0.${i >> 8}.${i & 255}`, 'none', refused));
    expect(await code(svc.throttled('192.0.2.50', 'secret ens_first', works))).toBe('ok');
  });

  it('estIdentity: the Basic user, else the client certificate, else the metals the CSR claims, else none; bounded', async () => {
    const csr = await csrOf(M1);
    expect(estIdentity({ basicUser: 'ens_1', clientCertificate: new Uint8Array([1]), csr: csr.der })).toBe('secret ens_1');
    expect(estIdentity({ basicUser: '' })).toBe('secret ');
    expect(estIdentity({ basicUser: 'x'.repeat(5000) })).toBe(`secret ${'x'.repeat(64)}`);
    expect(estIdentity({ clientCertificate: new Uint8Array([1, 2]), csr: csr.der })).toBe(`certificate ${createHash('sha256').update(Buffer.from([1, 2])).digest('hex')}`);
    expect(estIdentity({ clientCertificate: new Uint8Array(), csr: csr.der })).toBe(`csr metal:${M1}`);
    expect(estIdentity({ csr: new Uint8Array([0x30, 0x00]) })).toBe('none');
    expect(estIdentity({ csr: (await csrFor({ cn: 'hello' })).der })).toBe('none');
    expect(estIdentity({})).toBe('none');
    expect(estIdentity({ csr: (await csrFor({ uris: [`urn:tips:metal:${M2}`, `urn:tips:metal:${M1}`] })).der })).toBe(`csr metal:${M1},metal:${M2}`);
    const many = Array.from({ length: 12 }, (_, i) => `urn:tips:metal:mtl_00000000000000000000000${String(i).padStart(3, '0').replace(/[^0-9]/g, '0')}`.replace(/[ilou]/g, '0'));
    expect(estIdentity({ csr: (await csrFor({ uris: many })).der }).length).toBeLessThanOrEqual('csr '.length + 200);
  });
});
