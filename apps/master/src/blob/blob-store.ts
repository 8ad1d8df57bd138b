import type { Readable } from 'node:stream';

export interface BlobInfo {
  size: number;
  sha256: string;
}

/** A blob or a partial write as listed by the store, for reconciliation. */
export interface StoredBlob {
  key: string;
  size: number;
  /** Last write: a live upload keeps its partial write younger than the upload idle timeout. */
  modifiedAt: Date;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

/**
 * The `BlobStore` port: where Glaze payloads live. Adapters: the filesystem (embedded default,
 * fs-blob-store.ts) and an S3-compatible object store (s3-blob-store.ts); one contract suite
 * (blob-store.contract.ts) runs against both.
 *
 * Invariant: `put` is atomic. A reader never sees a partial blob, and a failed or interrupted
 * put leaves nothing behind under `key`.
 */
export interface BlobStore {
  /** Which adapter (metrics label). */
  readonly kind?: 'files' | 's3';
  /** Streams `source` into the store while computing SHA-256; never buffers the whole payload. */
  put(key: string, source: AsyncIterable<Uint8Array> | Readable, opts?: { onBytes?: (total: number) => void }): Promise<BlobInfo>;
  get(key: string, range?: ByteRange): Promise<Readable>;
  stat(key: string): Promise<{ size: number } | undefined>;
  delete(key: string): Promise<void>;
  /** Every complete blob (S3: ListObjectsV2). */
  list(): Promise<StoredBlob[]>;
  /**
   * Removes partial writes last touched before `olderThan` (left by a killed process) and returns
   * them. Younger ones may belong to a live upload of this or another replica and are kept.
   * (S3: AbortMultipartUpload for uploads initiated before `olderThan`.)
   */
  removeStalePartials(olderThan: Date): Promise<StoredBlob[]>;
  /**
   * Where a client can fetch the blob itself, for a short while, without the master passing the
   * bytes (S3 with --s3-presign: a pre-signed URL); undefined when the master must stream it.
   */
  downloadUrl?(key: string, opts: { contentType: string }): Promise<string | undefined>;
}

export class BlobError extends Error {
  constructor(
    readonly code: 'blob_not_found' | 'blob_invalid_key',
    message: string,
  ) {
    super(message);
  }
}
