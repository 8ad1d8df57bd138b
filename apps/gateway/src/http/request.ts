// What the gateway's own HTTP servers (boot services, onboarding relay) share about a request.
import type { IncomingMessage } from 'node:http';

/** A refusal answered with this status and `{ error: { code, message, field? } }`. */
export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The peer's IPv4 address (an IPv4-mapped IPv6 address unwrapped). */
export function remoteIp(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** The whole body, at most `max` bytes (413 `body_too_large` as soon as it is known to be more). */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > max) throw new HttpRefusal(413, 'body_too_large', `the body may hold at most ${max} bytes`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw new HttpRefusal(413, 'body_too_large', `the body may hold at most ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
