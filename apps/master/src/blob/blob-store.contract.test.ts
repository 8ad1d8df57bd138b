import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { type S3TestServer, startS3Server } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BlobHarness, blobStoreContract } from './blob-store.contract.ts';
import { FsBlobStore } from './fs-blob-store.ts';
import { MIN_PART_BYTES, parseS3Url, S3BlobStore } from './s3-blob-store.ts';

describe('T12 D4 / T2 BlobStore contract: files', () => {
  let dir: string;
  let h: BlobHarness;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tips-blob-fs-'));
    const store = await FsBlobStore.open(dir);
    h = {
      store,
      largeBytes: 3 * 2 ** 20 + 12_345,
      leavePartial: async (key) => {
        const p = join(dir, 'tmp', `${key}.0a0b0c`);
        writeFileSync(p, randomBytes(1000));
        const old = new Date(Date.now() - 30_000);
        utimesSync(p, old, old);
      },
      partials: async () => readdirSync(join(dir, 'tmp')).length,
    };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  blobStoreContract(() => h);
});

const BUCKET = 'tips-glazes';
const PREFIX = 'fleet-a/';

/**
 * Debian's awscli (not a pyenv shim) against the test server, with its credentials and no user
 * config. Asynchronous: the server runs in this process.
 */
async function aws(s3: S3TestServer, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('/usr/bin/aws', [...args, '--endpoint-url', s3.endpoint], {
    env: {
      PATH: process.env.PATH,
      HOME: tmpdir(),
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_DEFAULT_REGION: s3.region,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_PAGER: '',
    },
    encoding: 'utf8',
  });
  return stdout;
}

describe('T2 BlobStore contract: S3 (s3rver), cross-checked with awscli', () => {
  let s3: S3TestServer;
  let store: S3BlobStore;
  let h: BlobHarness;
  beforeAll(async () => {
    s3 = await startS3Server({ buckets: [BUCKET, 'unrelated'] });
    store = await S3BlobStore.open({
      ...parseS3Url(`s3://${BUCKET}/${PREFIX}`),
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      partBytes: MIN_PART_BYTES,
    });
    h = {
      store,
      // Three parts: two full ones and a short last one.
      largeBytes: 2 * MIN_PART_BYTES + 12_345,
      leavePartial: async (key) => {
        const created = await store.client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${PREFIX}${key}` }));
        await store.client.send(new UploadPartCommand({ Bucket: BUCKET, Key: `${PREFIX}${key}`, UploadId: created.UploadId, PartNumber: 1, Body: randomBytes(MIN_PART_BYTES) }));
      },
      partials: async () => (await s3.pendingUploads(BUCKET)).length,
    };
  });
  afterAll(async () => {
    store?.close();
    await s3?.close();
  });
  blobStoreContract(() => h);

  it('aws s3 ls sees exactly the committed blobs, and aws s3 cp reads back the bytes TIPS wrote', async () => {
    for (const b of await store.list()) await store.delete(b.key);
    const committed = { glz_one: randomBytes(777), glz_two: randomBytes(MIN_PART_BYTES + 1) };
    for (const [key, data] of Object.entries(committed)) await store.put(key, Readable.from([data]));
    // One put still under way and one that failed: neither is an object.
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const big = randomBytes(MIN_PART_BYTES + 4096);
    const underWay = store.put(
      'glz_underway',
      (async function* () {
        yield big.subarray(0, MIN_PART_BYTES);
        await gate;
        yield big.subarray(MIN_PART_BYTES);
      })(),
    );
    await expect(
      store.put(
        'glz_failed',
        (async function* () {
          yield randomBytes(MIN_PART_BYTES);
          throw new Error('client went away');
        })(),
      ),
    ).rejects.toThrow('client went away');
    await expect.poll(async () => (await s3.pendingUploads(BUCKET)).map((u) => u.key), { timeout: 20_000 }).toEqual([`${PREFIX}glz_underway`]);

    const listed = (await aws(s3, ['s3', 'ls', `s3://${BUCKET}/${PREFIX}`]))
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    expect(listed.map((cols) => [cols[3], Number(cols[2])]).sort()).toEqual([
      ['glz_one', 777],
      ['glz_two', MIN_PART_BYTES + 1],
    ]);
    const pending = JSON.parse((await aws(s3, ['s3api', 'list-multipart-uploads', '--bucket', BUCKET, '--output', 'json'])) || '{}') as { Uploads?: { Key: string }[] };
    expect(pending.Uploads?.map((u) => u.Key)).toEqual([`${PREFIX}glz_underway`]);

    const out = mkdtempSync(join(tmpdir(), 'tips-aws-cp-'));
    try {
      await aws(s3, ['s3', 'cp', `s3://${BUCKET}/${PREFIX}glz_two`, join(out, 'two')]);
      expect(createHash('sha256').update(readFileSync(join(out, 'two'))).digest('hex')).toBe(createHash('sha256').update(committed.glz_two).digest('hex'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }

    release();
    await underWay;
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);
    expect(await aws(s3, ['s3', 'ls', `s3://${BUCKET}/${PREFIX}`])).toContain('glz_underway');
    // Nothing outside the prefix was touched or listed as ours.
    expect(await aws(s3, ['s3', 'ls', 's3://unrelated/'])).toBe('');
  });

  it('parses s3:// locations and refuses malformed ones', () => {
    expect(parseS3Url('s3://tips-glazes')).toEqual({ bucket: 'tips-glazes', prefix: '' });
    expect(parseS3Url('s3://tips-glazes/a/b/')).toEqual({ bucket: 'tips-glazes', prefix: 'a/b/' });
    for (const bad of ['s3://', 'http://b/x', 's3://UPPER', 's3://b/../x', 's3://bb/a//b', 's3://bb/a b']) expect(() => parseS3Url(bad)).toThrow(/s3:\/\/<bucket>/);
  });

  it('refuses to open a bucket that does not exist, naming it', async () => {
    await expect(S3BlobStore.open({ bucket: 'missing-bucket', prefix: '', endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } })).rejects.toThrow(
      /bucket "missing-bucket".*HTTP 404/,
    );
  });
});
