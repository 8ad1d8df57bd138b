import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { createVoucher, extendVoucher, rendezvousFromUrls } from '@tips/onboarding';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

/**
 * A voucher made as the factory makes it — manufacturer, then `hops - 1` distributors, then the
 * owner key given (PEM or key) — for tests of the owner side.
 */
export function voucherFor(owner: string | KeyObject, opts: { hops?: number; guid?: Uint8Array; deviceInfo?: string } = {}) {
  const mfr = p256();
  const device = p256();
  const { voucher, credential } = createVoucher({
    guid: opts.guid ?? new Uint8Array(randomBytes(16)),
    deviceInfo: opts.deviceInfo ?? 'vendor=acme;class=sensor',
    rendezvous: rendezvousFromUrls(['https://rv.example.com:8041']),
    manufacturerKey: mfr.privateKey,
    deviceKey: device.publicKey,
    hmacSecret: new Uint8Array(randomBytes(32)),
  });
  let bytes = voucher;
  let holder = mfr.privateKey;
  for (let i = 1; i < (opts.hops ?? 2); i++) {
    const next = p256();
    bytes = extendVoucher(bytes, holder, next.publicKey);
    holder = next.privateKey;
  }
  const ownerKey = typeof owner === 'string' ? createPublicKey(owner) : owner;
  const full = extendVoucher(bytes, holder, ownerKey);
  return { voucher: full, beforeLastHop: bytes, lastHolder: holder, credential, device, mfr };
}
