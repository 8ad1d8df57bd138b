import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { DomainError, type ErrorBody, registerStatusTable } from './errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Media type of a route's request body when it is not JSON (the JSON routes are those with a body schema). */
    bodyType?: string;
  }
}

/**
 * The master's HTTP edge: what every request meets before a domain sees it. Every refusal here has
 * the one error shape `{ error: { code, message, field? }, requestId }`, including those Fastify
 * and Node's HTTP parser raise before a route is found.
 */
export type EdgeErrorCode = 'bad_url' | 'uri_too_long' | 'headers_too_large' | 'bad_request' | 'unsupported_media_type' | 'invalid_string' | 'validation_failed';

registerStatusTable<EdgeErrorCode>('http', {
  bad_url: 400,
  uri_too_long: 414,
  headers_too_large: 431,
  bad_request: 400,
  unsupported_media_type: 415,
  invalid_string: 400,
  validation_failed: 400,
});

export class EdgeError extends DomainError<EdgeErrorCode> {
  constructor(code: EdgeErrorCode, message: string, field?: string) {
    super('http', code, message, field);
  }
}

export function errorBody(requestId: string, code: string, message: string, field?: string): ErrorBody {
  return { error: field ? { code, message, field } : { code, message }, requestId };
}

/** The longest path parameter the router accepts (refs are at most 64 characters); longer is 414. */
export const MAX_PARAM_LENGTH = 100;

/** Errors Fastify raises before a route is found: a URL that is not percent-encoded UTF-8, a parameter too long. */
function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const send = (status: number, code: string, message: string) => {
    reply.header('x-request-id', req.id).code(status).send(errorBody(String(req.id), code, message));
  };
  if (err.code === 'FST_ERR_BAD_URL') send(400, 'bad_url', 'the URL path is not valid percent-encoded UTF-8');
  else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') send(414, 'uri_too_long', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`);
  else {
    req.log.error({ err }, 'unhandled framework error');
    send(500, 'internal', 'internal error; quote the request id when reporting it');
  }
}

/** The request line is the URI's: overflowing there is 414, in the headers 431. */
const REQUEST_LINE_MAX = 8192;

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (a request line or headers over
 * the limit, bytes that are not HTTP). There is no request yet, so the request id is made here.
 */
function clientErrorHandler(this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let body: ErrorBody;
  const requestId = randomUUID();
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    body = errorBody(requestId, 'request_timeout', 'the request was not received in time');
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    const raw: unknown = err.rawPacket;
    const eol = Buffer.isBuffer(raw) ? raw.indexOf('\r\n') : -1;
    const uri = eol === -1 || eol > REQUEST_LINE_MAX;
    status = uri ? 414 : 431;
    body = uri ? errorBody(requestId, 'uri_too_long', 'the request URI is too long') : errorBody(requestId, 'headers_too_large', 'the request headers are too large');
  } else {
    body = errorBody(requestId, 'bad_request', 'the request is not valid HTTP/1.1');
  }
  this.log.info({ code: err.code, requestId }, 'malformed HTTP request refused');
  if (socket.writable) {
    const json = JSON.stringify(body);
    const reason = status === 408 ? 'Request Timeout' : status === 414 ? 'URI Too Long' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${json}`,
    );
  }
  socket.destroy();
}

/** Fastify options for the edge; spread into the `Fastify({...})` call. */
export const edgeServerOptions = {
  frameworkErrors,
  clientErrorHandler,
  routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
} satisfies Partial<FastifyServerOptions>;

function mediaType(req: FastifyRequest): string | undefined {
  return req.headers['content-type']?.split(';')[0]?.trim().toLowerCase() || undefined;
}

function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Renders a path to a value as `interfaces[0].mac` (array indexes in brackets; odd keys quoted). */
export function fieldPath(parts: readonly (string | number)[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(p)) out += out === '' ? p : `.${p}`;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first string (value or key) under `value` that no database should be handed: a NUL, or invalid UTF-16. */
function findBadString(value: unknown, path: (string | number)[], depth = 0): { path: (string | number)[]; why: string } | undefined {
  const bad = (s: string) => (s.includes('\u0000') ? 'contains a NUL character' : LONE_SURROGATE.test(s) ? 'is not valid Unicode (a lone surrogate)' : undefined);
  if (typeof value === 'string') {
    const why = bad(value);
    return why ? { path, why } : undefined;
  }
  if (depth > 64 || value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || typeof (value as { pipe?: unknown }).pipe === 'function') return undefined;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = findBadString(v, [...path, i], depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const keyWhy = bad(k);
    if (keyWhy) return { path: [...path, k], why: `has a name that ${keyWhy}` };
    const found = findBadString(v, [...path, k], depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** The first query parameter whose name or value is not valid percent-encoded UTF-8 (the parser would pass it on undecoded). */
function badlyEncodedQuery(url: string): string | undefined {
  const q = url.indexOf('?');
  // Only a percent sign can be badly encoded (most queries, list cursors included, have none).
  if (q === -1 || url.indexOf('%', q) === -1) return undefined;
  for (const pair of url.slice(q + 1).split('&')) {
    const [name = '', value = ''] = pair.split('=', 2);
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
      } catch {
        return undefined;
      }
    };
    const decodedName = decode(name);
    if (decodedName === undefined) return name.slice(0, 64);
    if (decode(value) === undefined) return decodedName.slice(0, 64);
  }
  return undefined;
}

/**
 * Input every route refuses the same way: a JSON route (one with a body schema) given another
 * Content-Type answers 415 naming `application/json` — before anything parses the body; a string
 * anywhere in the path, query or body with a NUL or a lone surrogate answers 400 naming the field
 * (PostgreSQL cannot store a NUL: unrefused, it would be a 500 on one store and data on the other);
 * an API route that takes no query parameters refuses any, as the others refuse unknown ones.
 */
export function installEdgeGuards(app: FastifyInstance): void {
  // Callback style (both hooks): an async hook costs every request a promise and a microtask turn.
  app.addHook('preParsing', (req, _reply, payload, done) => {
    const expected = req.routeOptions.config?.bodyType ?? (req.routeOptions.schema?.body ? 'application/json' : undefined);
    if (expected === undefined || !hasBody(req)) return done(null, payload);
    const given = mediaType(req);
    if (given !== expected) {
      return done(new EdgeError('unsupported_media_type', `expected Content-Type ${expected}, got ${given === undefined ? 'none' : JSON.stringify(given.slice(0, 100))}`, 'content-type'));
    }
    done(null, payload);
  });
  // After authentication (the gateway scope authenticates in preValidation, so an unauthenticated
  // caller learns nothing of the input rules) and schema validation, before any handler.
  app.addHook('preHandler', (req, _reply, done) => {
    let refusal: EdgeError | undefined;
    try {
      refuseBadInput(req);
    } catch (e) {
      refusal = e as EdgeError;
    }
    done(refusal);
  });
}

/** The preHandler refusals (see installEdgeGuards): throws the EdgeError the request is answered with. */
function refuseBadInput(req: FastifyRequest): void {
  const bad = badlyEncodedQuery(req.url);
  if (bad !== undefined) {
    const field = fieldPath(['querystring', bad]);
    throw new EdgeError('bad_url', `${field} is not valid percent-encoded UTF-8`, field);
  }
  if (req.routeOptions.url?.startsWith('/api/') && !req.routeOptions.schema?.querystring) {
    const unknown = Object.keys((req.query ?? {}) as object)[0];
    if (unknown !== undefined) {
      const field = fieldPath(['querystring', unknown]);
      throw new EdgeError('validation_failed', `unknown field "${field}" (this route takes no query parameters)`, field);
    }
  }
  const sources: [string, unknown][] = [
    ['params', req.params],
    ['querystring', req.query],
    ['body', req.body],
  ];
  for (const [where, value] of sources) {
    const found = findBadString(value, where === 'body' ? [] : [where]);
    if (found) {
      const field = fieldPath(found.path) || where;
      throw new EdgeError('invalid_string', `${field} ${found.why}`, field);
    }
  }
}
