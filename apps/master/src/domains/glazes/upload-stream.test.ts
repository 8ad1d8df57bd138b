import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { idleBounded } from './upload-stream.ts';

async function drain(body: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of body) n += c.length;
  return n;
}

describe('T12 D4 upload body watchdog', () => {
  it('passes every byte of a body that keeps coming', async () => {
    const src = new PassThrough();
    const done = drain(idleBounded(src, 200));
    for (let i = 0; i < 5; i++) {
      src.write(Buffer.alloc(10));
      await new Promise((r) => setTimeout(r, 50));
    }
    src.end();
    expect(await done).toBe(50);
  });

  it('fails with upload_idle_timeout when no byte comes for the timeout', async () => {
    const src = new PassThrough();
    const started = Date.now();
    const done = drain(idleBounded(src, 150));
    src.write(Buffer.alloc(7));
    await expect(done).rejects.toMatchObject({ code: 'upload_idle_timeout', field: 'body', message: expect.stringContaining('after 7 bytes') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    // The body stream is left open, so the 408 can still be written on its connection.
    expect(src.destroyed).toBe(false);
  });

  it('turns a client disconnect into upload_aborted, and leaves other errors alone', async () => {
    const cut = new PassThrough();
    const aborted = drain(idleBounded(cut, 1000));
    cut.write(Buffer.alloc(3));
    await new Promise((r) => setTimeout(r, 10));
    cut.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    await expect(aborted).rejects.toMatchObject({ code: 'upload_aborted', message: expect.stringContaining('after 3 bytes') });

    const broken = new PassThrough();
    const other = drain(idleBounded(broken, 1000));
    broken.destroy(new Error('disk on fire'));
    await expect(other).rejects.toThrow('disk on fire');
  });
});
