import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEnvelope, importKey, verifyEnvelopeSync } from '@tips/suit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  acceptsUpdateServer,
  applyTrustListUpdate,
  certificateFingerprint,
  certificateIdentities,
  createIntermediateCa,
  createRootCa,
  decodeReenrollment,
  decodeTrustList,
  ENROLLMENT_COMPONENT,
  encodeReenrollment,
  encodeTrustList,
  generateKeyPair,
  issueCertificate,
  operatorKeys,
  parseCertificates,
  parseCertsOnlyPkcs7,
  certsOnlyPkcs7,
  parseIdentityUri,
  reenrollmentFromUpdate,
  serialFrom,
  TRUST_LIST_COMPONENT,
  type TrustList,
  TrustListError,
  verifyChain,
  verifyCsr,
  x509,
} from './index.ts';

const now = new Date();
const later = new Date(now.getTime() + 86_400_000);
const serial = () => serialFrom(randomBytes(16));

async function pki() {
  const root = await createRootCa({ commonName: 'r', notBefore: now, notAfter: new Date(now.getTime() + 10 * 86_400_000), serial: serial() });
  const inter = await createIntermediateCa(root, { commonName: 'i', notBefore: now, notAfter: new Date(now.getTime() + 5 * 86_400_000), serial: serial() });
  return { root, inter };
}

describe('S6 PKI: CA, CSR, certs-only PKCS#7', () => {
  it('issues a metal certificate that chains to the root, names its TIPS ID and never outlives its CA', async () => {
    const { root, inter } = await pki();
    const keys = await generateKeyPair();
    const id = 'mtl_0123456789abcdefghjkmnpqrs';
    const leaf = await issueCertificate(inter, { identity: { kind: 'metal', id }, publicKey: keys.publicKey, serial: serial(), notBefore: now, notAfter: new Date(now.getTime() + 365 * 86_400_000), usage: 'client' });
    expect(certificateIdentities(leaf)).toEqual([{ kind: 'metal', id }]);
    expect(leaf.notAfter.getTime()).toBeLessThanOrEqual(inter.cert.notAfter.getTime());
    expect(await verifyChain(leaf, [inter.cert], root.cert, now)).toBe(true);
    const { root: other } = await pki();
    expect(await verifyChain(leaf, [inter.cert], other.cert, now)).toBe(false);
    expect(await verifyChain(leaf, [inter.cert], root.cert, new Date(now.getTime() + 6 * 86_400_000))).toBe(false);
    const p7 = certsOnlyPkcs7([leaf, inter.cert]);
    expect(parseCertsOnlyPkcs7(p7).map((c) => c.serialNumber)).toEqual([leaf.serialNumber, inter.cert.serialNumber]);
    expect(await certificateFingerprint(leaf)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('certs-only PKCS#7 is byte for byte what `openssl crl2pkcs7 -nocrl` writes: no eContent (RFC 5652 §5.2), certificates in order', async () => {
    const { root, inter } = await pki();
    const keys = await generateKeyPair();
    const leaf = await issueCertificate(inter, { identity: { kind: 'metal', id: 'mtl_0123456789abcdefghjkmnpqrs' }, publicKey: keys.publicKey, serial: serial(), notBefore: now, notAfter: later, usage: 'client' });
    const dir = mkdtempSync(join(tmpdir(), 'tips-p7-'));
    try {
      for (const certs of [[leaf], [inter.cert, root.cert], [leaf, inter.cert, root.cert]]) {
        writeFileSync(join(dir, 'certs.pem'), certs.map((c) => c.toString('pem')).join('\n'));
        const openssl = execFileSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', join(dir, 'certs.pem'), '-outform', 'DER']);
        const ours = certsOnlyPkcs7(certs);
        expect(Buffer.from(ours).toString('hex')).toBe(openssl.toString('hex'));
        // openssl reads ours back, the certificates in our order.
        writeFileSync(join(dir, 'ours.der'), ours);
        const printed = execFileSync('openssl', ['pkcs7', '-inform', 'DER', '-in', join(dir, 'ours.der'), '-print_certs']).toString();
        expect(parseCertificates(printed).map((c) => c.serialNumber)).toEqual(certs.map((c) => c.serialNumber));
      }
      // A bundle over 64 KiB takes the three-byte length form, as openssl's does.
      writeFileSync(join(dir, 'certs.pem'), Array.from({ length: 150 }, () => leaf.toString('pem')).join('\n'));
      const big = certsOnlyPkcs7(Array.from({ length: 150 }, () => leaf));
      expect(big.length).toBeGreaterThan(65_536);
      expect(Buffer.from(big).equals(execFileSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', join(dir, 'certs.pem'), '-outform', 'DER']))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses TIPS identity URIs strictly', () => {
    expect(parseIdentityUri('urn:tips:metal:mtl_0123456789abcdefghjkmnpqrs')).toEqual({ kind: 'metal', id: 'mtl_0123456789abcdefghjkmnpqrs' });
    expect(parseIdentityUri('urn:tips:metal:gwy_0123456789abcdefghjkmnpqrs')).toBeUndefined();
    expect(parseIdentityUri('urn:tips:metal:mtl_0123456789abcdefghjkmnpqrs ')).toBeUndefined();
    expect(parseIdentityUri('urn:tips:gateway:gwy_0123456789abcdefghjkmnpqrs')?.kind).toBe('gateway');
  });

  it('verifyCsr refuses a CSR whose signature does not match its key, and garbage', async () => {
    const keys = await generateKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=mtl_0123456789abcdefghjkmnpqrs', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
    const good = new Uint8Array(csr.rawData);
    expect((await verifyCsr(good)).identities).toEqual([{ kind: 'metal', id: 'mtl_0123456789abcdefghjkmnpqrs' }]);
    const bad = new Uint8Array(good);
    bad[bad.length - 3]! ^= 0x01;
    await expect(verifyCsr(bad)).rejects.toMatchObject({ code: expect.stringMatching(/^csr_(signature_invalid|malformed)$/) });
    await expect(verifyCsr(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]))).rejects.toMatchObject({ code: 'csr_malformed' });
  });

  it('fuzz: verifyCsr on arbitrary bytes rejects with a PkiError code, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        await expect(verifyCsr(bytes)).rejects.toHaveProperty('code');
      }),
      { numRuns: 300 },
    );
  });
});

function operator() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, cose: importKey(privateKey) };
}

function listOf(ops: ReturnType<typeof operator>[], version: number, servers: TrustList['updateServers'] = []): TrustList {
  return { version, operators: ops.map((o, i) => ({ name: `op${i}`, publicKey: o.publicKey })), updateServers: servers };
}

/** What an operator sends: a SUIT envelope for the trust-list component carrying the new list. */
function update(next: TrustList, signer: ReturnType<typeof operator>, opts: { seq?: number; component?: Uint8Array[]; payload?: Uint8Array } = {}) {
  const payload = encodeTrustList(next);
  const envelope = buildEnvelope({
    vendorDomain: 'tips.local',
    classInfo: 'pi',
    component: opts.component ?? TRUST_LIST_COMPONENT,
    sequenceNumber: opts.seq ?? next.version,
    payload: opts.payload ?? payload,
    delivery: { mode: 'integrated' },
    key: signer.cose,
  });
  return { envelope, payload };
}

describe('S5 device trust list: operators and update servers, changed only by a verified manifest', () => {
  it('round-trips deterministically and decodes strictly', () => {
    const t = listOf([operator(), operator()], 3, [{ name: 'master', uri: 'https://m:8443', caFingerprints: ['a'.repeat(64)], certFingerprints: [] }]);
    const bytes = encodeTrustList(t);
    const back = decodeTrustList(bytes);
    expect(back.version).toBe(3);
    expect(back.updateServers).toEqual(t.updateServers);
    expect(encodeTrustList(back)).toEqual(bytes);
    expect(() => decodeTrustList(encodeTrustList({ ...t, operators: [] }))).toThrow(TrustListError);
    expect(() => decodeTrustList(new Uint8Array([0xa1, 0x01, 0x00]))).toThrow(/missing key 2/);
  });

  it('fuzz: decodeTrustList accepts or throws TrustListError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decodeTrustList(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(TrustListError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('applies an update signed by a listed operator, for the trust-list component, with a higher version', () => {
    const a = operator();
    const b = operator();
    const current = listOf([a], 1);
    const next = listOf([a, b], 2);
    const { envelope, payload } = update(next, a);
    const verified = verifyEnvelopeSync(envelope, { trust: operatorKeys(current), currentSeq: 1 });
    const applied = applyTrustListUpdate(current, verified, payload);
    expect(applied.version).toBe(2);
    expect(operatorKeys(applied)).toHaveLength(2);
  });

  it('refuses an update by an unlisted operator, for another component, with another payload, or rolling back', () => {
    const a = operator();
    const evil = operator();
    const current = listOf([a], 5);
    // Not signed by a listed operator: verification itself refuses, so no VerifiedManifest exists.
    expect(() => verifyEnvelopeSync(update(listOf([evil], 6), evil).envelope, { trust: operatorKeys(current) })).toThrow();
    // A manifest verified under another list cannot be used against this one.
    const other = listOf([evil], 1);
    const forOther = verifyEnvelopeSync(update(listOf([evil], 6), evil).envelope, { trust: operatorKeys(other) });
    expect(() => applyTrustListUpdate(current, forOther, encodeTrustList(listOf([evil], 6)))).toThrow(expect.objectContaining({ code: 'trust_list_signer_unknown' }));
    const firmware = update(listOf([a], 6), a, { component: [new Uint8Array(Buffer.from('rootfs'))] });
    expect(() => applyTrustListUpdate(current, verifyEnvelopeSync(firmware.envelope, { trust: operatorKeys(current) }), firmware.payload)).toThrow(
      expect.objectContaining({ code: 'trust_list_wrong_component' }),
    );
    const swapped = update(listOf([a], 6), a);
    expect(() => applyTrustListUpdate(current, verifyEnvelopeSync(swapped.envelope, { trust: operatorKeys(current) }), encodeTrustList(listOf([a, evil], 6)))).toThrow(
      expect.objectContaining({ code: 'trust_list_digest_mismatch' }),
    );
    const old = update(listOf([a], 4), a, { seq: 9 });
    expect(() => applyTrustListUpdate(current, verifyEnvelopeSync(old.envelope, { trust: operatorKeys(current) }), old.payload)).toThrow(
      expect.objectContaining({ code: 'trust_list_rollback' }),
    );
  });

  it('accepts an update server by CA fingerprint in the chain or by a pinned leaf', async () => {
    const { root, inter } = await pki();
    const keys = await generateKeyPair();
    const leaf = await issueCertificate(inter, { identity: { kind: 'master', id: '' }, publicKey: keys.publicKey, serial: serial(), notBefore: now, notAfter: later, usage: 'server', dnsNames: ['m'] });
    const chain = [leaf, inter.cert].map((c) => new Uint8Array(c.rawData));
    const byCa = listOf([operator()], 1, [{ name: 'master', caFingerprints: [await certificateFingerprint(root.cert), await certificateFingerprint(inter.cert)], certFingerprints: [] }]);
    expect(acceptsUpdateServer(byCa, chain)?.name).toBe('master');
    const pinned = listOf([operator()], 1, [{ name: 'pin', caFingerprints: [], certFingerprints: [await certificateFingerprint(leaf)] }]);
    expect(acceptsUpdateServer(pinned, chain)?.name).toBe('pin');
    const stranger = listOf([operator()], 1, [{ name: 'x', caFingerprints: ['b'.repeat(64)], certFingerprints: [] }]);
    expect(acceptsUpdateServer(stranger, chain)).toBeUndefined();
  });
});

describe('S6 a new enrollment secret rides inside a signed update', () => {
  it('yields the EST address and secret only from a verified manifest for the enrollment component with a matching digest', () => {
    const a = operator();
    const trust = operatorKeys(listOf([a], 1));
    const instruction = { estUri: 'https://master:8443/.well-known/est', secretId: 'ens_0123456789abcdefghjkmnpqrs', secret: `est_${'A'.repeat(43)}` };
    const payload = encodeReenrollment(instruction);
    const mk = (component: Uint8Array[], body: Uint8Array) =>
      buildEnvelope({ vendorDomain: 'tips.local', classInfo: 'pi', component, sequenceNumber: 10, payload: body, delivery: { mode: 'integrated' }, key: a.cose });
    const verified = verifyEnvelopeSync(mk(ENROLLMENT_COMPONENT, payload), { trust });
    expect(reenrollmentFromUpdate(verified, payload)).toEqual(instruction);
    expect(() => reenrollmentFromUpdate(verified, encodeReenrollment({ ...instruction, secret: `est_${'B'.repeat(43)}` }))).toThrow(expect.objectContaining({ code: 'trust_list_digest_mismatch' }));
    const elsewhere = verifyEnvelopeSync(mk(TRUST_LIST_COMPONENT, payload), { trust });
    expect(() => reenrollmentFromUpdate(elsewhere, payload)).toThrow(expect.objectContaining({ code: 'trust_list_wrong_component' }));
    expect(() => decodeReenrollment(encodeReenrollment({ ...instruction, estUri: 'http://plain/est' }))).toThrow(TrustListError);
  });
});
