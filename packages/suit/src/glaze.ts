/**
 * Glaze binding (T12): a Glaze is a payload plus a SUIT envelope whose image-digest is the
 * SHA-256 of that payload. The master builds the binding when a Glaze is uploaded and checks it
 * whenever an envelope is attached to a Glaze.
 */
import { decodeCbor } from './cbor.ts';
import { SHA256, SUIT_PARAMETER_IMAGE_DIGEST } from './constants.ts';
import { SuitError } from './errors.ts';
import type { CoseKey, TrustedKey } from './keys.ts';
import { buildEnvelope } from './builder.ts';
import { decodeEnvelope, parseDigest } from './manifest.ts';
import { authenticate, decodeStage, parameterValues, type AuthenticatedEnvelope } from './verify.ts';

export interface GlazeBindingInput {
  /** SHA-256 of the Glaze payload: 64 hex characters or 32 bytes. */
  payloadSha256: string | Uint8Array;
  payloadSize: number;
  /** Where metals fetch the payload (URI delivery, S2). */
  uri: string;
  vendorDomain?: string;
  vendorId?: Uint8Array;
  classInfo?: string;
  classId?: Uint8Array;
  component: string | Uint8Array[];
  sequenceNumber: number | bigint;
  text?: string;
  key: CoseKey;
}

function shaBytes(sha: string | Uint8Array): Uint8Array {
  if (sha instanceof Uint8Array) {
    if (sha.length !== 32) throw new SuitError('suit_bad_value', `payloadSha256: expected 32 bytes, came ${sha.length}`);
    return sha;
  }
  if (!/^[0-9a-f]{64}$/.test(sha)) throw new SuitError('suit_bad_value', 'payloadSha256: expected 64 lower-case hex characters');
  return new Uint8Array(Buffer.from(sha, 'hex'));
}

/** Builds and signs the envelope of a Glaze (URI delivery; the payload stays in the Glaze repository). */
export function bindGlaze(input: GlazeBindingInput): Uint8Array {
  const { payloadSha256, payloadSize, uri, key, ...rest } = input;
  return buildEnvelope({
    ...rest,
    payloadSha256: shaBytes(payloadSha256),
    payloadSize,
    delivery: { mode: 'uri', uri },
    key,
  });
}

/**
 * Checks that an envelope binds the Glaze payload: every image-digest it sets is the SHA-256 of
 * the payload (and there is at least one). With `trust`, the envelope must also authenticate.
 */
export function verifyGlazeBinding(envelope: Uint8Array, payloadSha256: string | Uint8Array, options: { trust?: readonly TrustedKey[] } = {}): void {
  const want = Buffer.from(shaBytes(payloadSha256)).toString('hex');
  let digests: Uint8Array[];
  if (options.trust) {
    const auth: AuthenticatedEnvelope = authenticate(decodeStage(envelope), options.trust);
    digests = parameterValues(auth, SUIT_PARAMETER_IMAGE_DIGEST);
  } else {
    const env = decodeEnvelope(envelope);
    const members = new Map([...env.manifest.severable].filter(([, m]) => !m.severed));
    digests = parameterValues({ bytes: envelope, envelope: env, manifest: env.manifest, manifestDigest: { alg: SHA256, bytes: new Uint8Array(0) }, key: {}, members }, SUIT_PARAMETER_IMAGE_DIGEST);
  }
  if (digests.length === 0) throw new SuitError('glaze_digest_mismatch', `image-digest: expected ${want}, came a manifest with no image digest`);
  for (const d of digests) {
    const digest = parseDigest(decodeCbor(d), 'image-digest');
    const got = Buffer.from(digest.bytes).toString('hex');
    if (digest.alg !== SHA256 || got !== want) throw new SuitError('glaze_digest_mismatch', `image-digest: expected SHA-256 ${want}, came ${digest.alg === SHA256 ? got : `alg ${digest.alg}`}`);
  }
}
