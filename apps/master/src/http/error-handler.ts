import { InvalidValueError } from '@tips/core';
import type { FastifyError, FastifyInstance } from 'fastify';
import { DomainError, type ErrorBody, statusOf } from './errors.ts';

/** Why a schema validation failed, in terms of the field a client sent. */
function validationField(err: FastifyError): string | undefined {
  const v = err.validation?.[0];
  if (!v) return undefined;
  const params = v.params as Record<string, unknown>;
  const base = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const extra = (params.missingProperty ?? params.additionalProperty) as string | undefined;
  const field = [err.validationContext === 'body' ? '' : err.validationContext, base, extra].filter(Boolean).join('.');
  return field || err.validationContext;
}

function validationMessage(err: FastifyError): string {
  const v = err.validation?.[0];
  const params = (v?.params ?? {}) as Record<string, unknown>;
  if (v?.keyword === 'additionalProperties') return `unknown field "${String(params.additionalProperty)}"`;
  if (v?.keyword === 'required') return `missing field "${String(params.missingProperty)}"`;
  return `${validationField(err) ?? 'request'} ${v?.message ?? 'is invalid'}`;
}

/** One error shape for the whole API: `{ error: { code, message, field? }, requestId }`. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const body = (code: string, message: string, field?: string): ErrorBody => ({
      error: field ? { code, message, field } : { code, message },
      requestId: String(req.id),
    });
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
      return reply.code(400).send(body('validation_failed', validationMessage(err), validationField(err)));
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply.code(415).send(body('unsupported_media_type', err.message));
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
    reply.code(404).send({ error: { code: 'route_not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }, requestId: String(req.id) });
  });
}
