import { createHash, type KeyObject, verify } from 'node:crypto';

/**
 * TIPS-GW-1 request signatures (gateway → master). Every gateway request but enrollment carries
 * four headers; the signature covers method, path with query, timestamp, nonce and the SHA-256 of
 * the raw body bytes, so nothing of the request can be changed or replayed unnoticed.
 */
export const SIGNATURE_SCHEME = 'TIPS-GW-1';

export const GATEWAY_HEADERS = {
  gateway: 'x-tips-gateway',
  timestamp: 'x-tips-timestamp',
  nonce: 'x-tips-nonce',
  signature: 'x-tips-signature',
} as const;

export interface SignedRequest {
  gatewayId: string;
  timestamp: number;
  nonce: string;
  signature: Buffer;
}

const NONCE = /^[A-Za-z0-9_-]{22}$/;
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;
const TIMESTAMP = /^\d{1,15}$/;

/** Reads the four headers strictly; undefined when any is missing or malformed. */
export function readSignedHeaders(headers: Record<string, string | string[] | undefined>): SignedRequest | undefined {
  const get = (name: string) => {
    const v = headers[name];
    return typeof v === 'string' ? v : undefined;
  };
  const gatewayId = get(GATEWAY_HEADERS.gateway);
  const timestamp = get(GATEWAY_HEADERS.timestamp);
  const nonce = get(GATEWAY_HEADERS.nonce);
  const signature = get(GATEWAY_HEADERS.signature);
  if (!gatewayId || !timestamp || !nonce || !signature) return undefined;
  if (!TIMESTAMP.test(timestamp) || !NONCE.test(nonce) || !SIGNATURE.test(signature)) return undefined;
  return { gatewayId, timestamp: Number(timestamp), nonce, signature: Buffer.from(signature, 'base64url') };
}

/** "TIPS-GW-1\n" + METHOD + "\n" + PATH_WITH_QUERY + "\n" + timestamp + "\n" + nonce + "\n" + hex(sha256(body)). */
export function canonicalString(method: string, pathWithQuery: string, timestamp: number, nonce: string, body: Uint8Array | undefined): string {
  const digest = createHash('sha256')
    .update(body ?? new Uint8Array(0))
    .digest('hex');
  return `${SIGNATURE_SCHEME}\n${method.toUpperCase()}\n${pathWithQuery}\n${timestamp}\n${nonce}\n${digest}`;
}

export function verifyCanonical(key: KeyObject, canonical: string, signature: Buffer): boolean {
  try {
    return verify(null, Buffer.from(canonical, 'utf8'), key, signature);
  } catch {
    return false;
  }
}
