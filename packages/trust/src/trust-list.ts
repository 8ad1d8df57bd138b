/**
 * The device-side trust list (S5): which operators may author manifests for this metal (their
 * public keys) and which update servers it talks to (CA or certificate SHA-256 fingerprints).
 * Pure: the client persists the encoded bytes. The list changes only through
 * `applyTrustListUpdate`, which takes a `VerifiedManifest` — something only @tips/suit's full
 * verification (signature by a currently trusted operator, anti-rollback, vendor/class policy)
 * can produce — for the trust-list component, whose image digest covers the new list.
 */
import { createHash, createPublicKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import {
  type CborMap,
  type CborValue,
  canonicalMap,
  componentKey,
  decodeCbor,
  encodeCbor,
  exportCoseKey,
  importKey,
  manifestComponents,
  parameterValues,
  SUIT_PARAMETER_IMAGE_DIGEST,
  type TrustedKey,
  typeName,
  type VerifiedManifest,
} from '@tips/suit';

export class TrustListError extends Error {
  constructor(
    readonly code: TrustListErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TrustListError';
  }
}
export type TrustListErrorCode = 'trust_list_malformed' | 'trust_list_wrong_component' | 'trust_list_digest_mismatch' | 'trust_list_rollback' | 'trust_list_empty' | 'trust_list_signer_unknown';

/** The SUIT component a trust-list update targets. */
export const TRUST_LIST_COMPONENT: Uint8Array[] = [new Uint8Array(Buffer.from('tips', 'utf8')), new Uint8Array(Buffer.from('trust-list', 'utf8'))];

/** Map keys of the encoded trust list. */
const TL_VERSION = 1;
const TL_OPERATORS = 2;
const TL_SERVERS = 3;
const OP_NAME = 1;
const OP_KEY = 2;
const SRV_NAME = 1;
const SRV_CA_FINGERPRINTS = 2;
const SRV_CERT_FINGERPRINTS = 3;
const SRV_URI = 4;
const SHA256_ALG = -16;

export interface TrustedOperator {
  name: string;
  /** Ed25519 or P-256 public key. */
  publicKey: KeyObject;
}

export interface TrustedUpdateServer {
  name: string;
  uri?: string;
  /** SHA-256 of the DER of CA certificates the server's chain may pass through. */
  caFingerprints: string[];
  /** SHA-256 of the DER of pinned server (leaf) certificates. */
  certFingerprints: string[];
}

export interface TrustList {
  /** Grows with every update (anti-rollback of the list itself). */
  version: number;
  operators: TrustedOperator[];
  updateServers: TrustedUpdateServer[];
}

const bad = (m: string): never => {
  throw new TrustListError('trust_list_malformed', m);
};
const FP_RE = /^[0-9a-f]{64}$/;

function checkList(t: TrustList): TrustList {
  if (!Number.isSafeInteger(t.version) || t.version < 0) bad(`version: expected a non-negative integer, came ${t.version}`);
  if (t.operators.length === 0) throw new TrustListError('trust_list_empty', 'operators: a trust list needs at least one operator, or no update could ever be accepted again');
  for (const s of t.updateServers) {
    for (const f of [...s.caFingerprints, ...s.certFingerprints]) if (!FP_RE.test(f)) bad(`updateServers.${s.name}: expected SHA-256 fingerprints as 64 lower-case hex characters`);
    if (s.caFingerprints.length + s.certFingerprints.length === 0) bad(`updateServers.${s.name}: expected at least one CA or certificate fingerprint`);
  }
  return t;
}

/** Deterministic CBOR encoding (canonical map order). */
export function encodeTrustList(t: TrustList): Uint8Array {
  checkList(t);
  const fp = (list: string[]) => list.map((f) => new Uint8Array(Buffer.from(f, 'hex')));
  return encodeCbor(
    canonicalMap([
      [TL_VERSION, t.version],
      [
        TL_OPERATORS,
        t.operators.map((o) =>
          canonicalMap([
            [OP_NAME, o.name],
            [OP_KEY, decodeCbor(exportCoseKey({ publicKey: o.publicKey }))],
          ]),
        ),
      ],
      [
        TL_SERVERS,
        t.updateServers.map((s) => {
          const entries: [CborValue, CborValue][] = [
            [SRV_NAME, s.name],
            [SRV_CA_FINGERPRINTS, fp(s.caFingerprints)],
            [SRV_CERT_FINGERPRINTS, fp(s.certFingerprints)],
          ];
          if (s.uri !== undefined) entries.push([SRV_URI, s.uri]);
          return canonicalMap(entries);
        }),
      ],
    ]),
  );
}

function field(m: CborMap, k: number, what: string): CborValue {
  const v = m.get(k);
  if (v === undefined) bad(`${what}: missing key ${k}`);
  return v;
}
function asMap(v: CborValue, what: string): CborMap {
  return v instanceof Map ? v : bad(`${what}: expected a map, came ${typeName(v)}`);
}
function asArray(v: CborValue, what: string): CborValue[] {
  return Array.isArray(v) ? v : bad(`${what}: expected an array, came ${typeName(v)}`);
}
function asText(v: CborValue, what: string): string {
  return typeof v === 'string' && v.length > 0 && v.length <= 128 ? v : bad(`${what}: expected a text string of 1–128 characters`);
}
function fingerprints(v: CborValue, what: string): string[] {
  return asArray(v, what).map((b, i) => (b instanceof Uint8Array && b.length === 32 ? Buffer.from(b).toString('hex') : bad(`${what}[${i}]: expected a 32-byte SHA-256`)));
}
function onlyKeys(m: CborMap, allowed: number[], what: string): void {
  for (const k of m.keys()) if (!allowed.includes(k as number)) bad(`${what}: unexpected key ${String(k)}`);
}

/** Strict decoding: exactly the known keys, exact types, a valid key for every operator. */
export function decodeTrustList(bytes: Uint8Array): TrustList {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, { maxDepth: 8 });
  } catch (e) {
    return bad(`trust list: ${(e as Error).message}`);
  }
  const m = asMap(v, 'trust list');
  onlyKeys(m, [TL_VERSION, TL_OPERATORS, TL_SERVERS], 'trust list');
  const rawVersion = field(m, TL_VERSION, 'version');
  const version = typeof rawVersion === 'number' && Number.isSafeInteger(rawVersion) && rawVersion >= 0 ? rawVersion : bad('version: expected a non-negative integer');
  const operators = asArray(field(m, TL_OPERATORS, 'operators'), 'operators').map((o, i) => {
    const om = asMap(o, `operators[${i}]`);
    onlyKeys(om, [OP_NAME, OP_KEY], `operators[${i}]`);
    let publicKey: KeyObject;
    try {
      const k = importKey(asMap(field(om, OP_KEY, `operators[${i}].key`), `operators[${i}].key`));
      publicKey = k.publicKey ?? bad(`operators[${i}].key: expected a public key`);
    } catch (e) {
      if (e instanceof TrustListError) throw e;
      return bad(`operators[${i}].key: ${(e as Error).message}`);
    }
    if (!(publicKey.asymmetricKeyType === 'ed25519' || publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1')) bad(`operators[${i}].key: expected Ed25519 or P-256`);
    return { name: asText(field(om, OP_NAME, `operators[${i}].name`), `operators[${i}].name`), publicKey };
  });
  const updateServers = asArray(field(m, TL_SERVERS, 'updateServers'), 'updateServers').map((s, i) => {
    const sm = asMap(s, `updateServers[${i}]`);
    onlyKeys(sm, [SRV_NAME, SRV_CA_FINGERPRINTS, SRV_CERT_FINGERPRINTS, SRV_URI], `updateServers[${i}]`);
    const uri = sm.get(SRV_URI);
    return {
      name: asText(field(sm, SRV_NAME, `updateServers[${i}].name`), `updateServers[${i}].name`),
      ...(uri === undefined ? {} : { uri: typeof uri === 'string' && uri.length <= 2048 ? uri : bad(`updateServers[${i}].uri: expected a text string`) }),
      caFingerprints: fingerprints(field(sm, SRV_CA_FINGERPRINTS, `updateServers[${i}].ca`), `updateServers[${i}].ca`),
      certFingerprints: fingerprints(field(sm, SRV_CERT_FINGERPRINTS, `updateServers[${i}].certs`), `updateServers[${i}].certs`),
    };
  });
  return checkList({ version, operators, updateServers });
}

/** The operators as the trust anchors @tips/suit verifies manifests against. */
export function operatorKeys(t: TrustList): TrustedKey[] {
  return t.operators.map((o) => ({ publicKey: o.publicKey, name: o.name }));
}

const sha256 = (der: Uint8Array): string => createHash('sha256').update(der).digest('hex');

/**
 * Whether this metal may talk to an update server presenting `chainDer` (leaf first), already
 * verified by TLS: the leaf is pinned, or some certificate of the chain is a listed CA.
 */
export function acceptsUpdateServer(t: TrustList, chainDer: Uint8Array[]): TrustedUpdateServer | undefined {
  const [leaf, ...rest] = chainDer.map(sha256);
  if (leaf === undefined) return undefined;
  return t.updateServers.find((s) => s.certFingerprints.includes(leaf) || [leaf, ...rest].some((f) => s.caFingerprints.includes(f)));
}

function spki(k: KeyObject): Buffer {
  return (k.type === 'private' ? createPublicKey(k) : k).export({ type: 'spki', format: 'der' });
}

/**
 * Applies a trust-list update. `verified` must have been verified against `operatorKeys(current)`;
 * this checks again that its signer is a current operator, that it targets TRUST_LIST_COMPONENT,
 * that its image digest is the SHA-256 of `payload`, and that the new version is higher.
 */
export function applyTrustListUpdate(current: TrustList, verified: VerifiedManifest, payload: Uint8Array): TrustList {
  const signer = verified.key.publicKey;
  const signerSpki = signer ? spki(signer) : undefined;
  const isCurrent = (o: TrustedOperator) => {
    const s = spki(o.publicKey);
    return signerSpki !== undefined && s.length === signerSpki.length && timingSafeEqual(s, signerSpki);
  };
  if (!current.operators.some(isCurrent)) {
    throw new TrustListError('trust_list_signer_unknown', 'the update is not signed by an operator of the current trust list');
  }
  const components = manifestComponents(verified.manifest);
  if (components.length !== 1 || componentKey(components[0]!) !== componentKey(TRUST_LIST_COMPONENT)) {
    throw new TrustListError('trust_list_wrong_component', 'components: expected exactly ["tips", "trust-list"]');
  }
  const digests = parameterValues(verified, SUIT_PARAMETER_IMAGE_DIGEST);
  const want = createHash('sha256').update(payload).digest();
  const matches = (d: Uint8Array) => {
    const v = decodeCbor(d);
    return Array.isArray(v) && v[0] === SHA256_ALG && v[1] instanceof Uint8Array && v[1].length === 32 && timingSafeEqual(Buffer.from(v[1]), want);
  };
  if (digests.length === 0 || !digests.every(matches)) throw new TrustListError('trust_list_digest_mismatch', 'image-digest: expected the SHA-256 of the new trust list');
  const next = decodeTrustList(payload);
  if (next.version <= current.version) throw new TrustListError('trust_list_rollback', `version: expected greater than ${current.version}, came ${next.version}`);
  return next;
}
