import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { noContent } from '../../http/openapi-responses.ts';
import { errorResponses, NameField } from '../../http/schemas.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import type { OwnerErrorCode } from './errors.ts';
import type { OwnerService } from './service.ts';

registerStatusTable<OwnerErrorCode>('owners', {
  unauthenticated: 401,
  forbidden: 403,
  owner_not_found: 404,
  owner_name_taken: 409,
  token_not_found: 404,
});

const OwnerSchema = Type.Object({ id: Type.String(), name: Type.String(), isAdmin: Type.Boolean(), createdAt: Type.String() });
const TokenSchema = Type.Object({ id: Type.String(), name: Type.String(), createdAt: Type.String(), lastUsedAt: Type.Union([Type.String(), Type.Null()], {
    description: 'when the token last authenticated a request, to within a minute: it is written at most once a minute per token (null: never used)',
  }),
});

/** Owners (DURM) and their API tokens. Mounted inside the authenticated /api/v1 scope. */
export function ownerRoutes(app: FastifyInstance, owners: OwnerService): void {
  app.get('/me', { schema: { tags: ['owners'], summary: 'The authenticated owner', response: { 200: OwnerSchema } } }, async (req) => req.owner);

  app.get<{ Querystring: PageParams }>(
    '/owners',
    {
      schema: {
        tags: ['owners'],
        summary: 'List owners (admin), oldest first, a page at a time',
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(OwnerSchema), ...errorResponses(400, 403) },
      },
    },
    async (req) => readPage('owners', req.query, (w) => owners.listOwners(req.owner, w), (o) => ({ at: o.createdAt, id: o.id })),
  );

  app.post<{ Body: { name: string } }>(
    '/owners',
    {
      schema: {
        tags: ['owners'],
        summary: 'Create an owner (admin); returns its first API token once',
        body: Type.Object({ name: NameField }, { additionalProperties: false }),
        response: { 201: Type.Object({ owner: OwnerSchema, token: Type.String() }), ...errorResponses(400, 403, 409) },
      },
    },
    async (req, reply) => reply.code(201).send(await owners.createOwnerAsAdmin(req.owner, req.body.name)),
  );

  app.get<{ Querystring: PageParams }>(
    '/tokens',
    {
      schema: {
        tags: ['owners'],
        summary: "List the caller's API tokens (never the secrets), oldest first, a page at a time",
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(TokenSchema), ...errorResponses(400) },
      },
    },
    async (req) => readPage('tokens', req.query, (w) => owners.listTokens(req.owner, w), (t) => ({ at: t.createdAt, id: t.id }), ({ ownerId: _o, ...t }) => t),
  );

  app.post<{ Body: { name: string } }>(
    '/tokens',
    {
      schema: {
        tags: ['owners'],
        summary: 'Create an API token; the secret is shown only in this response',
        body: Type.Object({ name: NameField }, { additionalProperties: false }),
        response: { 201: Type.Intersect([TokenSchema, Type.Object({ secret: Type.String() })]), ...errorResponses(400) },
      },
    },
    async (req, reply) => {
      const { ownerId: _o, ...t } = await owners.issueToken(req.owner.id, req.body.name);
      return reply.code(201).send(t);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/tokens/:id',
    { schema: { tags: ['owners'], summary: 'Revoke an API token', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 204: noContent('Revoked'), ...errorResponses(404) } } },
    async (req, reply) => {
      await owners.revokeToken(req.owner, req.params.id);
      return reply.code(204).send();
    },
  );
}
