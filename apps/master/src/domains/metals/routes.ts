import { type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { noContent } from '../../http/openapi-responses.ts';
import { errorResponses, NameField, Ref } from '../../http/schemas.ts';
import { joinedPageBody, Page, type PageParams, PageQuery, pageWindow, readPageJson } from '../../http/pagination.ts';
import type { Phase1Job } from '../provisioning/model.ts';
import { JobSchema, jobOut } from '../provisioning/routes.ts';
import type { SpaceService } from '../spaces/service.ts';
import type { MetalErrorCode } from './errors.ts';
import { type Metal, storedMetalJson } from './model.ts';
import type { CreateMetalInput, MetalService, UpdateMetalInput } from './service.ts';

registerStatusTable<MetalErrorCode>('metals', {
  metal_not_found: 404,
  metal_name_taken: 409,
  mac_taken: 409,
  duplicate_interface: 422,
  interfaces_in_use: 409,
});

const InterfaceIn = Type.Object(
  {
    name: Type.String({ maxLength: 64 }),
    mac: Type.String({ maxLength: 64 }),
    type: Type.String({ maxLength: 16, description: 'ethernet | wifi | other' }),
    pxe: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const EngineIn = Type.Union([Type.String({ maxLength: 16, description: 'builtin | tinkerbell' }), Type.Null()], { description: 'Phase 1 engine; null = inherit the default Space’s' });
const Labels = Type.Record(Type.String({ maxLength: 63 }), Type.String({ maxLength: 128 }));
const InterfaceOut = Type.Object({ name: Type.String(), mac: Type.String(), type: Type.String(), pxe: Type.Boolean() });
export const MetalSchema = Type.Object({
  id: Type.String({ description: 'TIPS ID' }),
  name: Type.String(),
  labels: Labels,
  interfaces: Type.Array(InterfaceOut),
  engine: Type.Union([Type.String(), Type.Null()], { description: 'Phase 1 engine (builtin | tinkerbell); null = its default Space’s' }),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
const MembershipOut = Type.Object({
  spaceId: Type.String(),
  spaceName: Type.String(),
  phase: Type.Integer(),
  interfaces: Type.Array(Type.String()),
  isDefault: Type.Boolean(),
});
const MetalDetail = Type.Intersect([
  MetalSchema,
  Type.Object({
    spaces: Type.Array(MembershipOut),
    phase1: Type.Union([JobSchema, Type.Null()], { description: "the metal's current (open, else newest) Phase 1 job; null when it never had one" }),
    retiredAt: Type.Union([Type.String(), Type.Null()], { description: 'S14: when `tips metal retire` retired it (certificates revoked, never enrolls again); null while in service' }),
    blocked: Type.Optional(Type.Boolean({ description: 'T16: blocked at every gateway (by `tips metal block` or a tamper report) until unblocked' })),
  }),
]);

// Field by field: a rest spread per item costs ~0.6 µs (V8's slow path), 100 of them a page.
const out = (m: Metal) => ({ id: m.id, name: m.name, labels: m.labels, interfaces: m.interfaces, engine: m.engine, createdAt: m.createdAt, updatedAt: m.updatedAt });

/**
 * A listed metal as JSON: what `MetalSchema`'s serializer writes for `out(m)` (its fields, in its
 * order), with the row's stored labels and interfaces spliced in as they are — parsing them and
 * serializing them again was a quarter of a page's CPU (bench/RESULTS.md, metal-list).
 */
/** One list item as JSON text (the store keeps it; see `storedMetalJson`). */
export const metalJson = storedMetalJson;

/** What other domains add to the metal routes: the Update Manager's profile query and show fields (S7). */
export interface MetalRouteExtensions {
  /** IDs of the owner's metals whose profile matches (vendor ID, class ID, installed Glaze `name@version`). */
  matching(ownerId: Metal['ownerId'], q: { vendor?: string; class?: string; glaze?: string }): Promise<string[]>;
  /** Installed Glazes, history, last report and events, as `updates` in `GET /metals/:ref`. */
  describe(ownerId: Metal['ownerId'], metalId: Metal['id']): Promise<unknown>;
  schema: TSchema;
  /** S14: when the metal was retired, or null. */
  retiredAt?(metalId: Metal['id']): Promise<string | null>;
  /** Z5: the LwM2M registration and firmware state, as `lwm2m` (null when none). */
  lwm2m?: { describe(metalId: Metal['id']): Promise<unknown>; schema: TSchema };
}

/** The gateways' side of the list's `state` filter: IDs of the owner's metals with an interface in that state. */
export type MetalsInState = (ownerId: Metal['ownerId'], state: 'pending' | 'active' | 'blocked') => Promise<Set<string>>;

export function metalRoutes(
  app: FastifyInstance,
  metals: MetalService,
  spaces: SpaceService,
  ext?: MetalRouteExtensions,
  phase1: (metalId: Metal['id']) => Promise<Phase1Job | null> = async () => null,
  more: { inState?: MetalsInState; blocked?: (metalId: Metal['id']) => Promise<boolean> } = {},
): void {
  const { inState } = more;
  const detail = async (m: Metal) => {
    const job = await phase1(m.id);
    return {
      ...out(m),
      spaces: (await spaces.membershipsOfMetal(m.id)).map(({ metalId: _m, ...s }) => s),
      phase1: job && jobOut(job),
      retiredAt: (await ext?.retiredAt?.(m.id)) ?? null,
      ...(more.blocked ? { blocked: await more.blocked(m.id) } : {}),
      ...(ext ? { updates: await ext.describe(m.ownerId, m.id) } : {}),
      ...(ext?.lwm2m ? { lwm2m: await ext.lwm2m.describe(m.id) } : {}),
    };
  };
  const Detail = ext ? Type.Intersect([MetalDetail, Type.Object({ updates: ext.schema, ...(ext.lwm2m ? { lwm2m: ext.lwm2m.schema } : {}) })]) : MetalDetail;

  app.post<{ Body: CreateMetalInput }>(
    '/metals',
    {
      schema: {
        tags: ['metals'],
        summary: 'Declare a metal and its interfaces',
        body: Type.Object(
          { name: NameField, labels: Type.Optional(Labels), interfaces: Type.Array(InterfaceIn, { maxItems: 64 }), engine: Type.Optional(EngineIn) },
          { additionalProperties: false },
        ),
        response: { 201: MetalSchema, ...errorResponses(400, 409, 422) },
      },
    },
    async (req, reply) => reply.code(201).send(out(await metals.create(req.owner.id, req.body))),
  );

  app.get<{ Querystring: { name?: string; prefix?: string; state?: 'pending' | 'active' | 'blocked'; label?: string; vendor?: string; class?: string; glaze?: string } & PageParams }>(
    '/metals',
    {
      schema: {
        tags: ['metals'],
        summary: "List the caller's metals, oldest first, a page at a time",
        querystring: Type.Object(
          {
            name: Type.Optional(Type.String({ maxLength: 64 })),
            prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'names that start with this text (case-sensitive)' })),
            ...(inState
              ? {
                  state: Type.Optional(
                    Type.Union([Type.Literal('pending'), Type.Literal('active'), Type.Literal('blocked')], {
                      description: "metals with an interface in this state in the latest table of any of the caller's gateways (T11)",
                    }),
                  ),
                }
              : {}),
            label: Type.Optional(Type.String({ maxLength: 200, pattern: '^[^=]+=.*$', description: 'key=value' })),
            ...(ext
              ? {
                  vendor: Type.Optional(Type.String({ maxLength: 64, description: 'vendor ID (UUID) the metal registered in its profile' })),
                  class: Type.Optional(Type.String({ maxLength: 64, description: 'class ID (UUID) the metal registered in its profile' })),
                  glaze: Type.Optional(Type.String({ maxLength: 97, description: 'an installed Glaze: ID, name or name@version' })),
                }
              : {}),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(MetalSchema), ...errorResponses(400, 404) },
      },
    },
    async (req, reply) => {
      const [key, ...rest] = req.query.label?.split('=') ?? [];
      const label = key === undefined ? undefined : { key, value: rest.join('=') };
      const { vendor, class: klass, glaze } = req.query;
      const ids = ext && (vendor !== undefined || klass !== undefined || glaze !== undefined) ? await ext.matching(req.owner.id, { vendor, class: klass, glaze }) : undefined;
      // No filter: on SQLite the database joins the page's stored items into one blob (0015).
      if (req.query.name === undefined && req.query.prefix === undefined && req.query.state === undefined && label === undefined && ids === undefined) {
        const joined = await metals.listPageJson(req.owner.id, pageWindow('metals', req.query));
        if (joined) return reply.type('application/json; charset=utf-8').send(joinedPageBody('metals', joined));
      }
      const idSet = inState && req.query.state !== undefined ? await inState(req.owner.id, req.query.state) : undefined;
      const query = { name: req.query.name, namePrefix: req.query.prefix, label, ids, idSet };
      const page = await readPageJson('metals', req.query, (w) => metals.listStored(req.owner.id, query, w), (m) => ({ at: m.createdAt, id: m.id }), metalJson);
      return reply.type('application/json; charset=utf-8').send(page);
    },
  );

  app.get<{ Params: { ref: string } }>(
    '/metals/:ref',
    { schema: { tags: ['metals'], summary: 'Show a metal (by TIPS ID or name) with its Spaces', params: Type.Object({ ref: Ref }), response: { 200: Detail, ...errorResponses(404) } } },
    async (req) => detail(await metals.get(req.owner.id, req.params.ref)),
  );

  app.patch<{ Params: { ref: string }; Body: UpdateMetalInput }>(
    '/metals/:ref',
    {
      schema: {
        tags: ['metals'],
        summary: 'Rename, relabel, or replace the interface list',
        params: Type.Object({ ref: Ref }),
        body: Type.Object(
          {
            name: Type.Optional(NameField),
            labels: Type.Optional(Labels),
            engine: Type.Optional(EngineIn),
            interfaces: Type.Optional(Type.Array(InterfaceIn, { maxItems: 64 })),
            dropMemberships: Type.Optional(
              Type.Boolean({
                description:
                  'With interfaces: drop the Space memberships the new list breaks (an interface they use vanishes, or a Phase 1 interface loses pxe). Without it such a change is refused with 409 interfaces_in_use naming the Spaces.',
              }),
            ),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: MetalSchema, ...errorResponses(400, 404, 409, 422) },
      },
    },
    async (req) => out(await metals.update(req.owner.id, req.params.ref, req.body)),
  );

  app.delete<{ Params: { ref: string } }>(
    '/metals/:ref',
    { schema: { tags: ['metals'], summary: 'Delete a metal and its Space memberships', params: Type.Object({ ref: Ref }), response: { 204: noContent('Deleted'), ...errorResponses(404) } } },
    async (req, reply) => {
      await metals.delete(req.owner.id, req.params.ref);
      return reply.code(204).send();
    },
  );
}
