import type { TokenClaims } from '@tips/trust';

/**
 * An authorization token (S11): one hop, one audience, a few scopes, minutes of life, bound to the
 * holder's key. Audiences name the receiving end of the hop:
 * `urn:tips:master` (operator→master upload, metal→master pull/register) or
 * `urn:tips:metal:<TIPS ID>` (master→metal push, operator→metal direct manifest).
 */
export interface IssuedToken {
  /** base64url of the CWT (COSE_Sign1). */
  cwt: string;
  /** The same claims as a compact JWT (EdDSA). */
  jwt: string;
  cti: string;
  audience: string;
  subject: string;
  scope: string[];
  expiresAt: string;
}

export interface VerifiedToken {
  claims: TokenClaims;
  format: 'cwt' | 'jwt';
  /** How the holder proved possession of the `cnf` key. */
  pop: 'signature' | 'mtls';
}

/** `<action>:<kind>:<id>` — e.g. `pull:glaze:glz_…`, `update:space:spc_…`, `register:metal:mtl_…`, `update:component:rootfs`. */
export const SCOPE_RE = /^(pull|update|upload|register):(glaze|space|metal|component):([A-Za-z0-9._-]{1,64})$/;
export const AUDIENCE_RE = /^urn:tips:(master|metal:mtl_[0-9a-hjkmnp-tv-z]{26})$/;
export const MAX_TOKEN_MINUTES = 60;
export const DEFAULT_TOKEN_MINUTES = 5;
export const CHALLENGE_SECONDS = 120;
