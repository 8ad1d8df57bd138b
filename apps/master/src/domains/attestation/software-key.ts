import { createPublicKey } from 'node:crypto';
import { PK_ENC_X509, ProofError, publicKeyType, sameBytes, verifyProof } from '@tips/onboarding';
import type { AttestationVerifier } from './verifier.ts';

/**
 * `software-key` (Z2): the device proves possession of the key its ownership voucher binds — the
 * TO2 proof, a COSE_Sign1 by that key over `[tips-to2-device, guid, nonce, facts digest, setup key]`
 * (docs/onboarding-vouchers.md). Nothing about the device's software state is claimed: that is
 * what `tpm2` adds. Claims: the signed fields, for the onboarding flow to check against its own.
 */
export const softwareKeyVerifier: AttestationVerifier = {
  name: 'software-key',
  async verify(evidence, ctx) {
    let fields: unknown[];
    try {
      // The FDO form from the SPKI we hold (not exported again from the key object: that cost as much as the parse).
      const key = createPublicKey({ key: Buffer.from(ctx.deviceKeySpki), format: 'der', type: 'spki' });
      fields = verifyProof(evidence, { type: publicKeyType(key), encoding: PK_ENC_X509, body: ctx.deviceKeySpki, key }, 'tips-to2-device');
    } catch (e) {
      if (!(e instanceof ProofError)) throw e;
      return { ok: false, reason: `${e.message}: the device did not prove possession of the key its voucher binds` };
    }
    const [guid, nonce, factsDigest, setupKey] = fields;
    if (!(nonce instanceof Uint8Array) || !sameBytes(nonce, ctx.nonce)) return { ok: false, reason: 'the proof is over another nonce than the one this master gave the device' };
    if (!(guid instanceof Uint8Array) || guid.length !== 16) return { ok: false, reason: 'the proof names no device GUID' };
    return { ok: true, claims: { guid, factsDigest: factsDigest instanceof Uint8Array ? factsDigest : null, setupKey: setupKey instanceof Uint8Array ? setupKey : null } };
  },
};
