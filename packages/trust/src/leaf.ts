/**
 * The EST hot path on node:crypto (issue 11 speed): a CSR parsed by a strict DER reader and its
 * self-signature checked with `crypto.verify`, and metal/gateway leaf certificates built from a
 * template fixed per CA (issuer name, signature algorithm, the constant extensions, the authority
 * key identifier — encoded once, by @peculiar/x509) with only the serial, validity, subject, key and
 * subjectAltName encoded per certificate, signed with `crypto.sign`. The TBSCertificate is
 * byte-identical to what `issueCertificate` builds for the same inputs (leaf.test.ts proves it);
 * the checks are the same as `verifyCsr`'s — only the ASN.1 work of the pure-JS stack is gone.
 */
import { createHash, createPublicKey, KeyObject, sign, verify } from 'node:crypto';
import { type CaKeyPair, identitiesOf, identityUri, PkiError, type TipsIdentity, x509 } from './pki.ts';

// --- a strict DER reader (definite lengths, minimal length encoding, no trailing bytes) --------

interface Tlv {
  tag: number;
  /** Offsets into the buffer: the whole TLV [start, end), its value [body, end). */
  start: number;
  body: number;
  end: number;
}

function readTlv(b: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new Error('truncated');
  const tag = b[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte tags are not used here');
  let len = b[at + 1]!;
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || body + n > limit) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | b[body + i]!;
    if (len < 0x80 || (n > 1 && b[body] === 0)) throw new Error('non-minimal length');
    body += n;
  }
  if (body + len > limit) throw new Error('truncated');
  return { tag, start: at, body, end: body + len };
}

/** The children of a constructed TLV, in order; the last must end exactly at its parent's end. */
function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.body; at < t.end; ) {
    const c = readTlv(b, at, t.end);
    out.push(c);
    at = c.end;
  }
  return out;
}

function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new Error(`expected ${what}`);
  return t;
}

const hex = (b: Uint8Array, t: Tlv): string => Buffer.from(b.subarray(t.start, t.end)).toString('hex');

// DER of the object identifiers used (tag and length included).
const OID_EC_PUBLIC_KEY = '06072a8648ce3d0201';
const OID_P256 = '06082a8648ce3d030107';
const OID_CN = '0603550403';
const OID_EXTENSION_REQUEST = '06092a864886f70d01090e';
const OID_SAN = '0603551d11';
const SIG_HASH: Record<string, string> = {
  '06082a8648ce3d040302': 'sha256', // ecdsa-with-SHA256
  '06082a8648ce3d040303': 'sha384',
  '06082a8648ce3d040304': 'sha512',
};

function decodeString(b: Uint8Array, t: Tlv): string | undefined {
  const v = Buffer.from(b.subarray(t.body, t.end));
  if (t.tag === 0x0c) return v.toString('utf8'); // UTF8String
  if (t.tag === 0x13 || t.tag === 0x16 || t.tag === 0x14) return v.toString('latin1'); // Printable, IA5, Teletex
  if (t.tag === 0x1e) return v.swap16().toString('utf16le'); // BMPString
  return undefined;
}

/** A PKCS#10 request whose self-signature verified: its key (SPKI DER) and the names it asks for. */
export interface CheckedCsr {
  spki: Uint8Array;
  publicKey: KeyObject;
  uris: string[];
  commonName: string | undefined;
  identities: TipsIdentity[];
}

interface ParsedCsr {
  info: Uint8Array;
  spki: Uint8Array;
  keyAlg: string;
  hash: string | undefined;
  signature: Uint8Array;
  commonName: string | undefined;
  uris: string[];
}

function parseCsr(der: Uint8Array): ParsedCsr {
  const b = der;
  const outer = expectTag(readTlv(b, 0, b.length), 0x30, 'a SEQUENCE');
  if (outer.end !== b.length) throw new Error('trailing bytes');
  const [info, alg, sig, extra] = children(b, outer);
  if (extra) throw new Error('unexpected field after the signature');
  expectTag(info, 0x30, 'CertificationRequestInfo');
  const algSeq = children(b, expectTag(alg, 0x30, 'signatureAlgorithm'));
  const sigBits = expectTag(sig, 0x03, 'the signature BIT STRING');
  if (sigBits.end - sigBits.body < 2 || b[sigBits.body] !== 0) throw new Error('bad signature BIT STRING');
  const [version, subject, spki, attrs, more] = children(b, info!);
  if (more) throw new Error('unexpected field in CertificationRequestInfo');
  if (hex(b, expectTag(version, 0x02, 'version')) !== '020100') throw new Error('expected version 0');
  const spkiParts = children(b, expectTag(spki, 0x30, 'subjectPKInfo'));
  const keyAlg = children(b, expectTag(spkiParts[0], 0x30, 'the key algorithm'))
    .map((t) => hex(b, t))
    .join('/');
  expectTag(spkiParts[1], 0x03, 'the public key BIT STRING');
  let commonName: string | undefined;
  for (const rdn of children(b, expectTag(subject, 0x30, 'subject'))) {
    for (const atv of children(b, expectTag(rdn, 0x31, 'a RelativeDistinguishedName'))) {
      const [type, value] = children(b, expectTag(atv, 0x30, 'an AttributeTypeAndValue'));
      if (commonName === undefined && type && value && hex(b, type) === OID_CN) commonName = decodeString(b, value);
    }
  }
  const uris: string[] = [];
  let sanSeen = false;
  let extSeen = false;
  for (const attr of attrs ? children(b, expectTag(attrs, 0xa0, 'attributes [0]')) : []) {
    const [type, values] = children(b, expectTag(attr, 0x30, 'an Attribute'));
    if (!type || hex(b, type) !== OID_EXTENSION_REQUEST || extSeen) continue;
    extSeen = true;
    const [exts] = children(b, expectTag(values, 0x31, 'the Attribute values'));
    for (const ext of children(b, expectTag(exts, 0x30, 'Extensions'))) {
      const parts = children(b, expectTag(ext, 0x30, 'an Extension'));
      if (sanSeen || !parts[0] || hex(b, parts[0]) !== OID_SAN) continue;
      sanSeen = true;
      const value = expectTag(parts[parts.length - 1], 0x04, 'the extension OCTET STRING');
      const names = expectTag(readTlv(b, value.body, value.end), 0x30, 'GeneralNames');
      if (names.end !== value.end) throw new Error('trailing bytes in subjectAltName');
      for (const n of children(b, names)) if (n.tag === 0x86) uris.push(Buffer.from(b.subarray(n.body, n.end)).toString('latin1'));
    }
  }
  return {
    info: b.subarray(info!.start, info!.end),
    spki: b.subarray(spki!.start, spki!.end),
    keyAlg,
    hash: algSeq[0] ? SIG_HASH[hex(b, algSeq[0])] : undefined,
    signature: b.subarray(sigBits.body + 1, sigBits.end),
    commonName,
    uris,
  };
}

/**
 * Parses a DER PKCS#10, requires an ECDSA P-256 key, and checks the request's signature with the
 * key it carries (proof of possession). Throws PkiError csr_malformed / csr_key_unsupported /
 * csr_signature_invalid, as `verifyCsr` does.
 */
export function checkCsr(der: Uint8Array): CheckedCsr {
  let p: ParsedCsr;
  try {
    p = parseCsr(der);
  } catch (e) {
    throw new PkiError('csr_malformed', `expected a DER PKCS#10 certification request: ${(e as Error).message}`);
  }
  if (p.keyAlg !== `${OID_EC_PUBLIC_KEY}/${OID_P256}`) throw new PkiError('csr_key_unsupported', 'expected an ECDSA P-256 public key');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(p.spki), format: 'der', type: 'spki' });
  } catch (e) {
    throw new PkiError('csr_malformed', `expected a DER PKCS#10 certification request: ${(e as Error).message}`);
  }
  let ok = false;
  try {
    ok = p.hash !== undefined && verify(p.hash, p.info, publicKey, p.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new PkiError('csr_signature_invalid', 'expected the request to be signed by the key it carries, came a signature that does not verify');
  return { spki: new Uint8Array(p.spki), publicKey, uris: p.uris, commonName: p.commonName, identities: identitiesOf(p.uris, p.commonName) };
}

/** The TIPS identities a DER PKCS#10 claims, its signature unchecked; [] for anything that does not parse. */
export function claimedIdentities(der: Uint8Array): TipsIdentity[] {
  try {
    const p = parseCsr(der);
    return identitiesOf(p.uris, p.commonName);
  } catch {
    return [];
  }
}

// --- a DER writer for the parts of a leaf that vary --------------------------------------------

function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let n = 0;
  for (const p of parts) n += p.length;
  const head = n < 0x80 ? [tag, n] : n < 0x100 ? [tag, 0x81, n] : n < 0x10000 ? [tag, 0x82, n >> 8, n & 0xff] : [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from(head), ...parts]);
}

/** An INTEGER from a positive hex serial, minimally encoded. */
function serialInteger(serialHex: string): Buffer {
  let v = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  let i = 0;
  while (i < v.length - 1 && v[i] === 0 && v[i + 1]! < 0x80) i++;
  v = v.subarray(i);
  if (v.length === 0 || v[0]! >= 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after; whole seconds. */
function time(d: Date): Buffer {
  const iso = d.toISOString();
  const y = d.getUTCFullYear();
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  return y >= 1950 && y < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1')) : tlv(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}

const ECDSA_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');

/**
 * A PKCS#10 request signed with node:crypto (the device side of EST, what `checkCsr` reads):
 * subject CN=`commonName`, the `uris` as a subjectAltName in an extensionRequest, ECDSA with
 * SHA-256 by `privateKey` (P-256). The same fields as the @peculiar/x509 request the client made.
 */
export function buildCsr(privateKey: KeyObject, commonName: string, uris: string[]): Uint8Array {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const h = (x: string) => Buffer.from(x, 'hex');
  const name = tlv(0x30, tlv(0x31, tlv(0x30, h(OID_CN), tlv(0x0c, Buffer.from(commonName, 'utf8')))));
  const san = tlv(0x30, ...uris.map((u) => tlv(0x86, Buffer.from(u, 'latin1'))));
  const attrs = uris.length === 0 ? tlv(0xa0) : tlv(0xa0, tlv(0x30, h(OID_EXTENSION_REQUEST), tlv(0x31, tlv(0x30, tlv(0x30, h(OID_SAN), tlv(0x04, san))))));
  const info = tlv(0x30, h('020100'), name, spki, attrs);
  const sig = sign('sha256', info, privateKey);
  return new Uint8Array(tlv(0x30, info, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), sig)));
}

/** What a leaf names and when it is valid; the key is the subject's SPKI DER (from a checked CSR). */
export interface FastLeafOptions {
  identity: TipsIdentity;
  spki: Uint8Array;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  usage: 'client' | 'server';
}

/**
 * Issues metal and gateway leaves under one CA with node:crypto: `issueCertificate`'s certificate
 * (same TBSCertificate bytes), without building it through asn1js each time.
 */
export class LeafIssuer {
  private constructor(
    private readonly key: KeyObject,
    private readonly issuer: Buffer,
    private readonly caNotAfter: Date,
    private readonly fixed: { client: Buffer; server: Buffer },
    private readonly aki: Buffer,
  ) {}

  static async of(ca: CaKeyPair): Promise<LeafIssuer> {
    const der = (e: { rawData: ArrayBuffer }) => Buffer.from(e.rawData);
    const cert = new Uint8Array(ca.cert.rawData);
    const tbs = children(cert, readTlv(cert, 0, cert.length))[0]!;
    const f = children(cert, tbs);
    // version [0], serial, signature, issuer, validity, subject: the CA's subject names our issuer.
    const subject = f[f[0]!.tag === 0xa0 ? 5 : 4]!;
    const constant = (usage: 'client' | 'server') =>
      Buffer.concat([
        der(new x509.BasicConstraintsExtension(false, undefined, true)),
        der(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)),
        der(new x509.ExtendedKeyUsageExtension([usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false)),
      ]);
    return new LeafIssuer(
      KeyObject.from(ca.key),
      Buffer.from(cert.subarray(subject.start, subject.end)),
      ca.cert.notAfter,
      { client: constant('client'), server: constant('server') },
      der(await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey)),
    );
  }

  /** The TBSCertificate (exposed for the byte-for-byte test against `issueCertificate`). */
  tbs(opts: FastLeafOptions): Buffer {
    if (opts.identity.kind === 'master') throw new Error('LeafIssuer issues metal and gateway certificates only');
    const notAfter = opts.notAfter.getTime() > this.caNotAfter.getTime() ? this.caNotAfter : opts.notAfter;
    const subject = tlv(
      0x30,
      tlv(0x31, tlv(0x30, Buffer.from('0603550403', 'hex'), tlv(0x0c, Buffer.from(opts.identity.id, 'utf8')))),
      tlv(0x31, tlv(0x30, Buffer.from('060355040a', 'hex'), tlv(0x13, Buffer.from('TIPS', 'latin1')))),
    );
    const san = tlv(0x30, Buffer.from(OID_SAN, 'hex'), tlv(0x04, tlv(0x30, tlv(0x86, Buffer.from(identityUri(opts.identity), 'latin1')))));
    return tlv(
      0x30,
      Buffer.from('a003020102', 'hex'),
      serialInteger(opts.serial),
      ECDSA_SHA256,
      this.issuer,
      tlv(0x30, time(opts.notBefore), time(notAfter)),
      subject,
      opts.spki,
      tlv(0xa3, tlv(0x30, this.fixed[opts.usage], san, this.aki)),
    );
  }

  /** The signed certificate's DER. */
  issue(opts: FastLeafOptions): Uint8Array {
    const tbs = this.tbs(opts);
    const signature = sign('sha256', tbs, this.key);
    return new Uint8Array(tlv(0x30, tbs, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), signature)));
  }
}

/** Lower-case hex SHA-256 over a certificate's DER (the same value as `certificateFingerprint`). */
export function derFingerprint(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}
