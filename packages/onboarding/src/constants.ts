/**
 * Numbers from FIDO Device Onboard 1.1 (FIDO Alliance Proposed Standard, 2022), named as the
 * specification names them. Only what TIPS vouchers use is here.
 */

/** Protocol version 1.01 (FDO 1.1 keeps 101 on the wire). */
export const FDO_PROTOCOL_VERSION = 101;

/** Hash / HMac types (FDO §3.3.2; COSE algorithm numbers). */
export const HASH_SHA256 = -16;
export const HASH_SHA384 = -43;
export const HMAC_SHA256 = 5;
export const HMAC_SHA384 = 6;

/** Public key types (pkType, FDO §3.3.4). */
export const PK_TYPE_SECP256R1 = 10;
export const PK_TYPE_SECP384R1 = 11;

/** Public key encodings (pkEnc): X509 = the SubjectPublicKeyInfo DER. */
export const PK_ENC_CRYPTO = 0;
export const PK_ENC_X509 = 1;
export const PK_ENC_X5CHAIN = 2;
export const PK_ENC_COSEKEY = 3;

/** RVVariable (FDO §3.7.1). */
export const RV_DEV_ONLY = 0;
export const RV_OWNER_ONLY = 1;
export const RV_IP_ADDRESS = 2;
export const RV_DEV_PORT = 3;
export const RV_OWNER_PORT = 4;
export const RV_DNS = 5;
export const RV_PROTOCOL = 12;

/** RVProtocolValue. */
export const RV_PROT_REST = 0;
export const RV_PROT_HTTP = 1;
export const RV_PROT_HTTPS = 2;

/** COSE algorithms the owner signatures use (ECDSA with the curve's hash, as FDO requires). */
export const COSE_ES256 = -7;
export const COSE_ES384 = -35;

/** Sizes. */
export const GUID_BYTES = 16;
export const HMAC_SECRET_BYTES = 32;
/** More hops than any supply chain has; a bound so a hostile voucher cannot make us verify forever. */
export const MAX_ENTRIES = 32;
/** A voucher larger than this is refused before it is decoded. */
export const MAX_VOUCHER_BYTES = 64 * 1024;

/**
 * The gateway's onboarding relay (issue 11, TIPS-specific): a device whose MAC nobody declared
 * reaches exactly this TCP port of its gateway — the router its DHCP lease named (option 3) — and
 * there only these routes, which the gateway forwards to its master over its signed uplink. The
 * probe is answered by the relay itself.
 */
export const ONBOARDING_RELAY_PORT = 8071;
export const ONBOARDING_RELAY_PROBE = '/api/onboarding-relay/v1';
export const ONBOARDING_RELAY_ROUTES = {
  '/api/rendezvous/v1/hello': 'to1-hello',
  '/api/rendezvous/v1/prove': 'to1-prove',
  '/api/onboarding/v1/hello': 'to2-hello',
  '/api/onboarding/v1/prove': 'to2-prove',
} as const;
