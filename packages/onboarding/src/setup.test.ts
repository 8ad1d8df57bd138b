import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeSetupKey, openSetup, sealSetup } from './setup.ts';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

describe('Z1 TO2 setup: sealed to the device setup key, signed by the owner', () => {
  const owner = p256();
  const guid = new Uint8Array(randomBytes(16));
  const nonce = new Uint8Array(randomBytes(16));
  const plain = new TextEncoder().encode('{"secret":"est_x"}');

  it('opens only with the device key it was sealed to, for this GUID and nonce, signed by this owner', () => {
    const device = makeSetupKey();
    const sealed = sealSetup(owner.privateKey, guid, nonce, device.publicRaw, plain);
    expect(openSetup(sealed, owner.publicKey, guid, nonce, device)).toEqual(plain);
    expect(Buffer.from(sealed).includes(Buffer.from('est_x'))).toBe(false);
    expect(() => openSetup(sealed, owner.publicKey, guid, nonce, makeSetupKey())).toThrow(/does not decrypt/);
    expect(() => openSetup(sealed, p256().publicKey, guid, nonce, device)).toThrow(/not signed by the expected key/);
    expect(() => openSetup(sealed, owner.publicKey, new Uint8Array(16), nonce, device)).toThrow(/another device or another nonce/);
    expect(() => openSetup(sealed, owner.publicKey, guid, new Uint8Array(16), device)).toThrow(/another device or another nonce/);
  });

  it('refuses a setup key that is not a P-256 point', () => {
    expect(() => sealSetup(owner.privateKey, guid, nonce, new Uint8Array(65), plain)).toThrow(/P-256/);
    expect(() => sealSetup(owner.privateKey, guid, nonce, new Uint8Array(33), plain)).toThrow(/uncompressed/);
  });
});
