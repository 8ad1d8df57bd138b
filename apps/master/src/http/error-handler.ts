import { InvalidValueError } from '@tips/core';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { errorBody, fieldPath } from './edge.ts';
import { DomainError, statusOf } from './errors.ts';

/**
 * The field a schema validation failed on, in the API's one path style (`interfaces[0].mac`):
 * Ajv's JSON Pointer is walked against the data sent, so array indexes render as `[i]` and object
 * keys (even numeric ones) as `.key`. Body fields are bare; path and query fields are prefixed.
 */
function validationField(err: FastifyError, req: FastifyRequest): string | undefined {
  const v = err.validation?.[0];
  if (!v) return undefined;
  const params = v.params as Record<string, unknown>;
  const context = err.validationContext ?? 'body';
  const data: Record<string, unknown> = { body: req.body, querystring: req.query, params: req.params, headers: req.headers };
  let at: unknown = data[context];
  const parts: (string | number)[] = context === 'body' ? [] : [context];
  for (const raw of v.instancePath.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const index = Array.isArray(at) && /^\d+$/.test(key) ? Number(key) : undefined;
    parts.push(index ?? key);
    at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined;
  }
  const extra = (params.missingProperty ?? params.additionalProperty) as string | undefined;
  if (extra !== undefined) parts.push(extra);
  return fieldPath(parts) || context;
}

function validationMessage(err: FastifyError, req: FastifyRequest): string {
  const v = err.validation?.[0];
  if (v?.keyword === 'additionalProperties') return `unknown field "${validationField(err, req)}"`;
  if (v?.keyword === 'required') return `missing field "${validationField(err, req)}"`;
  return `${validationField(err, req) ?? 'request'} ${v?.message ?? 'is invalid'}`;
}

/** One error shape for the whole API: `{ error: { code, message, field? }, requestId }`. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const body = (code: string, message: string, field?: string) => errorBody(String(req.id), code, message, field);
    if (err instanceof DomainError) {
      const status = statusOf(err);
      if (status >= 500) req.log.error({ err }, 'domain error without a status');
      else req.log.info({ code: err.code, field: err.field }, 'request refused');
      return reply.code(status).send(body(err.code, err.message, err.field));
    }
    if (err instanceof InvalidValueError) {
      return reply.code(400).send(body('invalid_value', err.message, err.field));
    }
    if (err.validation) {
      return reply.code(400).send(body('validation_failed', validationMessage(err, req), validationField(err, req)));
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const given = req.headers['content-type'];
      return reply.code(415).send(body('unsupported_media_type', `this route does not accept Content-Type ${given ? JSON.stringify(given.slice(0, 100)) : 'none'}`, 'content-type'));
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(body('body_too_large', err.message));
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
      return reply.code(400).send(body('invalid_json', 'the request body is not valid JSON'));
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send(body('bad_request', err.message));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send(body('internal', 'internal error; quote the request id when reporting it'));
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(String(req.id), 'route_not_found', `no route ${req.method} ${req.url.split('?')[0]?.slice(0, 200)}`));
  });
}
