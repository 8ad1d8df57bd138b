// Request signatures of the gateway → master API (TIPS-GW-1). The master verifies the same canonical
// string with the public key it stored at enrollment; timestamp and nonce stop replays.
import { createHash, createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign, verify } from 'node:crypto';

export const SIGNATURE_SCHEME = 'TIPS-GW-1';

export const HEADER = {
  gateway: 'x-tips-gateway',
  timestamp: 'x-tips-timestamp',
  nonce: 'x-tips-nonce',
  signature: 'x-tips-signature',
} as const;

export interface SignInput {
  method: string;
  /** Path with query string, exactly as sent (`/api/gateway/v1/table`). */
  pathWithQuery: string;
  /** Unix milliseconds. */
  timestamp: number;
  /** 16 random bytes, base64url. */
  nonce: string;
  body: Uint8Array | string | undefined;
}

/** "TIPS-GW-1\n" + METHOD + "\n" + PATH_WITH_QUERY + "\n" + timestamp + "\n" + nonce + "\n" + hex(sha256(body or empty)). */
export function canonicalString(i: SignInput): string {
  const body = i.body === undefined ? new Uint8Array(0) : typeof i.body === 'string' ? Buffer.from(i.body, 'utf8') : i.body;
  const digest = createHash('sha256').update(body).digest('hex');
  return `${SIGNATURE_SCHEME}\n${i.method.toUpperCase()}\n${i.pathWithQuery}\n${i.timestamp}\n${i.nonce}\n${digest}`;
}

/** base64url Ed25519 signature over the canonical string. */
export function signRequest(key: KeyObject, i: SignInput): string {
  return sign(null, Buffer.from(canonicalString(i), 'utf8'), key).toString('base64url');
}

export function verifyRequest(publicKey: KeyObject, i: SignInput, signature: string): boolean {
  return verify(null, Buffer.from(canonicalString(i), 'utf8'), publicKey, Buffer.from(signature, 'base64url'));
}

/** The four authentication headers for one request. */
export function signedHeaders(
  gatewayId: string,
  key: KeyObject,
  req: { method: string; pathWithQuery: string; body?: Uint8Array | string },
  now: number = Date.now(),
  nonce: string = randomBytes(16).toString('base64url'),
): Record<string, string> {
  const timestamp = now;
  const signature = signRequest(key, { method: req.method, pathWithQuery: req.pathWithQuery, timestamp, nonce, body: req.body });
  return {
    [HEADER.gateway]: gatewayId,
    [HEADER.timestamp]: String(timestamp),
    [HEADER.nonce]: nonce,
    [HEADER.signature]: signature,
  };
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Ed25519 private key from its 32-byte seed (RFC 8410 PKCS#8 wrapping). */
export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export function publicKeyPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
}
