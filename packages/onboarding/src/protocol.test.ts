import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign } from 'node:crypto';
import { ProofError, signProof, signProofWith, signTo1d, verifyProof, verifyTo1d } from './protocol.ts';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProofError) return e.code;
    throw e;
  }
  return 'accepted';
};

describe('Z1 rendezvous and TO2 proofs', () => {
  it('a to1d verifies under the owner key only, until it expires', () => {
    const owner = p256();
    const guid = new Uint8Array(randomBytes(16));
    const t = signTo1d(owner.privateKey, { guid, addresses: ['http://127.0.0.1:8080'], expiresAt: 2000 });
    expect(verifyTo1d(t, owner.publicKey, 1000)).toEqual({ guid, addresses: ['http://127.0.0.1:8080'], expiresAt: 2000 });
    expect(code(() => verifyTo1d(t, p256().publicKey, 1000))).toBe('proof_invalid');
    expect(code(() => verifyTo1d(t, owner.publicKey, 2000))).toBe('proof_expired');
    const bad = signTo1d(owner.privateKey, { guid, addresses: ['ftp://x'], expiresAt: 2000 });
    expect(code(() => verifyTo1d(bad, owner.publicKey, 1000))).toBe('proof_malformed');
  });

  it('a proof made for one step is refused at another, and by any other key', () => {
    const device = p256();
    const nonce = new Uint8Array(randomBytes(16));
    const proof = signProof(device.privateKey, 'tips-to1-device', [nonce]);
    expect(verifyProof(proof, device.publicKey, 'tips-to1-device')).toEqual([nonce]);
    expect(code(() => verifyProof(proof, device.publicKey, 'tips-to2-device'))).toBe('proof_invalid');
    expect(code(() => verifyProof(proof, p256().publicKey, 'tips-to1-device'))).toBe('proof_invalid');
    const flipped = Uint8Array.from(proof);
    flipped[flipped.length - 3]! ^= 1;
    expect(code(() => verifyProof(flipped, device.publicKey, 'tips-to1-device'))).toBe('proof_invalid');
    expect(code(() => verifyProof(new Uint8Array([1, 2, 3]), device.publicKey, 'tips-to1-device'))).toBe('proof_malformed');
  });

  it('a signer that holds its key elsewhere (a TPM) makes the same proof; another key does not verify', () => {
    const device = p256();
    const nonce = new Uint8Array(randomBytes(16));
    const signer = { publicKey: device.publicKey, sign: (data: Uint8Array) => new Uint8Array(sign('sha256', data, { key: device.privateKey, dsaEncoding: 'ieee-p1363' })) };
    const proof = signProofWith(signer, 'tips-to2-device', [nonce]);
    expect(verifyProof(proof, device.publicKey, 'tips-to2-device')).toEqual([nonce]);
    expect(code(() => verifyProof(proof, p256().publicKey, 'tips-to2-device'))).toBe('proof_invalid');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(code(() => signProofWith({ publicKey: p384.publicKey, sign: () => new Uint8Array(96) }, 'tips-to2-device', [nonce]))).toBe('proof_malformed');
  });
});
