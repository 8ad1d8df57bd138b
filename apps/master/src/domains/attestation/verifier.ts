/**
 * Attestation service (Z2): the port every verifier implements. The onboarding flow (rendezvous /
 * TO2) picks a verifier by the bootstrapping profile's `attestation` and calls `verify` with the
 * evidence the device sent over the channel the proof established.
 */
export type VerifierName = 'software-key' | 'tpm2';

export interface AttestationPolicy {
  /** PCR indices the quote must cover (tpm2 only). */
  pcrs?: number[];
  /** Expected hex SHA-256 digest over the selected PCR values (tpm2 only). */
  pcrDigest?: string;
}

export interface AttestationContext {
  /** The fresh nonce the master issued for this onboarding (single use). */
  nonce: Uint8Array;
  /** SubjectPublicKeyInfo DER of the device key the ownership voucher binds. */
  deviceKeySpki: Uint8Array;
  policy: AttestationPolicy;
}

export type AttestationResult = { ok: true; claims: Record<string, unknown> } | { ok: false; reason: string };

export interface AttestationVerifier {
  readonly name: VerifierName;
  verify(evidence: Uint8Array, ctx: AttestationContext): Promise<AttestationResult>;
}
