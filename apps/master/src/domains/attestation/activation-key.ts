import { openSecretKeyFile } from '../enrollment/ca-dir.ts';

export const ACTIVATION_KEY_FILE = 'tpm2-activation.key';

/**
 * The key of the tpm2 verifier's activation HMAC (tpm2.ts): `<ca-dir>/tpm2-activation.key` (32
 * random bytes, hex, mode 0600), made on first start like psk-wrap.key. The credential the master
 * hands a TPM in TO2 step 1 is an HMAC under it, and nothing else is kept between the two rounds —
 * so with the key on disk a master restarted between challenge and answer, or another replica
 * sharing the CA directory, still recognises the credential the TPM unwrapped.
 */
export function openActivationKey(dir: string): Promise<Uint8Array> {
  return openSecretKeyFile(dir, ACTIVATION_KEY_FILE);
}
