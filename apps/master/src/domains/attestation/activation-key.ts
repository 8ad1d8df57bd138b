import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withCaDirLock, writeFileAtomic } from '../enrollment/ca-dir.ts';

export const ACTIVATION_KEY_FILE = 'tpm2-activation.key';

/**
 * The key of the tpm2 verifier's activation HMAC (tpm2.ts): `<ca-dir>/tpm2-activation.key` (32
 * random bytes, hex, mode 0600), made on first start like psk-wrap.key. The credential the master
 * hands a TPM in TO2 step 1 is an HMAC under it, and nothing else is kept between the two rounds —
 * so with the key on disk a master restarted between challenge and answer, or another replica
 * sharing the CA directory, still recognises the credential the TPM unwrapped.
 */
export async function openActivationKey(dir: string): Promise<Uint8Array> {
  return withCaDirLock(dir, () => {
    const file = join(dir, ACTIVATION_KEY_FILE);
    if (existsSync(file)) {
      const hex = readFileSync(file, 'utf8').trim();
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} must hold 32 bytes as 64 hex digits`);
      return new Uint8Array(Buffer.from(hex, 'hex'));
    }
    const fresh = new Uint8Array(randomBytes(32));
    writeFileAtomic(file, `${Buffer.from(fresh).toString('hex')}\n`, 0o600);
    return fresh;
  });
}
