/**
 * One error type for vouchers, with a literal code and, for a chain failure, the exact link: the
 * index of the entry that does not hold (or `header`). Code matches on `code`, never on message.
 */
export type VoucherErrorCode =
  /** Not a voucher: CBOR or structure wrong (the path says where). */
  | 'voucher_malformed'
  /** A protocol version, hash, key type or encoding this implementation does not accept. */
  | 'voucher_unsupported'
  /** The header's device-key hash does not cover the device key the voucher carries. */
  | 'voucher_header_mismatch'
  /** No entry: the manufacturer still owns the device; nobody signed it over. */
  | 'voucher_no_entries'
  /** Entry i's signature does not verify under the key that owned the device before it. */
  | 'entry_signature_invalid'
  /** Entry i's OVEHashPrevEntry is not the hash of entry i-1 (of the header and its HMAC for entry 0). */
  | 'entry_prev_hash_mismatch'
  /** Entry i's OVEHashHdrInfo is not the hash of this voucher's GUID and device info. */
  | 'entry_header_info_mismatch'
  /** The chain is sound but its last entry names a key that is not one of this owner's. */
  | 'voucher_wrong_owner'
  /** Extending: the key given is not the voucher's current owner. */
  | 'voucher_not_current_owner'
  /** A device credential (DeviceCredential) that does not decode or does not fit its voucher. */
  | 'credential_invalid'
  /** Input to a builder that cannot make a valid voucher (GUID length, rendezvous address, …). */
  | 'voucher_bad_input';

/** Where a voucher failed: an entry index, or the header (`'header'`), or the whole voucher. */
export type VoucherLink = number | 'header' | 'voucher';

export class VoucherError extends Error {
  constructor(
    readonly code: VoucherErrorCode,
    message: string,
    /** The broken link: the entry index (0 = the manufacturer's entry), or the header. */
    readonly link: VoucherLink = 'voucher',
  ) {
    super(message);
    this.name = 'VoucherError';
  }
}
