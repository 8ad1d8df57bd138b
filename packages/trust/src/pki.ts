/**
 * The TIPS PKI (S6): an offline-capable root, an intermediate held by the master, short-lived leaf
 * certificates for metals, gateways and the master's TLS listener. Every leaf names its TIPS
 * identity in a URI subjectAltName (`urn:tips:metal:<id>`). ECDSA P-256 throughout.
 * Pure over keys and bytes (no files, no sockets); time and serials come from the caller.
 */
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const SAN_OID = '2.5.29.17';

export class PkiError extends Error {
  constructor(
    readonly code: PkiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PkiError';
  }
}
export type PkiErrorCode = 'csr_malformed' | 'csr_signature_invalid' | 'csr_key_unsupported' | 'csr_identity_missing' | 'key_invalid' | 'certificate_malformed';

/** The kinds of TIPS identity a certificate can name (URI SAN `urn:tips:<kind>:<id>`). */
export type TipsIdentityKind = 'metal' | 'gateway' | 'master';
export interface TipsIdentity {
  kind: TipsIdentityKind;
  /** The TIPS ID (mtl_…, gwy_…); empty for the master. */
  id: string;
}

export const TIPS_URN_PREFIX = 'urn:tips:';
const URN_RE = /^urn:tips:(metal|gateway):([a-z]{3}_[0-9a-hjkmnp-tv-z]{26})$/;

export function identityUri(identity: TipsIdentity): string {
  return identity.kind === 'master' ? 'urn:tips:master' : `${TIPS_URN_PREFIX}${identity.kind}:${identity.id}`;
}

export function parseIdentityUri(uri: string): TipsIdentity | undefined {
  if (uri === 'urn:tips:master') return { kind: 'master', id: '' };
  const m = URN_RE.exec(uri);
  if (!m) return undefined;
  const prefix = m[1] === 'metal' ? 'mtl_' : 'gwy_';
  return m[2]!.startsWith(prefix) ? { kind: m[1] as TipsIdentityKind, id: m[2]! } : undefined;
}

/** A CA: its certificate and the private key that signs with it. */
export interface CaKeyPair {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

export interface PemPair {
  certPem: string;
  keyPem: string;
}

const toPem = (der: ArrayBuffer | Uint8Array, label: string): string => {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
};

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** Imports a P-256 private key from PEM (PKCS#8 or SEC1 "EC PRIVATE KEY"). */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  let der: Buffer;
  try {
    const k = createPrivateKey(pem);
    if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('not a P-256 key');
    der = k.export({ type: 'pkcs8', format: 'der' });
  } catch (e) {
    throw new PkiError('key_invalid', `expected a P-256 private key in PEM: ${(e as Error).message}`);
  }
  return webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign']) as Promise<CryptoKey>;
}

export function parseCertificate(input: string | Uint8Array): x509.X509Certificate {
  try {
    return new x509.X509Certificate(typeof input === 'string' ? input : new Uint8Array(input));
  } catch (e) {
    throw new PkiError('certificate_malformed', `expected an X.509 certificate: ${(e as Error).message}`);
  }
}

/** Every certificate in a PEM bundle, in order. */
export function parseCertificates(pem: string): x509.X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => parseCertificate(b));
}

export async function loadCa(pair: PemPair): Promise<CaKeyPair> {
  return { cert: parseCertificate(pair.certPem), key: await importPrivateKeyPem(pair.keyPem) };
}

export async function exportCa(ca: CaKeyPair): Promise<PemPair> {
  return { certPem: ca.cert.toString('pem') + '\n', keyPem: await privateKeyToPem(ca.key) };
}

/** 16 random bytes as a positive hex serial (RFC 5280 §4.1.2.2: at most 20 octets). */
export function serialFrom(random16: Uint8Array): string {
  const b = Buffer.from(random16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

export interface CaOptions {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  serial: string;
}

/** A self-signed root: keep its key offline (`tips ca init`). pathLen 1 allows one intermediate. */
export async function createRootCa(opts: CaOptions): Promise<CaKeyPair> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: opts.serial,
    name: `CN=${opts.commonName}, O=TIPS`,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, key: keys.privateKey };
}

/** An intermediate signed by the root: what the master holds and issues with. pathLen 0. */
export async function createIntermediateCa(root: CaKeyPair, opts: CaOptions): Promise<CaKeyPair> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serial,
    subject: `CN=${opts.commonName}, O=TIPS`,
    issuer: root.cert.subject,
    notBefore: opts.notBefore,
    notAfter: clampTo(opts.notAfter, root.cert.notAfter),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: root.key,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert.publicKey),
    ],
  });
  return { cert, key: keys.privateKey };
}

function clampTo(d: Date, max: Date): Date {
  return d.getTime() > max.getTime() ? max : d;
}

export interface LeafOptions {
  identity: TipsIdentity;
  /** The subject's public key (from a verified CSR, or a key the issuer generated). */
  publicKey: x509.PublicKey | CryptoKey;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** 'client' for metals and gateways, 'server' for the master's TLS listener. */
  usage: 'client' | 'server';
  /** Extra DNS names / IP addresses (server certificates). */
  dnsNames?: string[];
  ipAddresses?: string[];
}

/** Issues a leaf certificate under `ca`; its lifetime never outlives the CA's. */
export async function issueCertificate(ca: CaKeyPair, opts: LeafOptions): Promise<x509.X509Certificate> {
  const uri = identityUri(opts.identity);
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: uri }];
  for (const d of opts.dnsNames ?? []) names.push({ type: 'dns', value: d });
  for (const ip of opts.ipAddresses ?? []) names.push({ type: 'ip', value: ip });
  const cn = opts.identity.kind === 'master' ? (opts.dnsNames?.[0] ?? 'tips-master') : opts.identity.id;
  return x509.X509CertificateGenerator.create({
    serialNumber: opts.serial,
    subject: `CN=${cn}, O=TIPS`,
    issuer: ca.cert.subject,
    notBefore: opts.notBefore,
    notAfter: clampTo(opts.notAfter, ca.cert.notAfter),
    signingAlgorithm: SIGN,
    publicKey: opts.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([opts.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
}

/** A parsed PKCS#10 request whose signature has been checked (proof the requester holds the key). */
export interface VerifiedCsr {
  csr: x509.Pkcs10CertificateRequest;
  publicKey: x509.PublicKey;
  /** URI subjectAltNames asked for, plus the subject CN. */
  uris: string[];
  commonName: string | undefined;
  /** The TIPS identities the request names (URI SAN or CN). */
  identities: TipsIdentity[];
}

/** Parses a DER PKCS#10, checks its self-signature and that its key is P-256 or Ed25519. */
export async function verifyCsr(der: Uint8Array): Promise<VerifiedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
  } catch (e) {
    throw new PkiError('csr_malformed', `expected a DER PKCS#10 certification request: ${(e as Error).message}`);
  }
  const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (!(alg.name === 'ECDSA' && alg.namedCurve === 'P-256')) {
    throw new PkiError('csr_key_unsupported', `expected an ECDSA P-256 public key, came ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''}`);
  }
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new PkiError('csr_signature_invalid', 'expected the request to be signed by the key it carries, came a signature that does not verify');
  return { csr, publicKey: csr.publicKey, ...csrNames(csr) };
}

/**
 * The TIPS identities a DER PKCS#10 *claims*, its signature unchecked (what a throttle keys on
 * before spending a verification); [] for anything that does not parse.
 */
export function claimedCsrIdentities(der: Uint8Array): TipsIdentity[] {
  try {
    return csrNames(new x509.Pkcs10CertificateRequest(new Uint8Array(der))).identities;
  } catch {
    return [];
  }
}

/** The TIPS identities a request names: its `urn:tips:` URIs, then its CN read as a metal or gateway ID. */
export function identitiesOf(uris: string[], commonName: string | undefined): TipsIdentity[] {
  const identities: TipsIdentity[] = [];
  for (const u of uris) {
    const id = parseIdentityUri(u);
    if (id) identities.push(id);
  }
  if (commonName) {
    for (const kind of ['metal', 'gateway'] as const) {
      const id = parseIdentityUri(`urn:tips:${kind}:${commonName}`);
      if (id && !identities.some((x) => x.id === id.id)) identities.push(id);
    }
  }
  return identities;
}

function csrNames(csr: x509.Pkcs10CertificateRequest): Pick<VerifiedCsr, 'uris' | 'commonName' | 'identities'> {
  const sanExt = csr.extensions.find((e) => e.type === SAN_OID);
  const san = sanExt ? new x509.SubjectAlternativeNameExtension(sanExt.rawData) : undefined;
  const uris = (san?.names.toJSON() ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  const commonName = csr.subjectName.getField('CN')[0];
  return { uris, commonName, identities: identitiesOf(uris, commonName) };
}

/** TIPS identities named in a certificate's URI subjectAltNames. */
export function certificateIdentities(cert: x509.X509Certificate): TipsIdentity[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const out: TipsIdentity[] = [];
  for (const n of san?.names.toJSON() ?? []) {
    if (n.type !== 'url') continue;
    const id = parseIdentityUri(n.value);
    if (id) out.push(id);
  }
  return out;
}

/** A DER tag-length-value (definite length, short or long form). */
function derTlv(tag: number, body: Uint8Array): Uint8Array {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return new Uint8Array([tag, ...len, ...body]);
}
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
/** id-signedData 1.2.840.113549.1.7.2 and id-data 1.2.840.113549.1.7.1 (RFC 5652 §5.1, §4). */
const ID_SIGNED_DATA = new Uint8Array([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);
const ID_DATA = new Uint8Array([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);

/**
 * PKCS#7 / CMS SignedData with no signers carrying `certs` ("certs-only", RFC 7030 §4.1.3), the
 * certificates in the given order. Encoded as `openssl crl2pkcs7 -nocrl` does: version 1, no digest
 * algorithms, an EncapsulatedContentInfo of id-data *without* eContent (RFC 5652 §5.2: omitted when
 * there are no signers), the certificates as [0] IMPLICIT, no CRLs, no signerInfos.
 */
export function certsOnlyPkcs7(certs: x509.X509Certificate[]): Uint8Array {
  const signedData = derTlv(
    0x30,
    concat([
      new Uint8Array([0x02, 0x01, 0x01]), // CMSVersion 1
      derTlv(0x31, new Uint8Array()), // digestAlgorithms: none
      derTlv(0x30, ID_DATA), // encapContentInfo: eContentType id-data, no eContent
      derTlv(0xa0, concat(certs.map((c) => new Uint8Array(c.rawData)))), // certificates [0] IMPLICIT
      derTlv(0x31, new Uint8Array()), // signerInfos: none
    ]),
  );
  return derTlv(0x30, concat([ID_SIGNED_DATA, derTlv(0xa0, signedData)]));
}

/** The certificates of a certs-only PKCS#7. */
export function parseCertsOnlyPkcs7(der: Uint8Array): x509.X509Certificate[] {
  try {
    return [...new x509.X509Certificates(new Uint8Array(der))];
  } catch (e) {
    throw new PkiError('certificate_malformed', `expected a certs-only PKCS#7: ${(e as Error).message}`);
  }
}

/** Lower-case hex SHA-256 over the certificate's DER: the fingerprint trust lists pin. */
export async function certificateFingerprint(cert: x509.X509Certificate): Promise<string> {
  return Buffer.from(await cert.getThumbprint('SHA-256')).toString('hex');
}

/** The SubjectPublicKeyInfo of a certificate or CSR key as a node KeyObject (for COSE `cnf`). */
export function publicKeyObject(key: x509.PublicKey): ReturnType<typeof createPublicKey> {
  return createPublicKey({ key: Buffer.from(key.rawData), format: 'der', type: 'spki' });
}

/** Verifies that `leaf` chains to `root` through `intermediates` and is valid at `at`. */
export async function verifyChain(leaf: x509.X509Certificate, intermediates: x509.X509Certificate[], root: x509.X509Certificate, at: Date): Promise<boolean> {
  const chain = new x509.X509ChainBuilder({ certificates: [...intermediates, root] });
  const built = await chain.build(leaf);
  const last = built[built.length - 1];
  if (!last?.equal(root)) return false;
  for (let i = 0; i < built.length; i++) {
    const c = built[i]!;
    const issuer = built[i + 1] ?? c;
    if (at < c.notBefore || at > c.notAfter) return false;
    if (!(await c.verify({ publicKey: issuer.publicKey, signatureOnly: true }))) return false;
  }
  return true;
}

export { x509 };
