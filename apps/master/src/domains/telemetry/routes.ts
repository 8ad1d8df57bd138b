import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { noContent } from '../../http/openapi-responses.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { errorResponses, NameField, Ref } from '../../http/schemas.ts';
import { TelemetryError, type TelemetryErrorCode } from './errors.ts';
import { APP_SCOPES, type AppToken, MAX_APP_TOKEN_SECONDS, MAX_STRING_VALUE, MAX_TELEMETRY_BYTES, MAX_TELEMETRY_VALUES, type TelemetrySample } from './model.ts';
import type { AppPrincipal, TelemetryService } from './service.ts';

registerStatusTable<TelemetryErrorCode>('telemetry', {
  invalid_telemetry: 400,
  invalid_app_token: 400,
  unauthenticated: 401,
  forbidden: 403,
  app_token_not_found: 404,
  rate_limited: 429,
});

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when the bearer credential is an application token (issue 11): this request reads one device only. */
    appToken?: AppPrincipal;
  }
}

const Values = Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.Number(), Type.Boolean(), Type.String({ maxLength: MAX_STRING_VALUE })]), {
  maxProperties: MAX_TELEMETRY_VALUES,
  description: `at most ${MAX_TELEMETRY_VALUES} keys (a letter, then letters, digits, _ . -), each a finite number, a boolean or a string of at most ${MAX_STRING_VALUE} characters`,
});
const PostBody = Type.Object({ at: Type.String({ maxLength: 40, description: 'when the metal measured, ISO 8601 with a zone' }), values: Values }, { additionalProperties: false });
const SampleOut = Type.Object({ id: Type.String(), at: Type.String(), receivedAt: Type.String({ description: 'when the master stored it: the order of the stream, what `since` compares' }), values: Values });
const AppTokenOut = Type.Object({ id: Type.String(), metalId: Type.String(), name: Type.String(), scope: Type.Array(Type.String()), createdAt: Type.String(), expiresAt: Type.String() });

const sampleOut = (s: TelemetrySample) => ({ id: s.id, at: s.at, receivedAt: s.receivedAt, values: s.values });
const tokenOut = ({ ownerId: _o, ...t }: AppToken) => t;

async function rateLimited<T>(reply: FastifyReply, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof TelemetryError && e.code === 'rate_limited' && e.retryAfter) reply.header('retry-after', String(e.retryAfter));
    throw e;
  }
}

/** The metal's side (inside /api/metal/v1, after mTLS and the PoP token every metal route asks for). */
export function telemetryMetalRoutes(app: FastifyInstance, telemetry: TelemetryService): void {
  const size = (h: string | undefined) => (h && /^\d+$/.test(h) ? Number(h) : 0);
  app.post<{ Body: { at: string; values: Record<string, unknown> } }>(
    '/telemetry',
    {
      bodyLimit: MAX_TELEMETRY_BYTES,
      schema: {
        tags: ['metal'],
        summary: `Post one telemetry sample (at most ${MAX_TELEMETRY_BYTES} bytes; 60 a minute per metal, burst 20); readable by the owner and by application tokens for this metal`,
        body: PostBody,
        response: { 202: Type.Object({ id: Type.String(), receivedAt: Type.String() }), ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (req, reply) => {
      const s = await rateLimited(reply, () => telemetry.post(req.metal, req.body, size(req.headers['content-length'])));
      return reply.code(202).send({ id: s.id, receivedAt: s.receivedAt });
    },
  );
  app.post<{ Body: { at: string; values: Record<string, unknown> } }>(
    '/heartbeat',
    {
      bodyLimit: MAX_TELEMETRY_BYTES,
      schema: {
        tags: ['metal'],
        summary: 'The metal is alive (tips-client posts one each poll; 12 a minute per metal, burst 5): only the latest is kept',
        body: PostBody,
        response: { 204: noContent('Recorded'), ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (req, reply) => {
      await rateLimited(reply, () => telemetry.heartbeat(req.metal, req.body, size(req.headers['content-length'])));
      return reply.code(204).send();
    },
  );
}

/** Owner API (inside /api/v1): read a metal's data; mint, list and revoke application tokens. */
export function telemetryOwnerRoutes(app: FastifyInstance, telemetry: TelemetryService, profileOf: (ownerId: string, metalId: string) => Promise<unknown>): void {
  app.get<{ Params: { ref: string }; Querystring: PageParams & { since?: string } }>(
    '/metals/:ref/telemetry',
    {
      schema: {
        tags: ['telemetry'],
        summary: "A metal's telemetry, oldest first, a page at a time (owner token, or an application token with scope telemetry:read for this metal)",
        params: Type.Object({ ref: Ref }),
        querystring: Type.Object({ ...PageQuery, since: Type.Optional(Type.String({ maxLength: 40, description: 'only samples received after this ISO 8601 date-time' })) }, { additionalProperties: false }),
        response: { 200: Page(SampleOut), ...errorResponses(400, 403, 404) },
      },
    },
    async (req) => {
      const { since, ...page } = req.query;
      return readPage(`telemetry:${req.params.ref}`, page, (w) => telemetry.samples(req.owner.id, req.params.ref, since, w, req.appToken), (s) => ({ at: s.receivedAt, id: s.id }), sampleOut);
    },
  );

  app.get<{ Params: { ref: string } }>(
    '/metals/:ref/heartbeat',
    {
      schema: {
        tags: ['telemetry'],
        summary: "A metal's last heartbeat and its registered profile (owner token, or an application token with scope telemetry:read for this metal)",
        params: Type.Object({ ref: Ref }),
        response: {
          200: Type.Object({
            metal: Type.Object({ id: Type.String(), name: Type.String() }),
            heartbeat: Type.Union([Type.Object({ at: Type.String(), receivedAt: Type.String(), values: Values }), Type.Null()]),
            profile: Type.Unknown({ description: 'the profile the metal registered (PUT /api/metal/v1/profile), null before the first' }),
          }),
          ...errorResponses(403, 404),
        },
      },
    },
    async (req) => {
      const { metal, heartbeat } = await telemetry.lastHeartbeat(req.owner.id, req.params.ref, req.appToken);
      return { metal, heartbeat: heartbeat ? { at: heartbeat.at, receivedAt: heartbeat.receivedAt, values: heartbeat.values } : null, profile: (await profileOf(req.owner.id, metal.id)) ?? null };
    },
  );

  app.post<{ Body: { metal: string; scope: string[]; ttlSeconds?: number; name?: string } }>(
    '/app-tokens',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Mint an application token for one metal; the secret is shown only in this response (stored hashed)',
        body: Type.Object(
          {
            metal: Ref,
            scope: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 8, description: `known scopes: ${APP_SCOPES.join(', ')}` }),
            ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: MAX_APP_TOKEN_SECONDS, description: 'lifetime (default 90 days)' })),
            name: Type.Optional(NameField),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([AppTokenOut, Type.Object({ secret: Type.String() })]), ...errorResponses(400, 404) },
      },
    },
    async (req, reply) => {
      const t = await telemetry.createAppToken(req.owner, req.body);
      req.log.info({ event: 'app_token_created', tokenId: t.id, metal: t.metalId, scope: t.scope, expiresAt: t.expiresAt }, 'application token created');
      return reply.code(201).send({ ...tokenOut(t), secret: t.secret });
    },
  );

  app.get<{ Querystring: PageParams }>(
    '/app-tokens',
    {
      schema: {
        tags: ['telemetry'],
        summary: "The owner's application tokens (never the secrets), oldest first, a page at a time",
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(AppTokenOut), ...errorResponses(400) },
      },
    },
    async (req) => readPage('app-tokens', req.query, (w) => telemetry.listAppTokens(req.owner, w), (t) => ({ at: t.createdAt, id: t.id }), tokenOut),
  );

  app.delete<{ Params: { id: string } }>(
    '/app-tokens/:id',
    { schema: { tags: ['telemetry'], summary: 'Revoke an application token (effective on its next request)', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 204: noContent('Revoked'), ...errorResponses(404) } } },
    async (req, reply) => {
      await telemetry.revokeAppToken(req.owner, req.params.id);
      req.log.info({ event: 'app_token_revoked', tokenId: req.params.id }, 'application token revoked');
      return reply.code(204).send();
    },
  );
}
