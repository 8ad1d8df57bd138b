// SigV4 query-string authentication for one S3 GET (a pre-signed URL), with the signer the S3 client
// already uses (@smithy/signature-v4). This is what @aws-sdk/s3-request-presigner does for a GET:
// the payload is UNSIGNED-PAYLOAD and only `host` is signed, so any client (curl -L, a browser,
// the gateway) can follow the URL without credentials until it expires.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { escapeUri } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, SourceData } from '@smithy/types';

/** node:crypto behind the Checksum interface the signer expects (HMAC when given a key). */
class NodeSha256 {
  private h: Hash | Hmac;
  private readonly secret: string | Uint8Array | undefined;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined || typeof secret === 'string' ? secret : new Uint8Array(ArrayBuffer.isView(secret) ? secret.buffer.slice(secret.byteOffset, secret.byteOffset + secret.byteLength) : secret);
    this.h = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: Uint8Array | string): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.fresh();
  }
}

export interface PresignInput {
  /** Scheme, host and port the URL points at (path-style endpoint, or the bucket's virtual host). */
  origin: URL;
  /** The object's path, e.g. `/bucket/prefix/key` (path style) or `/key` (virtual host); safe characters only. */
  path: string;
  region: string;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  expiresInSeconds: number;
  /** Signing time (tests pass a fixed one). */
  now: Date;
  /** Extra signed query parameters, e.g. response-content-type. */
  query?: Record<string, string>;
}

const PAYLOAD_HASH = 'x-amz-content-sha256';

export async function presignGet(input: PresignInput): Promise<string> {
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(input.path)) throw new Error(`cannot presign path ${JSON.stringify(input.path)}`);
  const signer = new SignatureV4({ service: 's3', region: input.region, credentials: input.credentials, sha256: NodeSha256, uriEscapePath: false });
  const port = input.origin.port === '' ? undefined : Number(input.origin.port);
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: input.origin.protocol,
      hostname: input.origin.hostname,
      port,
      path: input.path,
      query: { ...input.query },
      // The payload hash header only tells the signer which hash to use: neither hoisted into the query nor signed.
      headers: { host: input.origin.host, [PAYLOAD_HASH]: 'UNSIGNED-PAYLOAD' },
    },
    { expiresIn: input.expiresInSeconds, signingDate: input.now, unhoistableHeaders: new Set([PAYLOAD_HASH]), unsignableHeaders: new Set([PAYLOAD_HASH]) },
  );
  const query = Object.entries(signed.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x] as const) : v === null ? [] : [[k, v] as const]))
    .map(([k, v]) => `${escapeUri(k)}=${escapeUri(v)}`)
    .join('&');
  return `${input.origin.protocol}//${input.origin.host}${input.path}?${query}`;
}
