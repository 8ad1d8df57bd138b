import type { Readable } from 'node:stream';

export interface BlobInfo {
  size: number;
  sha256: string;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

/**
 * The `BlobStore` port: where Glaze payloads live. Adapters: the filesystem (embedded default);
 * an S3-compatible store fits the same four verbs.
 *
 * Invariant: `put` is atomic. A reader never sees a partial blob, and a failed or interrupted
 * put leaves nothing behind under `key`.
 */
export interface BlobStore {
  /** Streams `source` into the store while computing SHA-256; never buffers the whole payload. */
  put(key: string, source: AsyncIterable<Uint8Array> | Readable, opts?: { onBytes?: (total: number) => void }): Promise<BlobInfo>;
  get(key: string, range?: ByteRange): Promise<Readable>;
  stat(key: string): Promise<{ size: number } | undefined>;
  delete(key: string): Promise<void>;
}

export class BlobError extends Error {
  constructor(
    readonly code: 'blob_not_found' | 'blob_invalid_key',
    message: string,
  ) {
    super(message);
  }
}
