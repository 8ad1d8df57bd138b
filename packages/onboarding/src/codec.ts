/**
 * FDO's small shared structures over the strict CBOR codec of @tips/suit: Hash / HMac, PublicKey,
 * RendezvousInfo. Decoders say what they expected and what came, with a path.
 */
import { createHash, createHmac, createPublicKey, type KeyObject } from 'node:crypto';
import { type CborValue, decodeCbor, encodeCbor, typeName } from '@tips/suit';
import {
  HASH_SHA256,
  HASH_SHA384,
  HMAC_SHA256,
  HMAC_SHA384,
  PK_ENC_X509,
  PK_TYPE_SECP256R1,
  PK_TYPE_SECP384R1,
  RV_DEV_PORT,
  RV_DNS,
  RV_IP_ADDRESS,
  RV_PROT_HTTP,
  RV_PROT_HTTPS,
  RV_PROTOCOL,
} from './constants.ts';
import { VoucherError, type VoucherLink } from './errors.ts';

/** `Hash` and `HMac` of FDO: `[hashtype, bstr]`. */
export interface FdoHash {
  alg: number;
  value: Uint8Array;
}

/** `PublicKey` of FDO: `[pkType, pkEnc, pkBody]`; TIPS writes pkEnc X509 (SPKI DER). */
export interface FdoPublicKey {
  type: number;
  encoding: number;
  body: Uint8Array;
  /** The key itself (node:crypto), checked to be of `type`. */
  key: KeyObject;
}

/** One RendezvousInstr: `[RVVariable, bstr .cbor RVValue]`, the value decoded. */
export interface RendezvousInstruction {
  variable: number;
  value: CborValue;
}
/** RendezvousInfo = `[+ RendezvousDirective]`, each directive `[+ RendezvousInstr]`. */
export type RendezvousInfo = RendezvousInstruction[][];

const HASH_NODE: Record<number, { name: string; length: number }> = {
  [HASH_SHA256]: { name: 'sha256', length: 32 },
  [HASH_SHA384]: { name: 'sha384', length: 48 },
};
const HMAC_NODE: Record<number, { name: string; length: number }> = {
  [HMAC_SHA256]: { name: 'sha256', length: 32 },
  [HMAC_SHA384]: { name: 'sha384', length: 48 },
};

export function malformed(link: VoucherLink, path: string, expected: string, came: CborValue | undefined): never {
  throw new VoucherError('voucher_malformed', `${path}: expected ${expected}, came ${came === undefined ? 'nothing' : typeName(came)}`, link);
}

export function expectArray(v: CborValue | undefined, length: number | [number, number], link: VoucherLink, path: string): CborValue[] {
  const [min, max] = typeof length === 'number' ? [length, length] : length;
  if (!Array.isArray(v)) return malformed(link, path, `an array of ${min === max ? min : `${min} to ${max}`} elements`, v);
  if (v.length < min || v.length > max) {
    throw new VoucherError('voucher_malformed', `${path}: expected an array of ${min === max ? min : `${min} to ${max}`} elements, came ${v.length}`, link);
  }
  return v;
}

export function expectBytes(v: CborValue | undefined, link: VoucherLink, path: string, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) return malformed(link, path, 'a byte string', v);
  if (length !== undefined && v.length !== length) throw new VoucherError('voucher_malformed', `${path}: expected ${length} bytes, came ${v.length}`, link);
  return v;
}

export function expectInt(v: CborValue | undefined, link: VoucherLink, path: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) return malformed(link, path, 'an integer', v);
  return v;
}

export function expectText(v: CborValue | undefined, link: VoucherLink, path: string): string {
  if (typeof v !== 'string') return malformed(link, path, 'a text string', v);
  return v;
}

export function digest(alg: number, ...parts: Uint8Array[]): FdoHash {
  const h = HASH_NODE[alg];
  if (!h) throw new VoucherError('voucher_unsupported', `expected hash type SHA-256 (${HASH_SHA256}) or SHA-384 (${HASH_SHA384}), came ${alg}`);
  const hash = createHash(h.name);
  for (const p of parts) hash.update(p);
  return { alg, value: new Uint8Array(hash.digest()) };
}

export function hmac(alg: number, secret: Uint8Array, data: Uint8Array): FdoHash {
  const h = HMAC_NODE[alg];
  if (!h) throw new VoucherError('voucher_unsupported', `expected HMAC type HMAC-SHA256 (${HMAC_SHA256}) or HMAC-SHA384 (${HMAC_SHA384}), came ${alg}`);
  return { alg, value: new Uint8Array(createHmac(h.name, secret).update(data).digest()) };
}

export const encodeHash = (h: FdoHash): CborValue => [h.alg, h.value];

export function decodeHash(v: CborValue | undefined, link: VoucherLink, path: string, kind: 'hash' | 'hmac' = 'hash'): FdoHash {
  const [alg, value] = expectArray(v, 2, link, path);
  const a = expectInt(alg, link, `${path}[0]`);
  const table = kind === 'hash' ? HASH_NODE : HMAC_NODE;
  const spec = table[a];
  if (!spec) {
    throw new VoucherError(
      'voucher_unsupported',
      `${path}: expected ${kind === 'hash' ? `hash type ${HASH_SHA256} (SHA-256) or ${HASH_SHA384} (SHA-384)` : `HMAC type ${HMAC_SHA256} or ${HMAC_SHA384}`}, came ${a}`,
      link,
    );
  }
  return { alg: a, value: expectBytes(value, link, `${path}[1]`, spec.length) };
}

export function sameHash(a: FdoHash, b: FdoHash): boolean {
  return a.alg === b.alg && Buffer.compare(a.value, b.value) === 0;
}

/** The pkType of a key FDO can name: P-256 → SECP256R1, P-384 → SECP384R1. */
export function publicKeyType(key: KeyObject): number {
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  if (curve === 'prime256v1') return PK_TYPE_SECP256R1;
  if (curve === 'secp384r1') return PK_TYPE_SECP384R1;
  throw new VoucherError('voucher_unsupported', `expected an ECDSA P-256 or P-384 key (FDO SECP256R1/SECP384R1), came ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''}`);
}

/** FDO PublicKey of each key object seen (a KeyObject never changes): one export per key, not per use. */
const fdoOfKey = new WeakMap<KeyObject, FdoPublicKey>();

/** FDO PublicKey for a node key (the public half of a private key too). */
export function toFdoPublicKey(key: KeyObject): FdoPublicKey {
  const known = fdoOfKey.get(key);
  if (known) return known;
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const type = publicKeyType(pub);
  const fdo: FdoPublicKey = { type, encoding: PK_ENC_X509, body: new Uint8Array(pub.export({ type: 'spki', format: 'der' })), key: pub };
  fdoOfKey.set(key, fdo);
  return fdo;
}

/**
 * Keys already decoded and found canonical, by their DER: the manufacturer's, the distributors' and
 * the owner's keys recur in every voucher of a batch, and parsing plus re-encoding a key costs more
 * than the signature check it serves. Bounded; what is cached is only what these bytes always give.
 */
const decodedKeys = new Map<string, { actual: number; key: KeyObject }>();
const DECODED_KEYS_MAX = 4096;

export const encodePublicKey = (k: FdoPublicKey): CborValue => [k.type, k.encoding, k.body];

export function decodePublicKey(v: CborValue | undefined, link: VoucherLink, path: string): FdoPublicKey {
  const [t, e, b] = expectArray(v, 3, link, path);
  const type = expectInt(t, link, `${path}[0]`);
  const encoding = expectInt(e, link, `${path}[1]`);
  if (encoding !== PK_ENC_X509) throw new VoucherError('voucher_unsupported', `${path}: expected pkEnc X509 (${PK_ENC_X509}, SubjectPublicKeyInfo), came ${encoding}`, link);
  const body = expectBytes(b, link, `${path}[2]`);
  const id = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  const known = decodedKeys.get(id);
  if (known) {
    if (known.actual !== type) throw new VoucherError('voucher_malformed', `${path}: pkType ${type} names another curve than the key it carries (${known.actual})`, link);
    return { type, encoding, body, key: known.key };
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(body), format: 'der', type: 'spki' });
  } catch (err) {
    throw new VoucherError('voucher_malformed', `${path}: expected a SubjectPublicKeyInfo in DER, came bytes that are not one (${(err as Error).message})`, link);
  }
  const actual = publicKeyType(key);
  if (actual !== type) throw new VoucherError('voucher_malformed', `${path}: pkType ${type} names another curve than the key it carries (${actual})`, link);
  // A second spelling of the same key would give one key two hashes: only the canonical DER.
  if (Buffer.compare(Buffer.from(body), key.export({ type: 'spki', format: 'der' })) !== 0) {
    throw new VoucherError('voucher_malformed', `${path}: expected the canonical DER of the key, came another encoding`, link);
  }
  if (decodedKeys.size >= DECODED_KEYS_MAX) decodedKeys.clear();
  decodedKeys.set(id, { actual, key });
  return { type, encoding, body, key };
}

/** SHA-256 of a key's SubjectPublicKeyInfo DER, hex: how TIPS names a key in messages and rows. */
export function keyFingerprint(k: FdoPublicKey | KeyObject): string {
  const der = 'body' in k ? k.body : (k.type === 'private' ? createPublicKey(k) : k).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

export function sameKey(a: FdoPublicKey, b: FdoPublicKey): boolean {
  return a.type === b.type && Buffer.compare(a.body, b.body) === 0;
}

// ---------------------------------------------------------------------------- rendezvous

/**
 * RendezvousInfo from addresses like `https://rv.example.com:8041` or `http://192.0.2.7:8040`:
 * one directive per address, each `RVDns` or `RVIPAddress`, `RVDevPort`, `RVProtocol`.
 */
export function rendezvousFromUrls(urls: readonly string[]): RendezvousInfo {
  if (urls.length === 0) throw new VoucherError('voucher_bad_input', 'expected at least one rendezvous address, came none');
  return urls.map((raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new VoucherError('voucher_bad_input', `rendezvous address "${raw.slice(0, 200)}" is not a URL (expected http://host:port or https://host:port)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new VoucherError('voucher_bad_input', `rendezvous address "${raw.slice(0, 200)}": expected http or https, came ${url.protocol}`);
    if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
      throw new VoucherError('voucher_bad_input', `rendezvous address "${raw.slice(0, 200)}": expected scheme, host and port only (FDO RendezvousInfo has no path)`);
    }
    const https = url.protocol === 'https:';
    const port = url.port === '' ? (https ? 443 : 80) : Number(url.port);
    const host = url.hostname;
    const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
    if (host.startsWith('[')) throw new VoucherError('voucher_bad_input', `rendezvous address "${raw.slice(0, 200)}": IPv6 literals are not supported yet; use a DNS name`);
    const where: RendezvousInstruction = ipv4 ? { variable: RV_IP_ADDRESS, value: Uint8Array.from(ipv4.slice(1).map(Number)) } : { variable: RV_DNS, value: host };
    return [where, { variable: RV_DEV_PORT, value: port }, { variable: RV_PROTOCOL, value: https ? RV_PROT_HTTPS : RV_PROT_HTTP }];
  });
}

/** The addresses a RendezvousInfo names, as URLs (directives without a host are skipped). */
export function rendezvousUrls(info: RendezvousInfo): string[] {
  const out: string[] = [];
  for (const directive of info) {
    let host: string | undefined;
    let port: number | undefined;
    let https = true;
    for (const i of directive) {
      if (i.variable === RV_DNS && typeof i.value === 'string') host = i.value;
      else if (i.variable === RV_IP_ADDRESS && i.value instanceof Uint8Array && i.value.length === 4) host = [...i.value].join('.');
      else if (i.variable === RV_DEV_PORT && typeof i.value === 'number') port = i.value;
      else if (i.variable === RV_PROTOCOL && typeof i.value === 'number') https = i.value !== RV_PROT_HTTP;
    }
    if (host === undefined) continue;
    out.push(`${https ? 'https' : 'http'}://${host}${port === undefined ? '' : `:${port}`}`);
  }
  return out;
}

/** A flag instruction (RVDevOnly, RVOwnerOnly, RVBypass) has no value: `value` undefined, one element on the wire. */
export const encodeRendezvous = (info: RendezvousInfo): CborValue => info.map((d) => d.map((i) => (i.value === undefined ? [i.variable] : [i.variable, encodeCbor(i.value)])));

export function decodeRendezvous(v: CborValue | undefined, link: VoucherLink, path: string): RendezvousInfo {
  if (!Array.isArray(v) || v.length === 0) return malformed(link, path, 'a non-empty array of rendezvous directives', v);
  return v.map((d, di) => {
    if (!Array.isArray(d) || d.length === 0) return malformed(link, `${path}[${di}]`, 'a non-empty array of rendezvous instructions', d);
    return d.map((instr, ii) => {
      const p = `${path}[${di}][${ii}]`;
      const [variable, value] = expectArray(instr, [1, 2], link, p);
      const n = expectInt(variable, link, `${p}[0]`);
      if (value === undefined) return { variable: n, value: undefined };
      const raw = expectBytes(value, link, `${p}[1]`);
      let inner: CborValue;
      try {
        inner = decodeCbor(raw, { maxDepth: 8 });
      } catch (err) {
        throw new VoucherError('voucher_malformed', `${p}[1]: expected bstr .cbor RVValue, ${(err as Error).message}`, link);
      }
      return { variable: n, value: inner };
    });
  });
}
