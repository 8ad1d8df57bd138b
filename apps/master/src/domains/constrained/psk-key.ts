import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { withCaDirLock, writeFileAtomic } from '../enrollment/ca-dir.ts';
import type { PskWrapKey } from './service.ts';

/**
 * The key that seals DTLS PSKs in the database: `<ca-dir>/psk-wrap.key` (32 random bytes, hex,
 * mode 0600), made on first start like token-key.pem. A database dump without it reveals no PSK.
 */
export async function openPskWrapKey(dir: string): Promise<PskWrapKey> {
  const key = await withCaDirLock(dir, () => {
    const file = join(dir, 'psk-wrap.key');
    if (existsSync(file)) {
      const hex = readFileSync(file, 'utf8').trim();
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} must hold 32 bytes as 64 hex digits`);
      return new Uint8Array(Buffer.from(hex, 'hex'));
    }
    const fresh = new Uint8Array(randomBytes(32));
    writeFileAtomic(file, `${Buffer.from(fresh).toString('hex')}\n`, 0o600);
    return fresh;
  });
  return async () => key;
}
