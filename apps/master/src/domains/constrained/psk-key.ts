import { openSecretKeyFile } from '../enrollment/ca-dir.ts';
import type { PskWrapKey } from './service.ts';

/**
 * The key that seals DTLS PSKs in the database: `<ca-dir>/psk-wrap.key` (32 random bytes, hex,
 * mode 0600), made on first start like token-key.pem. A database dump without it reveals no PSK.
 */
export async function openPskWrapKey(dir: string): Promise<PskWrapKey> {
  const key = await openSecretKeyFile(dir, 'psk-wrap.key');
  return async () => key;
}
