/**
 * Re-enrollment instructions that ride inside an update (S6): when an update breaks a metal's
 * certificate (new key store, new identity), the operator ships a fresh enrollment secret and the
 * EST server to use, as the payload of a signed SUIT manifest for the component
 * `["tips", "enrollment"]`. The client accepts it only from a `VerifiedManifest` whose image
 * digest covers the payload — the same rule as trust-list updates.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { canonicalMap, type CborValue, componentKey, decodeCbor, encodeCbor, manifestComponents, parameterValues, SUIT_PARAMETER_IMAGE_DIGEST, typeName, type VerifiedManifest } from '@tips/suit';
import { TrustListError } from './trust-list.ts';

export const ENROLLMENT_COMPONENT: Uint8Array[] = [new Uint8Array(Buffer.from('tips', 'utf8')), new Uint8Array(Buffer.from('enrollment', 'utf8'))];

export interface ReenrollmentInstruction {
  /** EST base, e.g. https://master:8443/.well-known/est */
  estUri: string;
  /** HTTP Basic user and password for simpleenroll. */
  secretId: string;
  secret: string;
}

const EST_URI = 1;
const SECRET_ID = 2;
const SECRET = 3;

export function encodeReenrollment(r: ReenrollmentInstruction): Uint8Array {
  return encodeCbor(
    canonicalMap([
      [EST_URI, r.estUri],
      [SECRET_ID, r.secretId],
      [SECRET, r.secret],
    ]),
  );
}

const bad = (m: string): never => {
  throw new TrustListError('trust_list_malformed', m);
};

export function decodeReenrollment(bytes: Uint8Array): ReenrollmentInstruction {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, { maxDepth: 4 });
  } catch (e) {
    return bad(`re-enrollment: ${(e as Error).message}`);
  }
  if (!(v instanceof Map) || v.size !== 3) return bad(`re-enrollment: expected a map of 3 entries, came ${typeName(v)}`);
  const text = (k: number, name: string, re: RegExp) => {
    const x = v.get(k);
    return typeof x === 'string' && re.test(x) ? x : bad(`re-enrollment ${name}: unexpected value`);
  };
  return {
    estUri: text(EST_URI, 'estUri', /^https:\/\/[^\s]{1,2040}$/),
    secretId: text(SECRET_ID, 'secretId', /^ens_[0-9a-hjkmnp-tv-z]{26}$/),
    secret: text(SECRET, 'secret', /^est_[A-Za-z0-9_-]{43}$/),
  };
}

/** The instruction carried by a verified manifest for ENROLLMENT_COMPONENT, checked against its digest. */
export function reenrollmentFromUpdate(verified: VerifiedManifest, payload: Uint8Array): ReenrollmentInstruction {
  const components = manifestComponents(verified.manifest);
  if (components.length !== 1 || componentKey(components[0]!) !== componentKey(ENROLLMENT_COMPONENT)) {
    throw new TrustListError('trust_list_wrong_component', 'components: expected exactly ["tips","enrollment"]');
  }
  const want = createHash('sha256').update(payload).digest();
  const digests = parameterValues(verified, SUIT_PARAMETER_IMAGE_DIGEST);
  const ok = (d: Uint8Array) => {
    const x = decodeCbor(d);
    return Array.isArray(x) && x[0] === -16 && x[1] instanceof Uint8Array && x[1].length === 32 && timingSafeEqual(Buffer.from(x[1]), want);
  };
  if (digests.length === 0 || !digests.every(ok)) throw new TrustListError('trust_list_digest_mismatch', 'image-digest: expected the SHA-256 of the re-enrollment payload');
  return decodeReenrollment(payload);
}
