import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { type BlobInfo, BlobError, type BlobStore, type ByteRange, type StoredBlob } from './blob-store.ts';
import { presignGet } from './presign.ts';
import type { S3Location } from './s3-location.ts';

export { parseS3Url } from './s3-location.ts';

const KEY_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** S3's smallest part (except the last) is 5 MiB; at most 10,000 parts make one object. */
export const MIN_PART_BYTES = 5 * 2 ** 20;
export const MAX_PARTS = 10_000;

export interface S3BlobStoreOptions extends S3Location {
  /** An S3-compatible endpoint (path-style addressing); undefined = AWS S3 in `region`. */
  endpoint?: string;
  region: string;
  /** Explicit credentials (tests); otherwise the SDK's chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, … */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Bytes buffered per multipart part (≥ 5 MiB). A Glaze may have at most 10,000 parts. */
  partBytes?: number;
  /** Downloads are answered with a pre-signed URL valid this long; null = the master streams them. */
  presignSeconds?: number | null;
  now?: () => Date;
}

async function* firstBytes(source: Readable, n: number): AsyncIterable<Uint8Array> {
  let left = n;
  try {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      yield chunk.length <= left ? chunk : chunk.subarray(0, left);
      left -= Math.min(left, chunk.length);
      if (left === 0) return;
    }
  } finally {
    source.destroy();
  }
}

const isNotFound = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
};

/**
 * Blobs as S3 objects `<prefix><key>`. A put is a multipart upload to the final key (or, for a blob
 * smaller than one part, a single PutObject sent once its last byte is in): S3 shows the object only
 * when CompleteMultipartUpload succeeds, so a reader never sees half a blob. A failed put aborts its
 * upload; one a killed process left pending is aborted by reconciliation (`removeStalePartials`,
 * ListMultipartUploads) once it is older than any live upload can be, on start and periodically.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  readonly client: S3Client;
  private readonly partBytes: number;
  private readonly now: () => Date;

  private constructor(private readonly opts: S3BlobStoreOptions) {
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // Checksums only where S3 requires them: S3-compatible stores do not all speak the newer
      // flexible-checksum trailers, and the SHA-256 TIPS keeps is computed here anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.partBytes = Math.max(MIN_PART_BYTES, opts.partBytes ?? 8 * 2 ** 20);
    this.now = opts.now ?? (() => new Date());
  }

  /** Connects and checks the bucket is there and readable (a wrong name or credentials fail here, not at the first upload). */
  static async open(opts: S3BlobStoreOptions): Promise<S3BlobStore> {
    const store = new S3BlobStore(opts);
    try {
      await store.client.send(new HeadBucketCommand({ Bucket: opts.bucket }));
    } catch (err) {
      store.client.destroy();
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      throw new Error(`S3 bucket "${opts.bucket}" at ${opts.endpoint ?? `AWS ${opts.region}`} is not usable: ${status ? `HTTP ${status}` : (err as Error).message}`);
    }
    return store;
  }

  /** The largest blob this store can take (10,000 parts). */
  get maxBytes(): number {
    return this.partBytes * MAX_PARTS;
  }

  private objectKey(key: string): string {
    if (!KEY_RE.test(key)) throw new BlobError('blob_invalid_key', `invalid blob key ${JSON.stringify(key)}`);
    return `${this.opts.prefix}${key}`;
  }

  async put(key: string, source: AsyncIterable<Uint8Array> | Readable, opts: { onBytes?: (total: number) => void } = {}): Promise<BlobInfo> {
    const Key = this.objectKey(key);
    const Bucket = this.opts.bucket;
    const hash = createHash('sha256');
    let size = 0;
    let held: Uint8Array[] = [];
    let heldBytes = 0;
    let uploadId: string | undefined;
    const etags: string[] = [];
    // One part travels while the next is read: throughput of two, memory of two parts.
    let inFlight: Promise<void> = Promise.resolve();
    const send = (body: Buffer) => {
      const PartNumber = etags.length + 1;
      if (PartNumber > MAX_PARTS) throw new BlobError('blob_invalid_key', `blob ${key} exceeds ${MAX_PARTS} parts of ${this.partBytes} bytes`);
      etags.push('');
      const id = uploadId!;
      const previous = inFlight;
      inFlight = (async () => {
        await previous;
        const r = await this.client.send(new UploadPartCommand({ Bucket, Key, UploadId: id, PartNumber, Body: body, ContentLength: body.length }));
        etags[PartNumber - 1] = r.ETag ?? '';
      })();
      // Observed here so a failing part is not an unhandled rejection while the source is read; thrown at the next await.
      inFlight.catch(() => undefined);
      return inFlight;
    };
    try {
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        size += chunk.length;
        held.push(chunk);
        heldBytes += chunk.length;
        opts.onBytes?.(size);
        if (heldBytes >= this.partBytes) {
          const body = Buffer.concat(held, heldBytes);
          held = [];
          heldBytes = 0;
          if (uploadId === undefined) {
            const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: 'application/octet-stream' }));
            if (!created.UploadId) throw new Error('S3 CreateMultipartUpload returned no UploadId');
            uploadId = created.UploadId;
          }
          // Wait for the part before the one just cut: never more than two parts in memory.
          await inFlight;
          void send(body);
        }
      }
      const rest = Buffer.concat(held, heldBytes);
      if (uploadId === undefined) {
        await this.client.send(new PutObjectCommand({ Bucket, Key, Body: rest, ContentLength: rest.length, ContentType: 'application/octet-stream' }));
      } else {
        if (rest.length > 0) void send(rest);
        await inFlight;
        await this.client.send(
          new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
        );
      }
      return { size, sha256: hash.digest('hex') };
    } catch (err) {
      if (uploadId !== undefined) {
        await inFlight.catch(() => undefined);
        // If this fails too (S3 unreachable), reconciliation aborts the upload later.
        await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(() => undefined);
      }
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const Key = this.objectKey(key);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }));
      const body = r.Body as Readable;
      if (!range) return body;
      // Never pass on bytes other than those asked for: a store that answers from another offset is
      // an error, one that sends more than asked (s3rver 3.7 treats `bytes=0-0` as `bytes=0-`) is cut.
      const from = /^bytes (\d+)-(\d+)\//.exec(r.ContentRange ?? '');
      if (Number(from?.[1]) !== range.start) {
        body.destroy();
        throw new Error(`S3 answered range ${r.ContentRange ?? '(none)'} for bytes=${range.start}-${range.end} of ${Key}`);
      }
      return Number(from?.[2]) === range.end ? body : Readable.from(firstBytes(body, range.end - range.start + 1));
    } catch (err) {
      if (isNotFound(err)) throw new BlobError('blob_not_found', `no blob ${key}`);
      throw err;
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const Key = this.objectKey(key);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key }));
      return { size: r.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.objectKey(key) }));
  }

  async list(): Promise<StoredBlob[]> {
    const out: StoredBlob[] = [];
    let ContinuationToken: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: this.opts.prefix, ContinuationToken }));
      for (const o of r.Contents ?? []) {
        const key = o.Key?.slice(this.opts.prefix.length) ?? '';
        // Only names this store writes: anything else under the prefix is not ours to list or remove.
        if (KEY_RE.test(key)) out.push({ key, size: o.Size ?? 0, modifiedAt: o.LastModified ?? new Date(0) });
      }
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out;
  }

  /** Aborts multipart uploads under the prefix initiated before `olderThan` (S3 keeps their parts, and bills them, until then). */
  async removeStalePartials(olderThan: Date): Promise<StoredBlob[]> {
    const removed: StoredBlob[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.opts.bucket, Prefix: this.opts.prefix, KeyMarker, UploadIdMarker }));
      for (const u of r.Uploads ?? []) {
        const key = u.Key?.slice(this.opts.prefix.length) ?? '';
        if (!KEY_RE.test(key) || !u.UploadId || !u.Initiated || u.Initiated >= olderThan) continue;
        try {
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.opts.bucket, Key: u.Key, UploadId: u.UploadId }));
          // S3 does not say how many bytes the parts held without a ListParts per upload: the count is what matters.
          removed.push({ key: `${key}.${u.UploadId}`, size: 0, modifiedAt: u.Initiated });
        } catch (err) {
          // Another replica reconciling the same bucket got there first.
          if ((err as { name?: string }).name !== 'NoSuchUpload' && !isNotFound(err)) throw err;
        }
      }
      KeyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      UploadIdMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return removed;
  }

  /**
   * A short-lived pre-signed GET of the blob, served with `contentType`, when --s3-presign is on;
   * undefined otherwise (the master streams the bytes itself).
   */
  async downloadUrl(key: string, opts: { contentType: string }): Promise<string | undefined> {
    const seconds = this.opts.presignSeconds;
    if (!seconds) return undefined;
    const Key = this.objectKey(key);
    const origin = this.opts.endpoint ? new URL(this.opts.endpoint) : new URL(`https://${this.opts.bucket}.s3.${this.opts.region}.amazonaws.com`);
    const base = origin.pathname.replace(/\/+$/, '');
    return presignGet({
      origin: new URL(origin.origin),
      path: this.opts.endpoint ? `${base}/${this.opts.bucket}/${Key}` : `/${Key}`,
      region: this.opts.region,
      credentials: this.client.config.credentials,
      expiresInSeconds: seconds,
      now: this.now(),
      query: { 'response-content-type': opts.contentType },
    });
  }

  close(): void {
    this.client.destroy();
  }
}
