/** @tips/onboarding — FDO-style ownership vouchers and device credentials (issue 11). Pure, no I/O. */
export { armorVoucher, readVoucherFile } from './armor.ts';
export {
  type FdoHash,
  type FdoPublicKey,
  keyFingerprint,
  publicKeyType,
  type RendezvousInfo,
  type RendezvousInstruction,
  rendezvousFromUrls,
  rendezvousUrls,
  toFdoPublicKey,
} from './codec.ts';
export * from './constants.ts';
export { VoucherError, type VoucherErrorCode, type VoucherLink } from './errors.ts';
export {
  type ChainVerifiedVoucher,
  checkVoucherOwner,
  type CreateVoucherInput,
  createVoucher,
  credentialMatchesVoucher,
  currentOwner,
  type DeviceCredential,
  decodeDeviceCredential,
  decodeVoucher,
  encodeDeviceCredential,
  encodeVoucher,
  extendVoucher,
  guidToString,
  headerInfoHash,
  headerLinkHash,
  parseGuid,
  type VerifiedVoucher,
  type Voucher,
  type VoucherEntry,
  type VoucherFacts,
  type VoucherHeader,
  verifyVoucher,
  verifyVoucherChain,
} from './voucher.ts';
export {
  MAX_NONCE,
  MIN_NONCE,
  nonceDigest,
  nonceFrom,
  type ProofContext,
  ProofError,
  type ProofErrorCode,
  sameBytes,
  signProof,
  signProofWith,
  type ProofSigner,
  signTo1d,
  type To1d,
  verifyProof,
  verifyTo1d,
} from './protocol.ts';
export { type DeviceFacts, type DeviceSetup, deviceFactsDigest, makeSetupKey, openSetup, parseDeviceSetup, type ReportedInterface, type SetupKey, sealSetup } from './setup.ts';
