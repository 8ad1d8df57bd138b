import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalString, privateKeyFromSeed, publicKeyPem, signedHeaders, signRequest, verifyRequest } from './sign.ts';

// Vector computed independently with OpenSSL 3 (`openssl pkeyutl -sign -rawin`) from the PKCS#8 key
// wrapping a seed of 32 zero bytes, over the canonical string below.
const VECTOR = {
  method: 'POST',
  pathWithQuery: '/api/gateway/v1/registrations',
  timestamp: 1_700_000_000_000,
  nonce: 'AAAAAAAAAAAAAAAAAAAAAA',
  body: '{"mac":"02:00:00:00:00:01"}',
};
const CANONICAL =
  'TIPS-GW-1\nPOST\n/api/gateway/v1/registrations\n1700000000000\nAAAAAAAAAAAAAAAAAAAAAA\n' +
  '8c9a68434dcee82b9f73a26fa0efb4c8c80b7b49f7504a1a90b1ddb35c4fa27a';
const SIGNATURE = 'fvVN9eTJD-lAtiSeLQhMW_CIvly7k4RGyobhje5JrOOG0hrbn8MEC0FJXVHVaDebhfR8UlgF5LR5R-Bh25tgBA';
const PUBLIC_PEM = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAO2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\n-----END PUBLIC KEY-----\n';

describe('T6 gateway request signatures (TIPS-GW-1, Ed25519)', () => {
  const key = privateKeyFromSeed(new Uint8Array(32));

  it('builds the canonical string', () => {
    expect(canonicalString(VECTOR)).toBe(CANONICAL);
  });

  it('matches the fixed vector (zero seed) byte for byte', () => {
    expect(publicKeyPem(key)).toBe(PUBLIC_PEM);
    expect(signRequest(key, VECTOR)).toBe(SIGNATURE);
    expect(verifyRequest(createPublicKey(PUBLIC_PEM), VECTOR, SIGNATURE)).toBe(true);
  });

  it('hashes an absent body as the empty string', () => {
    expect(canonicalString({ ...VECTOR, method: 'get', body: undefined }).split('\n')).toEqual([
      'TIPS-GW-1',
      'GET',
      '/api/gateway/v1/registrations',
      '1700000000000',
      'AAAAAAAAAAAAAAAAAAAAAA',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ]);
  });

  it('a changed path, body, timestamp or key fails verification', () => {
    const pub = createPublicKey(PUBLIC_PEM);
    expect(verifyRequest(pub, { ...VECTOR, pathWithQuery: '/api/gateway/v1/table' }, SIGNATURE)).toBe(false);
    expect(verifyRequest(pub, { ...VECTOR, body: '{}' }, SIGNATURE)).toBe(false);
    expect(verifyRequest(pub, { ...VECTOR, timestamp: VECTOR.timestamp + 1 }, SIGNATURE)).toBe(false);
    const other = generateKeyPairSync('ed25519').publicKey;
    expect(verifyRequest(other, VECTOR, SIGNATURE)).toBe(false);
  });

  it('signedHeaders carries id, timestamp, a fresh 16-byte nonce and a verifiable signature', () => {
    const h = signedHeaders('gwy_x', key, { method: 'PUT', pathWithQuery: '/api/gateway/v1/table', body: '{"rows":[]}' }, 42);
    const h2 = signedHeaders('gwy_x', key, { method: 'PUT', pathWithQuery: '/api/gateway/v1/table', body: '{"rows":[]}' }, 42);
    expect(h['x-tips-gateway']).toBe('gwy_x');
    expect(h['x-tips-timestamp']).toBe('42');
    expect(Buffer.from(h['x-tips-nonce']!, 'base64url')).toHaveLength(16);
    expect(h['x-tips-nonce']).not.toBe(h2['x-tips-nonce']);
    const input = { method: 'PUT', pathWithQuery: '/api/gateway/v1/table', timestamp: 42, nonce: h['x-tips-nonce']!, body: '{"rows":[]}' };
    expect(verifyRequest(createPublicKey(PUBLIC_PEM), input, h['x-tips-signature']!)).toBe(true);
  });
});
