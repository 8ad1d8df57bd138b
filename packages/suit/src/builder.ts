/**
 * Manifest builder (S8): from high-level inputs to a signed SUIT envelope, in either delivery
 * mode (S2): the payload integrated in the envelope, or referenced by URI and fetched later.
 */
import { createHash } from 'node:crypto';
import { type CborMap, type CborValue, encodeCbor, wrapBstr } from './cbor.ts';
import {
  SHA256,
  SUIT_CONDITION_CLASS_IDENTIFIER,
  SUIT_CONDITION_IMAGE_MATCH,
  SUIT_CONDITION_VENDOR_IDENTIFIER,
  SUIT_DIRECTIVE_FETCH,
  SUIT_DIRECTIVE_INVOKE,
  SUIT_DIRECTIVE_OVERRIDE_PARAMETERS,
  SUIT_INSTALL,
  SUIT_INVOKE,
  SUIT_PARAMETER_CLASS_IDENTIFIER,
  SUIT_PARAMETER_IMAGE_DIGEST,
  SUIT_PARAMETER_IMAGE_SIZE,
  SUIT_PARAMETER_URI,
  SUIT_PARAMETER_VENDOR_IDENTIFIER,
  SUIT_TEXT,
  SUIT_VALIDATE,
} from './constants.ts';
import { coseMac0Create, coseSign1Sign, HEADER_ALG, HEADER_KID } from './cose.ts';
import { SuitError } from './errors.ts';
import { type CoseKey, defaultAlgFor } from './keys.ts';
import {
  type ComponentId,
  decodeEnvelope,
  encodeDigest,
  encodeEnvelope,
  encodeManifest,
  type SeverableMember,
  type SuitCommand,
  type SuitEnvelope,
  type SuitManifest,
  sequenceFrom,
} from './manifest.ts';
import { classIdFrom, vendorIdFromDomain } from './uuid.ts';
import { digestMatches, digestWith } from './verify.ts';

/** Report on success and failure (bits 0 and 1), as the specification's examples do. */
const REPORT_BOTH = 15;

export interface BuildInput {
  /** Vendor domain (vendor ID = UUID5(DNS, domain)), or the vendor ID itself. */
  vendorDomain?: string;
  vendorId?: Uint8Array;
  /** Class info (class ID = UUID5(vendor ID, class info)), or the class ID itself. */
  classInfo?: string;
  classId?: Uint8Array;
  /** The component (storage location): one name, or a full SUIT_Component_Identifier. */
  component: string | ComponentId;
  sequenceNumber: number | bigint;
  /** The payload bytes; for URI delivery its SHA-256 and size may be given instead. */
  payload?: Uint8Array;
  payloadSha256?: Uint8Array;
  payloadSize?: number;
  /** 'integrated': payload inside the envelope under `#name`; 'uri': fetched from `uri`. */
  delivery: { mode: 'integrated'; name?: string } | { mode: 'uri'; uri: string };
  /** Optional human text (manifest description), severed into the envelope when `severText`. */
  text?: string;
  severText?: boolean;
  /** Add an invoke sequence (boot the component after validation). */
  invoke?: boolean;
  /** Signing key; without one the envelope carries only the digest (unsigned). */
  key?: CoseKey;
  alg?: number;
  kid?: Uint8Array;
}

function componentIdOf(c: string | ComponentId): ComponentId {
  return typeof c === 'string' ? [new Uint8Array(Buffer.from(c, 'utf8'))] : c;
}

function policy(id: number): SuitCommand {
  return { id, arg: { kind: 'policy', policy: REPORT_BOTH } };
}

/** Builds the manifest and envelope (unsigned unless `key` is given). */
export function buildEnvelope(input: BuildInput): Uint8Array {
  const vendorId = input.vendorId ?? (input.vendorDomain ? vendorIdFromDomain(input.vendorDomain) : undefined);
  if (!vendorId) throw new SuitError('suit_missing_member', 'vendorDomain: expected a vendor domain or vendor ID, came none');
  const classId = input.classId ?? (input.classInfo !== undefined ? classIdFrom(vendorId, input.classInfo) : undefined);
  if (!classId) throw new SuitError('suit_missing_member', 'classInfo: expected class info or a class ID, came none');
  let sha: Uint8Array;
  let size: number;
  if (input.payload) {
    sha = new Uint8Array(createHash('sha256').update(input.payload).digest());
    size = input.payload.length;
    if (input.payloadSha256 && Buffer.compare(Buffer.from(sha), Buffer.from(input.payloadSha256)) !== 0) {
      throw new SuitError('glaze_digest_mismatch', 'payloadSha256: expected the SHA-256 of the payload, came another digest');
    }
  } else if (input.payloadSha256 && input.payloadSize !== undefined && input.delivery.mode === 'uri') {
    sha = input.payloadSha256;
    size = input.payloadSize;
  } else throw new SuitError('suit_missing_member', 'payload: expected the payload (or its SHA-256 and size for URI delivery), came none');
  if (sha.length !== 32) throw new SuitError('suit_bad_value', `payloadSha256: expected 32 bytes, came ${sha.length}`);
  if (typeof input.sequenceNumber === 'number' && !(Number.isSafeInteger(input.sequenceNumber) && input.sequenceNumber >= 0)) {
    throw new SuitError('suit_bad_value', `sequenceNumber: expected a non-negative integer, came ${input.sequenceNumber}`);
  }

  const component = componentIdOf(input.component);
  const integratedName = input.delivery.mode === 'integrated' ? `#${(input.delivery.name ?? 'payload').replace(/^#/, '')}` : undefined;
  const uri = input.delivery.mode === 'uri' ? input.delivery.uri : integratedName!;

  const shared: SuitCommand[] = [
    {
      id: SUIT_DIRECTIVE_OVERRIDE_PARAMETERS,
      arg: {
        kind: 'parameters',
        parameters: new Map<number, CborValue>([
          [SUIT_PARAMETER_VENDOR_IDENTIFIER, vendorId],
          [SUIT_PARAMETER_CLASS_IDENTIFIER, classId],
          [SUIT_PARAMETER_IMAGE_DIGEST, encodeCbor(encodeDigest({ alg: SHA256, bytes: sha }))],
          [SUIT_PARAMETER_IMAGE_SIZE, size],
        ]),
      },
    },
    policy(SUIT_CONDITION_VENDOR_IDENTIFIER),
    policy(SUIT_CONDITION_CLASS_IDENTIFIER),
  ];
  const install: SuitCommand[] = [
    { id: SUIT_DIRECTIVE_OVERRIDE_PARAMETERS, arg: { kind: 'parameters', parameters: new Map<number, CborValue>([[SUIT_PARAMETER_URI, uri]]) } },
    policy(SUIT_DIRECTIVE_FETCH),
    policy(SUIT_CONDITION_IMAGE_MATCH),
  ];
  const sequences = new Map([[SUIT_VALIDATE, sequenceFrom([policy(SUIT_CONDITION_IMAGE_MATCH)])]]);
  if (input.invoke) sequences.set(SUIT_INVOKE, sequenceFrom([policy(SUIT_DIRECTIVE_INVOKE)]));
  const severable = new Map<number, SeverableMember>([[SUIT_INSTALL, { severed: false, bytes: new Uint8Array(0), sequence: sequenceFrom(install) }]]);
  const severed = new Map<number, Uint8Array>();
  if (input.text !== undefined) {
    const textMap: CborMap = new Map<CborValue, CborValue>([['en-US', new Map<CborValue, CborValue>([[1, input.text]])]]);
    const textBytes = encodeCbor(textMap);
    if (input.severText) {
      severable.set(SUIT_TEXT, { severed: true, digest: { alg: SHA256, bytes: digestWith(SHA256, wrapBstr(textBytes)) } });
      severed.set(SUIT_TEXT, textBytes);
    } else severable.set(SUIT_TEXT, { severed: false, bytes: textBytes, value: textMap });
  }
  const manifest: SuitManifest = {
    version: 1,
    sequenceNumber: input.sequenceNumber,
    common: { bytes: new Uint8Array(0), components: [component], sharedSequence: sequenceFrom(shared) },
    sequences,
    severable,
  };
  const manifestBytes = encodeManifest(manifest);
  const integrated = new Map<string, Uint8Array>();
  if (integratedName) integrated.set(integratedName, input.payload!);
  const env: SuitEnvelope = {
    tagged: true,
    manifestBytes,
    manifestTagged: false,
    manifest,
    severed,
    integrated,
    authentication: { digestBytes: manifestDigestBytes(manifestBytes), digest: { alg: SHA256, bytes: digestWith(SHA256, wrapBstr(manifestBytes)) }, blocks: [] },
  };
  const unsigned = encodeEnvelope(env);
  return input.key ? signEnvelope(unsigned, input.key, { ...(input.alg !== undefined ? { alg: input.alg } : {}), ...(input.kid ? { kid: input.kid } : {}) }) : unsigned;
}

function manifestDigestBytes(manifestBytes: Uint8Array): Uint8Array {
  return encodeCbor(encodeDigest({ alg: SHA256, bytes: digestWith(SHA256, wrapBstr(manifestBytes)) }));
}

/**
 * Adds a COSE_Sign1 (or COSE_Mac0 for a symmetric key) over the manifest digest. Existing
 * signatures are kept when the digest they sign still matches the manifest, dropped otherwise.
 */
export function signEnvelope(envelope: Uint8Array, key: CoseKey, options: { alg?: number; kid?: Uint8Array } = {}): Uint8Array {
  const env = decodeEnvelope(envelope);
  let auth = env.authentication;
  if (!auth || !digestMatches(auth.digest, wrapBstr(env.manifestBytes))) {
    auth = { digestBytes: manifestDigestBytes(env.manifestBytes), digest: { alg: SHA256, bytes: digestWith(SHA256, wrapBstr(env.manifestBytes)) }, blocks: [] };
  }
  const alg = options.alg ?? defaultAlgFor(key);
  const protectedHeaders: CborMap = new Map([[HEADER_ALG, alg]]);
  const unprotectedHeaders: CborMap = new Map();
  const kid = options.kid ?? key.kid;
  if (kid) unprotectedHeaders.set(HEADER_KID, kid);
  const input = { protectedHeaders, unprotectedHeaders, payload: auth.digestBytes, detached: true };
  const block = key.secret ? coseMac0Create(input, key) : coseSign1Sign(input, key);
  env.authentication = { ...auth, blocks: [...auth.blocks, block] };
  return encodeEnvelope(env);
}
