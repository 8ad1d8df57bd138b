import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { noContent } from '../../http/openapi-responses.ts';
import { errorResponses, NameField, Ref } from '../../http/schemas.ts';
import { DEFAULT_PAGE_LIMIT, Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import type { SpaceErrorCode } from './errors.ts';
import type { Space, SpaceMember } from './model.ts';
import type { AddMemberInput, SpaceService } from './service.ts';

registerStatusTable<SpaceErrorCode>('spaces', {
  space_not_found: 404,
  space_name_taken: 409,
  default_space_must_be_phase1: 422,
  interface_not_found: 422,
  phase1_needs_one_pxe_interface: 422,
  member_not_found: 404,
  glaze_not_allowed_in_space: 422,
});

const EngineRuleSchema = Type.Object(
  {
    match: Type.String({ maxLength: 192, description: '<label key>=<value>, e.g. arch=arm64 (the metal’s label `arch`)' }),
    engine: Type.String({ maxLength: 16, description: 'builtin | tinkerbell' }),
  },
  { additionalProperties: false },
);

export const SpaceSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  phase: Type.Integer(),
  glazeId: Type.Union([Type.String(), Type.Null()]),
  engine: Type.String({ description: 'Phase 1 engine of its metals: builtin | tinkerbell' }),
  engineRules: Type.Array(EngineRuleSchema, { description: 'engine by metal label, first match wins (a metal’s own engine still wins)' }),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
const MemberSchema = Type.Object({ metalId: Type.String(), interfaces: Type.Array(Type.String()), isDefault: Type.Boolean() });
const SpaceDetail = Type.Intersect([
  SpaceSchema,
  Type.Object({
    members: Type.Array(MemberSchema, { description: `the first page of members (at most ${DEFAULT_PAGE_LIMIT}, by metal ID)` }),
    membersNextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null when `members` is all of them; else pass as ?cursor= to GET /spaces/{ref}/members for the rest' }),
  }),
]);

/** A Space's members are paged by metal ID; the list name carries the Space, so a cursor of another Space is refused. */
const membersList = (spaceId: string) => `space-members:${spaceId}`;
const memberPosition = (m: SpaceMember) => ({ at: '', id: m.metalId });

const out = ({ ownerId: _o, ...s }: Space) => s;

/** Spaces (T4). Owner-scoped. */
export function spaceRoutes(app: FastifyInstance, spaces: SpaceService): void {
  app.post<{ Body: { name: string; phase: number } }>(
    '/spaces',
    {
      schema: {
        tags: ['spaces'],
        summary: 'Create a Space for phase 1, 2 or 3',
        body: Type.Object({ name: NameField, phase: Type.Integer() }, { additionalProperties: false }),
        response: { 201: SpaceSchema, ...errorResponses(400, 409) },
      },
    },
    async (req, reply) => reply.code(201).send(out(await spaces.create(req.owner.id, req.body))),
  );

  app.get<{ Querystring: { phase?: string } & PageParams }>(
    '/spaces',
    {
      schema: {
        tags: ['spaces'],
        summary: "List the caller's Spaces, oldest first, a page at a time",
        querystring: Type.Object({ phase: Type.Optional(Type.String({ pattern: '^[123]$' })), ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(SpaceSchema), ...errorResponses(400) },
      },
    },
    async (req) =>
      readPage('spaces', req.query, (w) => spaces.list(req.owner.id, req.query.phase ? Number(req.query.phase) : undefined, w), (s) => ({ at: s.createdAt, id: s.id }), out),
  );

  app.get<{ Params: { ref: string } }>(
    '/spaces/:ref',
    {
      schema: {
        tags: ['spaces'],
        summary: 'Show a Space and the first page of its members',
        params: Type.Object({ ref: Ref }),
        response: { 200: SpaceDetail, ...errorResponses(404) },
      },
    },
    async (req) => {
      const s = await spaces.get(req.owner.id, req.params.ref);
      const page = await readPage(membersList(s.id), {}, (w) => spaces.members(s.id, w), memberPosition);
      return { ...out(s), members: page.items, membersNextCursor: page.nextCursor };
    },
  );

  app.get<{ Params: { ref: string }; Querystring: PageParams }>(
    '/spaces/:ref/members',
    {
      schema: {
        tags: ['spaces'],
        summary: "List a Space's members by metal ID, a page at a time",
        params: Type.Object({ ref: Ref }),
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(MemberSchema), ...errorResponses(400, 404) },
      },
    },
    async (req) => {
      const s = await spaces.get(req.owner.id, req.params.ref);
      return readPage(membersList(s.id), req.query, (w) => spaces.members(s.id, w), memberPosition);
    },
  );

  app.patch<{ Params: { ref: string }; Body: { name?: string; glaze?: string | null; engine?: string; engineRules?: { match: string; engine: string }[] } }>(
    '/spaces/:ref',
    {
      schema: {
        tags: ['spaces'],
        summary: "Rename a Space, set the Glaze it delivers (the Glaze must allow the Space; null clears it) or its metals' Phase 1 engine",
        params: Type.Object({ ref: Ref }),
        body: Type.Object(
          {
            name: Type.Optional(NameField),
            glaze: Type.Optional(Type.Union([Ref, Type.Null()])),
            engine: Type.Optional(Type.String({ maxLength: 16, description: 'builtin | tinkerbell: the Phase 1 engine of the metals whose default Space this is (a metal may override it)' })),
            engineRules: Type.Optional(Type.Array(EngineRuleSchema, { maxItems: 16, description: 'replaces the rules choosing an engine by metal label (first match wins; [] clears them)' })),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: SpaceSchema, ...errorResponses(400, 404, 409, 422) },
      },
    },
    async (req) => out(await spaces.update(req.owner.id, req.params.ref, req.body)),
  );

  app.delete<{ Params: { ref: string } }>(
    '/spaces/:ref',
    { schema: { tags: ['spaces'], summary: 'Delete a Space', params: Type.Object({ ref: Ref }), response: { 204: noContent('Deleted'), ...errorResponses(404) } } },
    async (req, reply) => {
      await spaces.delete(req.owner.id, req.params.ref);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { ref: string }; Body: AddMemberInput }>(
    '/spaces/:ref/members',
    {
      schema: {
        tags: ['spaces'],
        summary: "Add a metal (or replace its membership) with the interfaces that link it; default makes this the metal's default Phase 1 Space",
        params: Type.Object({ ref: Ref }),
        body: Type.Object(
          { metal: Ref, interfaces: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 16 }), default: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([Type.Object({ spaceId: Type.String() }), MemberSchema]), ...errorResponses(400, 404, 422) },
      },
    },
    async (req, reply) => reply.code(201).send(await spaces.addMember(req.owner.id, req.params.ref, req.body)),
  );

  app.delete<{ Params: { ref: string; metal: string } }>(
    '/spaces/:ref/members/:metal',
    { schema: { tags: ['spaces'], summary: 'Remove a metal from a Space', params: Type.Object({ ref: Ref, metal: Ref }), response: { 204: noContent('Removed'), ...errorResponses(404) } } },
    async (req, reply) => {
      await spaces.removeMember(req.owner.id, req.params.ref, req.params.metal);
      return reply.code(204).send();
    },
  );
}
