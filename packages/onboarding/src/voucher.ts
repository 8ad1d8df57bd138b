/**
 * Ownership vouchers (issue 11, Z3) modelled on FIDO Device Onboard 1.1 §3.4.4:
 *
 *   OwnershipVoucher = [ OVProtVer, OVHeaderTag: bstr .cbor OVHeader, OVHeaderHMac: HMac,
 *                        OVDevCertChain: [* bstr] / null, OVEntryArray: [* OVEntry] ]
 *   OVHeader = [ OVHProtVer, OVGuid, OVRVInfo, OVDeviceInfo, OVPubKey, OVDevCertChainHash / null ]
 *   OVEntry = COSE_Sign1 over OVEntryPayload = [ OVEHashPrevEntry, OVEHashHdrInfo, OVEExtra / null, OVEPubKey ]
 *
 * Entry 0 is signed by the manufacturer key of the header; entry i by the key entry i-1 names. The
 * last entry's key is the current owner. docs/onboarding-vouchers.md maps each field and says
 * where TIPS differs. Verification is staged: `decodeVoucher` → `verifyVoucherChain`
 * (ChainVerifiedVoucher) → `checkVoucherOwner` (VerifiedVoucher, the only type an importer takes).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { type CborValue, CborTag, coseSign1Sign, coseSign1Verify, decodeCbor, encodeCbor, parseCoseSingle, SuitError, type CoseSingle } from '@tips/suit';
import {
  decodeHash,
  decodePublicKey,
  decodeRendezvous,
  digest,
  encodeHash,
  encodePublicKey,
  encodeRendezvous,
  expectArray,
  expectBytes,
  expectInt,
  expectText,
  type FdoHash,
  type FdoPublicKey,
  hmac,
  keyFingerprint,
  malformed,
  publicKeyType,
  type RendezvousInfo,
  rendezvousUrls,
  sameHash,
  sameKey,
  toFdoPublicKey,
} from './codec.ts';
import {
  COSE_ES256,
  COSE_ES384,
  FDO_PROTOCOL_VERSION,
  GUID_BYTES,
  HASH_SHA256,
  HASH_SHA384,
  HMAC_SECRET_BYTES,
  HMAC_SHA256,
  HMAC_SHA384,
  MAX_ENTRIES,
  MAX_VOUCHER_BYTES,
  PK_ENC_X509,
  PK_TYPE_SECP384R1,
} from './constants.ts';
import { VoucherError } from './errors.ts';

const COSE_SIGN1_TAG = 18;
const HEADER_ALG = 1;

export interface VoucherHeader {
  protocolVersion: number;
  guid: Uint8Array;
  rendezvous: RendezvousInfo;
  deviceInfo: string;
  manufacturerKey: FdoPublicKey;
  deviceCertChainHash: FdoHash | null;
}

export interface VoucherEntryPayload {
  prevHash: FdoHash;
  headerInfoHash: FdoHash;
  extra: Uint8Array | null;
  nextOwnerKey: FdoPublicKey;
}

export interface VoucherEntry {
  /** The entry as it travels (tagged COSE_Sign1): what the next entry's OVEHashPrevEntry covers. */
  bytes: Uint8Array;
  cose: CoseSingle;
  payload: VoucherEntryPayload;
}

export interface Voucher {
  protocolVersion: number;
  /** The OVHeader exactly as signed over (the content of the OVHeaderTag bstr). */
  headerBytes: Uint8Array;
  header: VoucherHeader;
  headerHmac: FdoHash;
  deviceCertChain: Uint8Array[] | null;
  entries: VoucherEntry[];
}

/** The hash type FDO pairs with a key type: SHA-384 for SECP384R1, SHA-256 otherwise. */
const hashAlgFor = (k: FdoPublicKey) => (k.type === PK_TYPE_SECP384R1 ? HASH_SHA384 : HASH_SHA256);
const coseAlgFor = (k: FdoPublicKey) => (k.type === PK_TYPE_SECP384R1 ? COSE_ES384 : COSE_ES256);

export function guidToString(guid: Uint8Array): string {
  const h = Buffer.from(guid).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const GUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
/** A GUID from its text form (with or without dashes), or undefined. */
export function parseGuid(text: string): Uint8Array | undefined {
  if (!GUID_RE.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text.replaceAll('-', ''), 'hex'));
}

// ---------------------------------------------------------------------------- decode

function decodeHeader(bytes: Uint8Array): VoucherHeader {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, { maxDepth: 16 });
  } catch (err) {
    throw new VoucherError('voucher_malformed', `OVHeader: ${(err as Error).message}`, 'header');
  }
  const [pv, guid, rv, info, pub, chainHash] = expectArray(v, 6, 'header', 'OVHeader');
  const protocolVersion = expectInt(pv, 'header', 'OVHeader.OVHProtVer');
  if (protocolVersion !== FDO_PROTOCOL_VERSION) throw new VoucherError('voucher_unsupported', `OVHeader.OVHProtVer: expected ${FDO_PROTOCOL_VERSION}, came ${protocolVersion}`, 'header');
  return {
    protocolVersion,
    guid: expectBytes(guid, 'header', 'OVHeader.OVGuid', GUID_BYTES),
    rendezvous: decodeRendezvous(rv, 'header', 'OVHeader.OVRVInfo'),
    deviceInfo: expectText(info, 'header', 'OVHeader.OVDeviceInfo'),
    manufacturerKey: decodePublicKey(pub, 'header', 'OVHeader.OVPubKey'),
    deviceCertChainHash: chainHash === null ? null : decodeHash(chainHash, 'header', 'OVHeader.OVDevCertChainHash'),
  };
}

function decodeEntry(value: CborValue, index: number): VoucherEntry {
  const path = `OVEntryArray[${index}]`;
  if (!(value instanceof CborTag) || value.tag !== COSE_SIGN1_TAG) return malformed(index, path, 'a COSE_Sign1 (tag 18)', value);
  let cose: CoseSingle;
  try {
    cose = parseCoseSingle(value, 'sign1');
  } catch (err) {
    throw new VoucherError('voucher_malformed', `${path}: ${(err as Error).message}`, index);
  }
  if (cose.payload === null) throw new VoucherError('voucher_malformed', `${path}: expected an attached OVEntryPayload, came a detached one`, index);
  let p: CborValue;
  try {
    p = decodeCbor(cose.payload, { maxDepth: 16 });
  } catch (err) {
    throw new VoucherError('voucher_malformed', `${path}.payload: ${(err as Error).message}`, index);
  }
  const [prev, hdr, extra, pub] = expectArray(p, 4, index, `${path}.payload`);
  if (extra !== null && !(extra instanceof Uint8Array)) malformed(index, `${path}.payload.OVEExtra`, 'null or a byte string', extra);
  return {
    bytes: encodeCbor(value),
    cose,
    payload: {
      prevHash: decodeHash(prev, index, `${path}.payload.OVEHashPrevEntry`),
      headerInfoHash: decodeHash(hdr, index, `${path}.payload.OVEHashHdrInfo`),
      extra: extra as Uint8Array | null,
      nextOwnerKey: decodePublicKey(pub, index, `${path}.payload.OVEPubKey`),
    },
  };
}

/** Decodes a voucher strictly (deterministic CBOR, exact shapes). Signatures are not checked here. */
export function decodeVoucher(bytes: Uint8Array): Voucher {
  if (bytes.length > MAX_VOUCHER_BYTES) throw new VoucherError('voucher_malformed', `expected a voucher of at most ${MAX_VOUCHER_BYTES} bytes, came ${bytes.length}`);
  let v: CborValue;
  try {
    v = decodeCbor(bytes, { maxDepth: 24 });
  } catch (err) {
    throw new VoucherError('voucher_malformed', `OwnershipVoucher: ${(err as Error).message}`);
  }
  const [pv, headerTag, headerHmac, chain, entries] = expectArray(v, 5, 'voucher', 'OwnershipVoucher');
  const protocolVersion = expectInt(pv, 'voucher', 'OwnershipVoucher.OVProtVer');
  if (protocolVersion !== FDO_PROTOCOL_VERSION) throw new VoucherError('voucher_unsupported', `OVProtVer: expected ${FDO_PROTOCOL_VERSION}, came ${protocolVersion}`);
  const headerBytes = expectBytes(headerTag, 'header', 'OwnershipVoucher.OVHeaderTag');
  const header = decodeHeader(headerBytes);
  let deviceCertChain: Uint8Array[] | null = null;
  if (chain !== null) {
    if (!Array.isArray(chain) || chain.length === 0) malformed('voucher', 'OwnershipVoucher.OVDevCertChain', 'null or a non-empty array', chain);
    deviceCertChain = chain.map((c, i) => expectBytes(c, 'voucher', `OVDevCertChain[${i}]`));
  }
  if (!Array.isArray(entries)) malformed('voucher', 'OwnershipVoucher.OVEntryArray', 'an array', entries);
  if (entries.length > MAX_ENTRIES) throw new VoucherError('voucher_malformed', `OVEntryArray: expected at most ${MAX_ENTRIES} entries, came ${entries.length}`);
  return {
    protocolVersion,
    headerBytes,
    header,
    headerHmac: decodeHash(headerHmac, 'header', 'OwnershipVoucher.OVHeaderHMac', 'hmac'),
    deviceCertChain,
    entries: entries.map(decodeEntry),
  };
}

export function encodeVoucher(v: Voucher): Uint8Array {
  return encodeCbor([v.protocolVersion, v.headerBytes, encodeHash(v.headerHmac), v.deviceCertChain, v.entries.map((e) => decodeCbor(e.bytes))]);
}

// ---------------------------------------------------------------------------- hashes that link the chain

/** OVEHashPrevEntry of entry 0: the hash of OVHeader ‖ OVHeaderHMac (each as encoded). */
export function headerLinkHash(v: Voucher, alg: number): FdoHash {
  return digest(alg, v.headerBytes, encodeCbor(encodeHash(v.headerHmac)));
}

/** OVEHashHdrInfo: the hash of OVGuid ‖ OVDeviceInfo. */
export function headerInfoHash(h: VoucherHeader, alg: number): FdoHash {
  return digest(alg, h.guid, new TextEncoder().encode(h.deviceInfo));
}

/** What entry `index` must hash as its OVEHashPrevEntry. */
function prevLinkHash(v: Voucher, index: number, alg: number): FdoHash {
  return index === 0 ? headerLinkHash(v, alg) : digest(alg, v.entries[index - 1]!.bytes);
}

/** The key that owns the device now: the last entry's, or the manufacturer's while there is none. */
export function currentOwner(v: Voucher): FdoPublicKey {
  return v.entries.length === 0 ? v.header.manufacturerKey : v.entries[v.entries.length - 1]!.payload.nextOwnerKey;
}

// ---------------------------------------------------------------------------- make

export interface CreateVoucherInput {
  /** 16 random bytes (the caller's randomness: tests pass fixed ones). */
  guid: Uint8Array;
  deviceInfo: string;
  rendezvous: RendezvousInfo;
  /** The manufacturer's key (public, or the private key whose public half goes in the header). */
  manufacturerKey: KeyObject;
  /** The device's key: its public half is bound in the header. */
  deviceKey: KeyObject;
  /** The device's HMAC secret (32 bytes), kept in its credential; the header HMAC is made with it. */
  hmacSecret: Uint8Array;
}

export interface DeviceCredential {
  active: boolean;
  protocolVersion: number;
  hmacSecret: Uint8Array;
  deviceInfo: string;
  guid: Uint8Array;
  rendezvous: RendezvousInfo;
  /** Hash of the manufacturer's PublicKey (its CBOR encoding), the device's root of trust for TO2. */
  manufacturerKeyHash: FdoHash;
}

/**
 * FDO's DI output: the device credential and a voucher with no entry yet (the manufacturer owns
 * the device until it signs it over with `extendVoucher`).
 */
export function createVoucher(input: CreateVoucherInput): { voucher: Uint8Array; credential: Uint8Array } {
  if (input.guid.length !== GUID_BYTES) throw new VoucherError('voucher_bad_input', `expected a GUID of ${GUID_BYTES} bytes, came ${input.guid.length}`);
  if (input.hmacSecret.length !== HMAC_SECRET_BYTES) throw new VoucherError('voucher_bad_input', `expected an HMAC secret of ${HMAC_SECRET_BYTES} bytes, came ${input.hmacSecret.length}`);
  if (input.deviceInfo.length === 0 || input.deviceInfo.length > 1024) throw new VoucherError('voucher_bad_input', 'expected device info of 1 to 1024 characters');
  const manufacturerKey = toFdoPublicKey(input.manufacturerKey);
  const device = toFdoPublicKey(input.deviceKey);
  const alg = hashAlgFor(manufacturerKey);
  const chain = [device.body];
  const header: VoucherHeader = {
    protocolVersion: FDO_PROTOCOL_VERSION,
    guid: input.guid,
    rendezvous: input.rendezvous,
    deviceInfo: input.deviceInfo,
    manufacturerKey,
    deviceCertChainHash: digest(alg, ...chain),
  };
  const headerBytes = encodeCbor([
    header.protocolVersion,
    header.guid,
    encodeRendezvous(header.rendezvous),
    header.deviceInfo,
    encodePublicKey(manufacturerKey),
    encodeHash(header.deviceCertChainHash!),
  ]);
  const headerHmac = hmac(alg === HASH_SHA384 ? HMAC_SHA384 : HMAC_SHA256, input.hmacSecret, headerBytes);
  const voucher: Voucher = { protocolVersion: FDO_PROTOCOL_VERSION, headerBytes, header, headerHmac, deviceCertChain: chain, entries: [] };
  const credential: DeviceCredential = {
    active: true,
    protocolVersion: FDO_PROTOCOL_VERSION,
    hmacSecret: input.hmacSecret,
    deviceInfo: input.deviceInfo,
    guid: input.guid,
    rendezvous: input.rendezvous,
    manufacturerKeyHash: digest(alg, encodeCbor(encodePublicKey(manufacturerKey))),
  };
  return { voucher: encodeVoucher(voucher), credential: encodeDeviceCredential(credential) };
}

/**
 * Adds one entry: the current owner (`currentOwnerKey`, private) signs the device over to
 * `nextOwner`. Refused when the key given is not the voucher's current owner.
 */
export function extendVoucher(bytes: Uint8Array, currentOwnerKey: KeyObject, nextOwner: KeyObject, extra: Uint8Array | null = null): Uint8Array {
  if (currentOwnerKey.type !== 'private') throw new VoucherError('voucher_bad_input', 'expected the current owner\'s private key to sign the new entry, came a public key');
  const v = decodeVoucher(bytes);
  const owner = currentOwner(v);
  const signer = toFdoPublicKey(currentOwnerKey);
  if (!sameKey(owner, signer)) {
    throw new VoucherError(
      'voucher_not_current_owner',
      `the key given (sha256:${keyFingerprint(signer).slice(0, 16)}…) is not this voucher's current owner (sha256:${keyFingerprint(owner).slice(0, 16)}…, ${v.entries.length === 0 ? 'the manufacturer' : `named by entry ${v.entries.length - 1}`})`,
      v.entries.length === 0 ? 'header' : v.entries.length - 1,
    );
  }
  if (v.entries.length >= MAX_ENTRIES) throw new VoucherError('voucher_bad_input', `a voucher holds at most ${MAX_ENTRIES} entries`);
  const next = toFdoPublicKey(nextOwner);
  const alg = hashAlgFor(signer);
  const payload = encodeCbor([encodeHash(prevLinkHash(v, v.entries.length, alg)), encodeHash(headerInfoHash(v.header, alg)), extra, encodePublicKey(next)]);
  const signed = coseSign1Sign({ protectedHeaders: new Map([[HEADER_ALG, coseAlgFor(signer)]]), payload }, { privateKey: currentOwnerKey, publicKey: signer.key });
  const entry = decodeEntry(decodeCbor(signed), v.entries.length);
  return encodeVoucher({ ...v, entries: [...v.entries, entry] });
}

// ---------------------------------------------------------------------------- verify

declare const chainVerified: unique symbol;
declare const ownerVerified: unique symbol;

export interface VoucherFacts {
  guid: string;
  deviceInfo: string;
  rendezvous: RendezvousInfo;
  rendezvousUrls: string[];
  manufacturerKey: FdoPublicKey;
  /** The device key bound in the header (OVDevCertChain, hashed by OVDevCertChainHash). */
  deviceKey: FdoPublicKey;
  /** The key each entry hands the device to, in order; the last is the current owner. */
  owners: FdoPublicKey[];
  currentOwner: FdoPublicKey;
  /** SHA-256 of the voucher as given, hex: the same voucher imported twice is the same import. */
  sha256: string;
}

/** A voucher whose every link holds (header binding, hashes, signatures); owner not yet checked. */
export type ChainVerifiedVoucher = VoucherFacts & { readonly voucher: Voucher; readonly [chainVerified]: true };
/** A voucher whose chain holds and ends at one of the owner's keys: the only thing an importer accepts. */
export type VerifiedVoucher = ChainVerifiedVoucher & { readonly ownerKeyIndex: number; readonly [ownerVerified]: true };

function describeSigner(index: number): string {
  return index === 0 ? 'the manufacturer key of the header (OVPubKey)' : `the key entry ${index - 1} hands ownership to`;
}

/**
 * Stage 2: every link of the chain. The header's OVDevCertChainHash covers the device key; entry 0
 * hashes the header and its HMAC and is signed by the manufacturer; entry i hashes entry i-1 and is
 * signed by the key entry i-1 names; every entry hashes this GUID and device info. The first link
 * that does not hold is the error, with its index.
 */
export function verifyVoucherChain(input: Uint8Array | Voucher): ChainVerifiedVoucher {
  const v = input instanceof Uint8Array ? decodeVoucher(input) : input;
  const bytes = input instanceof Uint8Array ? input : encodeVoucher(v);
  // The device key: the voucher carries it; the header (signed through entry 0) carries its hash.
  if (v.deviceCertChain === null || v.header.deviceCertChainHash === null) {
    throw new VoucherError('voucher_header_mismatch', 'expected a device key (OVDevCertChain) bound by OVDevCertChainHash in the header, came none', 'header');
  }
  const chainHash = digest(v.header.deviceCertChainHash.alg, ...v.deviceCertChain);
  if (!sameHash(chainHash, v.header.deviceCertChainHash)) {
    throw new VoucherError('voucher_header_mismatch', 'OVDevCertChain is not the device key the header names (its hash differs from OVDevCertChainHash): the device key was swapped', 'header');
  }
  const deviceKey = deviceKeyOf(v.deviceCertChain[0]!);
  if (v.entries.length === 0) {
    throw new VoucherError('voucher_no_entries', 'the voucher has no entry: the manufacturer has not signed the device over to anyone (extend it with `tips factory voucher extend`)', 'header');
  }
  let signer = v.header.manufacturerKey;
  v.entries.forEach((e, i) => {
    const expectedPrev = prevLinkHash(v, i, e.payload.prevHash.alg);
    if (!sameHash(expectedPrev, e.payload.prevHash)) {
      throw new VoucherError(
        'entry_prev_hash_mismatch',
        i === 0
          ? 'entry 0: OVEHashPrevEntry is not the hash of the header and its HMAC: the header was changed after the manufacturer signed it'
          : `entry ${i}: OVEHashPrevEntry is not the hash of entry ${i - 1}: entry ${i - 1} was changed, removed or reordered`,
        i,
      );
    }
    if (!sameHash(headerInfoHash(v.header, e.payload.headerInfoHash.alg), e.payload.headerInfoHash)) {
      throw new VoucherError('entry_header_info_mismatch', `entry ${i}: OVEHashHdrInfo is not the hash of this voucher's GUID and device info: the entry belongs to another device`, i);
    }
    try {
      coseSign1Verify(e.cose, [{ publicKey: signer.key }], { algorithms: [coseAlgFor(signer)] });
    } catch (err) {
      if (!(err instanceof SuitError)) throw err;
      throw new VoucherError(
        'entry_signature_invalid',
        `entry ${i}: not signed by ${describeSigner(i)} (sha256:${keyFingerprint(signer).slice(0, 16)}…): ${err.code === 'cose_alg_unsupported' ? `its alg is not ${coseAlgFor(signer)}` : 'the signature does not verify under it'}`,
        i,
      );
    }
    signer = e.payload.nextOwnerKey;
  });
  const owners = v.entries.map((e) => e.payload.nextOwnerKey);
  return {
    voucher: v,
    guid: guidToString(v.header.guid),
    deviceInfo: v.header.deviceInfo,
    rendezvous: v.header.rendezvous,
    rendezvousUrls: rendezvousUrls(v.header.rendezvous),
    manufacturerKey: v.header.manufacturerKey,
    deviceKey,
    owners,
    currentOwner: owners[owners.length - 1]!,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  } as ChainVerifiedVoucher;
}

/** The device key OVDevCertChain carries (TIPS: one SubjectPublicKeyInfo, P-256 or P-384). */
function deviceKeyOf(der: Uint8Array): FdoPublicKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch {
    throw new VoucherError('voucher_malformed', 'OVDevCertChain[0]: expected a SubjectPublicKeyInfo in DER, came bytes that are not one', 'header');
  }
  let type: number;
  try {
    type = publicKeyType(key);
  } catch (err) {
    throw new VoucherError('voucher_unsupported', `OVDevCertChain[0]: ${(err as Error).message}`, 'header');
  }
  return decodePublicKey([type, PK_ENC_X509, der], 'header', 'OVDevCertChain[0]');
}

/**
 * Stage 3: the chain ends at one of `ownerKeys` (this owner's onboarding keys). Anything else is
 * `voucher_wrong_owner` at the last entry, naming the key it ends at.
 */
export function checkVoucherOwner(chain: ChainVerifiedVoucher, ownerKeys: readonly KeyObject[]): VerifiedVoucher {
  const last = chain.voucher.entries.length - 1;
  const index = ownerKeys.findIndex((k) => {
    try {
      return sameKey(toFdoPublicKey(k), chain.currentOwner);
    } catch {
      return false;
    }
  });
  if (index < 0) {
    throw new VoucherError(
      'voucher_wrong_owner',
      `entry ${last}: the chain ends at key sha256:${keyFingerprint(chain.currentOwner).slice(0, 16)}…, which is not one of your onboarding keys (it may belong to a distributor that has not signed it over yet, or to another owner)`,
      last,
    );
  }
  return { ...chain, ownerKeyIndex: index } as VerifiedVoucher;
}

/** All three stages: decode, chain, owner. */
export function verifyVoucher(bytes: Uint8Array, ownerKeys: readonly KeyObject[]): VerifiedVoucher {
  return checkVoucherOwner(verifyVoucherChain(bytes), ownerKeys);
}

// ---------------------------------------------------------------------------- device credential

/** DeviceCredential = [DCActive, DCProtVer, DCHmacSecret, DCDeviceInfo, DCGuid, DCRVInfo, DCPubKeyHash]. */
export function encodeDeviceCredential(c: DeviceCredential): Uint8Array {
  return encodeCbor([c.active, c.protocolVersion, c.hmacSecret, c.deviceInfo, c.guid, encodeRendezvous(c.rendezvous), encodeHash(c.manufacturerKeyHash)]);
}

export function decodeDeviceCredential(bytes: Uint8Array): DeviceCredential {
  try {
    const v = decodeCbor(bytes, { maxDepth: 16 });
    const [active, pv, secret, info, guid, rv, hash] = expectArray(v, 7, 'voucher', 'DeviceCredential');
    if (typeof active !== 'boolean') malformed('voucher', 'DeviceCredential.DCActive', 'a boolean', active);
    return {
      active,
      protocolVersion: expectInt(pv, 'voucher', 'DeviceCredential.DCProtVer'),
      hmacSecret: expectBytes(secret, 'voucher', 'DeviceCredential.DCHmacSecret', HMAC_SECRET_BYTES),
      deviceInfo: expectText(info, 'voucher', 'DeviceCredential.DCDeviceInfo'),
      guid: expectBytes(guid, 'voucher', 'DeviceCredential.DCGuid', GUID_BYTES),
      rendezvous: decodeRendezvous(rv, 'voucher', 'DeviceCredential.DCRVInfo'),
      manufacturerKeyHash: decodeHash(hash, 'voucher', 'DeviceCredential.DCPubKeyHash'),
    };
  } catch (err) {
    throw new VoucherError('credential_invalid', (err as Error).message);
  }
}

/**
 * What the device checks in TO2 before it trusts a voucher an owner shows it: the header HMAC
 * made with its secret, its GUID, and the manufacturer key hash it was given at manufacture.
 */
export function credentialMatchesVoucher(credential: DeviceCredential, v: Voucher): boolean {
  const mac = hmac(v.headerHmac.alg, credential.hmacSecret, v.headerBytes);
  return (
    sameHash(mac, v.headerHmac) &&
    Buffer.compare(credential.guid, v.header.guid) === 0 &&
    sameHash(digest(credential.manufacturerKeyHash.alg, encodeCbor(encodePublicKey(v.header.manufacturerKey))), credential.manufacturerKeyHash)
  );
}
