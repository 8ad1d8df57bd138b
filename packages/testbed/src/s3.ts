// An S3-compatible server for tests and benchmarks: s3rver (npm) on a random loopback port, its
// objects in a throw-away directory. s3rver 3.7 stores multipart uploads but answers neither
// ListMultipartUploads nor AbortMultipartUpload (NotImplemented / 405), the two calls a store needs
// to find and clean abandoned uploads. Both are added here, in front of s3rver's own routes, over
// the directory where s3rver keeps an upload's parts (`<bucket>/._S3rver_uploads/<uploadId>/`,
// with the object key in `key`) — the same state s3rver completes an upload from.
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface S3TestServer {
  /** http://127.0.0.1:<port> (path-style addressing). */
  endpoint: string;
  /** s3rver's only account. */
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Where s3rver keeps objects: `<dir>/<bucket>/<key>._S3rver_object`. */
  dir: string;
  /** Multipart uploads s3rver still holds for `bucket` (uploadId, key), read from its directory. */
  pendingUploads(bucket: string): Promise<{ uploadId: string; key: string }[]>;
  close(): Promise<void>;
}

interface KoaCtx {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: unknown;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function startS3Server(opts: { buckets: string[]; dir?: string }): Promise<S3TestServer> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'tips-s3rver-'));
  const owned = opts.dir === undefined;
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  const uploadsDir = (bucket: string) => join(dir, bucket, '._S3rver_uploads');
  async function pendingUploads(bucket: string): Promise<{ uploadId: string; key: string; initiated: Date }[]> {
    let ids: string[];
    try {
      ids = await readdir(uploadsDir(bucket));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out = [];
    for (const uploadId of ids) {
      try {
        const keyFile = join(uploadsDir(bucket), uploadId, 'key');
        out.push({ uploadId, key: (await readFile(keyFile)).toString(), initiated: (await stat(keyFile)).mtime });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return out.sort((a, b) => a.key.localeCompare(b.key) || a.uploadId.localeCompare(b.uploadId));
  }
  // Koa composes its middleware when the server starts: these run before s3rver's router.
  (server as unknown as { middleware: ((ctx: KoaCtx, next: () => Promise<void>) => Promise<void>)[] }).middleware.unshift(async (ctx, next) => {
    const [, bucket, ...keyParts] = ctx.path.split('/');
    const key = decodeURIComponent(keyParts.join('/'));
    if (ctx.method === 'GET' && bucket && key === '' && 'uploads' in ctx.query) {
      const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
      const uploads = (await pendingUploads(bucket)).filter((u) => u.key.startsWith(prefix));
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${xml(bucket)}</Bucket><Prefix>${xml(prefix)}</Prefix><IsTruncated>false</IsTruncated>${uploads
        .map((u) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`)
        .join('')}</ListMultipartUploadsResult>`;
      return;
    }
    if (ctx.method === 'DELETE' && bucket && key && typeof ctx.query.uploadId === 'string') {
      const upload = (await pendingUploads(bucket)).find((u) => u.uploadId === ctx.query.uploadId && u.key === key);
      if (!upload) {
        ctx.status = 404;
        ctx.type = 'application/xml';
        ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
        return;
      }
      await rm(join(uploadsDir(bucket), upload.uploadId), { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    await next();
  });
  const address = (await server.run()) as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    region: 'us-east-1',
    dir,
    pendingUploads: async (bucket) => (await pendingUploads(bucket)).map(({ uploadId, key }) => ({ uploadId, key })),
    close: async () => {
      await server.close();
      if (owned) rmSync(dir, { recursive: true, force: true });
    },
  };
}
