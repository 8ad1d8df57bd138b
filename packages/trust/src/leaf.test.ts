import { execFileSync } from 'node:child_process';
import { X509Certificate as NodeX509, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCsr, certificateFingerprint, checkCsr, claimedCsrIdentities, claimedIdentities, createIntermediateCa, createRootCa, derFingerprint, issueCertificate, LeafIssuer, PkiError, parseCertificate, serialFrom, verifyCsr, x509 } from './index.ts';

const now = new Date();
const later = new Date(now.getTime() + 86_400_000);
const METAL = 'mtl_0123456789abcdefghjkmnpqrs';
/** The TBSCertificate of a certificate's DER (two-byte long-form lengths: what these certificates use). */
const tbsOf = (der: Uint8Array): Buffer => {
  expect([der[0], der[1], der[4], der[5]]).toEqual([0x30, 0x82, 0x30, 0x82]);
  return Buffer.from(der.subarray(4, 8 + ((der[6]! << 8) | der[7]!)));
};

async function ca() {
  const root = await createRootCa({ commonName: 'T root', notBefore: now, notAfter: new Date(now.getTime() + 3 * 86_400_000), serial: serialFrom(randomBytes(16)) });
  return createIntermediateCa(root, { commonName: 'T intermediate', notBefore: now, notAfter: new Date(now.getTime() + 2 * 86_400_000), serial: serialFrom(randomBytes(16)) });
}

async function csr(opts: { uris?: string[]; cn?: string; curve?: 'P-256' | 'P-384' } = {}) {
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: opts.curve ?? 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const extensions = opts.uris?.length ? [new x509.SubjectAlternativeNameExtension(opts.uris.map((value) => ({ type: 'url' as const, value })))] : [];
  const req = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${opts.cn ?? 'metal'}, O=Acme`, keys, signingAlgorithm: { name: 'ECDSA', hash: opts.curve === 'P-384' ? 'SHA-384' : 'SHA-256' }, extensions });
  return new Uint8Array(req.rawData);
}

describe('S6/issue 11 EST on node:crypto: checkCsr and LeafIssuer agree with the @peculiar/x509 path', () => {
  it('a leaf has the very TBSCertificate issueCertificate builds, verifies under the CA, and names its metal', async () => {
    const inter = await ca();
    const issuer = await LeafIssuer.of(inter);
    const checked = checkCsr(await csr({ uris: [`urn:tips:metal:${METAL}`] }));
    for (const usage of ['client', 'server'] as const) {
      // notAfter past the CA's: clamped the same way by both.
      for (const notAfter of [later, new Date(now.getTime() + 10 * 86_400_000)]) {
        const opts = { identity: { kind: 'metal' as const, id: METAL }, serial: serialFrom(randomBytes(16)), notBefore: new Date(now.getTime() - 60_000), notAfter, usage };
        const reference = await issueCertificate(inter, { ...opts, publicKey: new x509.PublicKey(new Uint8Array(checked.spki)) });
        const refTbs = tbsOf(new Uint8Array(reference.rawData));
        expect(issuer.tbs({ ...opts, spki: checked.spki }).equals(refTbs)).toBe(true);
        const der = issuer.issue({ ...opts, spki: checked.spki });
        const cert = parseCertificate(der);
        expect(tbsOf(new Uint8Array(cert.rawData)).equals(refTbs)).toBe(true);
        expect(await cert.verify({ publicKey: inter.cert.publicKey, signatureOnly: true })).toBe(true);
        expect(new NodeX509(Buffer.from(der)).checkIssued(new NodeX509(Buffer.from(inter.cert.rawData)))).toBe(true);
        expect(derFingerprint(der)).toBe(await certificateFingerprint(cert));
      }
    }
  });

  it('buildCsr (the device side on node:crypto) makes a request that checkCsr, @peculiar/x509 and openssl accept, naming the metal', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const der = buildCsr(key.privateKey, METAL, [`urn:tips:metal:${METAL}`]);
    const checked = checkCsr(der);
    expect(checked.identities).toEqual([{ kind: 'metal', id: METAL }]);
    expect(checked.commonName).toBe(METAL);
    expect(Buffer.from(checked.spki).equals(key.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    expect(await new x509.Pkcs10CertificateRequest(new Uint8Array(der)).verify()).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'tips-leaf-'));
    try {
      writeFileSync(join(dir, 'r.der'), der);
      expect(execFileSync('openssl', ['req', '-inform', 'DER', '-in', join(dir, 'r.der'), '-verify', '-noout'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).not.toMatch(/fail/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Signed by another key: refused.
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const forged = Buffer.from(der);
    const spki = key.publicKey.export({ type: 'spki', format: 'der' });
    forged.set(other.publicKey.export({ type: 'spki', format: 'der' }), forged.indexOf(spki));
    expect(() => checkCsr(new Uint8Array(forged))).toThrow(PkiError);
  });

  it('openssl verifies the chain of a leaf built here', async () => {
    const root = await createRootCa({ commonName: 'T root', notBefore: now, notAfter: later, serial: serialFrom(randomBytes(16)) });
    const inter = await createIntermediateCa(root, { commonName: 'T intermediate', notBefore: now, notAfter: later, serial: serialFrom(randomBytes(16)) });
    const der = (await LeafIssuer.of(inter)).issue({ identity: { kind: 'gateway', id: 'gwy_0123456789abcdefghjkmnpqrs' }, spki: checkCsr(await csr()).spki, serial: serialFrom(randomBytes(16)), notBefore: now, notAfter: later, usage: 'client' });
    const dir = mkdtempSync(join(tmpdir(), 'tips-leaf-'));
    try {
      writeFileSync(join(dir, 'root.pem'), root.cert.toString('pem'));
      writeFileSync(join(dir, 'inter.pem'), inter.cert.toString('pem'));
      writeFileSync(join(dir, 'leaf.pem'), parseCertificate(der).toString('pem'));
      const out = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'inter.pem'), '-purpose', 'sslclient', join(dir, 'leaf.pem')], { encoding: 'utf8' });
      expect(out.trim()).toMatch(/: OK$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checkCsr reads the same names as verifyCsr, and refuses what verifyCsr refuses with the same code', async () => {
    for (const opts of [{ uris: [`urn:tips:metal:${METAL}`] }, { cn: METAL }, { uris: ['https://example.org/x', `urn:tips:gateway:gwy_0123456789abcdefghjkmnpqrs`], cn: 'x' }, {}]) {
      const der = await csr(opts);
      const a = checkCsr(der);
      const b = await verifyCsr(der);
      expect({ uris: a.uris, cn: a.commonName, ids: a.identities }).toEqual({ uris: b.uris, cn: b.commonName, ids: b.identities });
      expect(Buffer.from(a.spki).equals(Buffer.from(b.publicKey.rawData))).toBe(true);
      expect(claimedIdentities(der)).toEqual(claimedCsrIdentities(der));
    }
    const code = (der: Uint8Array) => {
      try {
        checkCsr(der);
        return 'accepted';
      } catch (e) {
        return e instanceof PkiError ? e.code : String(e);
      }
    };
    const good = await csr({ uris: [`urn:tips:metal:${METAL}`] });
    expect(code(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]))).toBe('csr_malformed');
    expect(code(new Uint8Array([...good, 0]))).toBe('csr_malformed');
    expect(code(good.subarray(0, good.length - 1))).toBe('csr_malformed');
    expect(code(await csr({ curve: 'P-384' }))).toBe('csr_key_unsupported');
    // An Ed25519 request made by openssl: not P-256.
    const dir = mkdtempSync(join(tmpdir(), 'tips-leaf-'));
    try {
      writeFileSync(join(dir, 'k.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const ed = execFileSync('openssl', ['req', '-new', '-key', join(dir, 'k.pem'), '-subj', '/CN=x', '-outform', 'DER']);
      expect(code(new Uint8Array(ed))).toBe('csr_key_unsupported');
      // openssl's own P-256 request (empty attributes) is read too.
      writeFileSync(join(dir, 'p.pem'), generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const ossl = new Uint8Array(execFileSync('openssl', ['req', '-new', '-key', join(dir, 'p.pem'), '-subj', `/O=Acme/CN=${METAL}`, '-outform', 'DER']));
      expect(checkCsr(ossl).identities).toEqual([{ kind: 'metal', id: METAL }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // A signature by another key over this request (proof of possession fails), and a changed name.
    const other = await csr({ uris: [`urn:tips:metal:${METAL}`] });
    const body = (d: Uint8Array) => (d[1]! & 0x80 ? d.subarray(2 + (d[1]! & 0x7f)) : d.subarray(2));
    const sigOf = (d: Uint8Array) => {
      for (let n = 70; n < 80; n++) if (d[d.length - n] === 0x03 && d[d.length - n + 1] === n - 2) return d.subarray(d.length - n);
      throw new Error('no signature BIT STRING');
    };
    const goodBody = body(good);
    const unsigned = goodBody.subarray(0, goodBody.length - sigOf(good).length);
    const inner = Buffer.concat([unsigned, sigOf(other)]);
    const swapped = Buffer.concat([Buffer.from([0x30, 0x82, inner.length >> 8, inner.length & 0xff]), inner]);
    expect(code(new Uint8Array(swapped))).toBe('csr_signature_invalid');
    const tampered = Buffer.from(good);
    const at = tampered.indexOf(Buffer.from(METAL)) + 5;
    tampered[at] = tampered[at]! ^ 1;
    expect(code(new Uint8Array(tampered))).toBe('csr_signature_invalid');
  });
});
