import { PassThrough, type Readable } from 'node:stream';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { BlobInfo, BlobStore, ByteRange, StoredBlob } from './blob-store.ts';

type Op = 'put' | 'get' | 'stat' | 'delete' | 'list' | 'remove_stale' | 'presign';

/**
 * The BlobStore port with Prometheus figures around any adapter (files or S3): operations by
 * result and their latency, bytes written and read through the master, and pre-signed redirects
 * (bytes that did not pass through the master). Metrics are bound once the registry exists
 * (`useMetrics`); before that the decorator only passes calls through.
 */
export class MeteredBlobStore implements BlobStore {
  private ops: Counter<'store' | 'op' | 'result'> | undefined;
  private seconds: Histogram<'store' | 'op'> | undefined;
  private bytes: Counter<'store' | 'direction'> | undefined;
  readonly downloadUrl?: (key: string, opts: { contentType: string }) => Promise<string | undefined>;

  constructor(
    readonly inner: BlobStore,
    readonly kind: 'files' | 's3',
  ) {
    if (inner.downloadUrl) {
      const presign = inner.downloadUrl.bind(inner);
      this.downloadUrl = (key, opts) => this.timed('presign', () => presign(key, opts));
    }
  }

  useMetrics(registry: Registry): void {
    this.ops = new Counter({ name: 'tips_master_blob_operations_total', help: 'Blob store operations by store (files, s3), operation and result', labelNames: ['store', 'op', 'result'] as const, registers: [registry] });
    this.seconds = new Histogram({
      name: 'tips_master_blob_operation_seconds',
      help: 'Blob store operation latency (put: the whole upload; get: until the stream opens)',
      labelNames: ['store', 'op'] as const,
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60, 600],
      registers: [registry],
    });
    this.bytes = new Counter({ name: 'tips_master_blob_bytes_total', help: 'Glaze bytes through the master to (in) and from (out) the blob store', labelNames: ['store', 'direction'] as const, registers: [registry] });
  }

  private async timed<T>(op: Op, fn: () => Promise<T>): Promise<T> {
    const end = this.seconds?.startTimer({ store: this.kind, op });
    try {
      const out = await fn();
      this.ops?.inc({ store: this.kind, op, result: 'ok' });
      return out;
    } catch (err) {
      this.ops?.inc({ store: this.kind, op, result: (err as { code?: string }).code === 'blob_not_found' ? 'not_found' : 'error' });
      throw err;
    } finally {
      end?.();
    }
  }

  async put(key: string, source: AsyncIterable<Uint8Array> | Readable, opts?: { onBytes?: (total: number) => void }): Promise<BlobInfo> {
    const info = await this.timed('put', () => this.inner.put(key, source, opts));
    this.bytes?.inc({ store: this.kind, direction: 'in' }, info.size);
    return info;
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const stream = await this.timed('get', () => this.inner.get(key, range));
    if (!this.bytes) return stream;
    // Count what actually leaves (a client may stop early), without another copy of the data.
    const counted = new PassThrough({ highWaterMark: 1 << 20 });
    stream.on('data', (chunk: Buffer) => this.bytes?.inc({ store: this.kind, direction: 'out' }, chunk.length));
    stream.on('error', (err) => counted.destroy(err));
    counted.on('close', () => {
      if (!stream.destroyed) stream.destroy();
    });
    return stream.pipe(counted);
  }

  stat(key: string): Promise<{ size: number } | undefined> {
    return this.timed('stat', () => this.inner.stat(key));
  }

  delete(key: string): Promise<void> {
    return this.timed('delete', () => this.inner.delete(key));
  }

  list(): Promise<StoredBlob[]> {
    return this.timed('list', () => this.inner.list());
  }

  removeStalePartials(olderThan: Date): Promise<StoredBlob[]> {
    return this.timed('remove_stale', () => this.inner.removeStalePartials(olderThan));
  }
}
