import { GlazeError } from './errors.ts';

/**
 * Passes an upload body through, failing it when the client goes quiet or goes away:
 * - no bytes for `idleMs` → `upload_idle_timeout` (408), so a stalled client cannot hold a
 *   connection and a temp file for ever;
 * - the connection closed before the announced end → `upload_aborted`.
 * Both are the client's doing: domain errors, logged at info like any refusal, never as an
 * "unhandled error". The body's own iterator is not closed on a timeout, so the 408 answer can
 * still be written before the connection is closed.
 */
export async function* idleBounded(body: AsyncIterable<Uint8Array>, idleMs: number): AsyncGenerator<Uint8Array> {
  const it = body[Symbol.asyncIterator]();
  let received = 0;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<'idle'>((resolve) => {
      timer = setTimeout(() => resolve('idle'), idleMs);
    });
    let next: IteratorResult<Uint8Array> | 'idle';
    try {
      next = await Promise.race([it.next(), idle]);
    } catch (err) {
      if (isClientAbort(err)) throw new GlazeError('upload_aborted', `the client closed the connection after ${received} bytes`, 'body');
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (next === 'idle') {
      throw new GlazeError('upload_idle_timeout', `no bytes for ${idleMs / 1000} s after ${received} bytes; upload abandoned`, 'body');
    }
    if (next.done) return;
    received += next.value.length;
    yield next.value;
  }
}

/** Node's IncomingMessage fails with "aborted" (ECONNRESET) when the peer closes mid-body. */
function isClientAbort(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  return e?.code === 'ECONNRESET' || e?.message === 'aborted' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}
