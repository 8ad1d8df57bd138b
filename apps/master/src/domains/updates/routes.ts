import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ByteRange } from '../../blob/blob-store.ts';
import { registerStatusTable } from '../../http/errors.ts';
import { binary, bytesBody, noContent } from '../../http/openapi-responses.ts';
import { errorResponses, Ref } from '../../http/schemas.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { parseRange } from '../glazes/routes.ts';
import { UpdateError, type UpdateErrorCode } from './errors.ts';
import { MAX_REPORT_BYTES, METAL_EVENT_KINDS, type MetalEventKind, TAMPER_KINDS, type TamperChange } from './model.ts';
import type { ProfileInput, UpdateService } from './service.ts';

registerStatusTable<UpdateErrorCode>('updates', {
  unauthenticated: 401,
  forbidden: 403,
  reauth_required: 401,
  glaze_not_found: 404,
  space_not_found: 422,
  report_invalid: 401,
  report_malformed: 400,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  invalid_profile: 400,
  invalid_tamper_report: 400,
  nothing_to_roll_back: 409,
});

export const COSE_MEDIA = 'application/cose';
const Str = (max: number) => Type.String({ maxLength: max });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const WorkItemOut = Type.Object({
  spaceId: Type.String(),
  spaceName: Type.String(),
  phase: Type.Integer(),
  glaze: Type.Object({ id: Type.String(), name: Type.String(), version: Type.String(), size: Type.Integer(), sha256: Type.String(), handler: Type.String() }),
  manifest: Type.String({ description: 'the operator-signed SUIT envelope, base64' }),
  blobPath: Type.String(),
  interfaces: Type.Array(Type.Object({ name: Type.String(), mac: Type.String(), addresses: Type.Array(Type.String()) }), {
    description: "T17: the metal's interfaces that link it to this Space, with the addresses its profile registered; with two or more the client downloads disjoint ranges over each",
  }),
});
const WorkOut = Type.Object({
  items: Type.Array(WorkItemOut, { description: 'exactly one per Space of the asked phase the metal is in that has a signed Glaze' }),
  notify: Type.Union([Type.Object({ url: Type.String({ description: 'mqtts://host:port' }), topic: Type.String() }), Type.Null()]),
  reauthAfterSeconds: Type.Integer(),
  rollbacks: Type.Array(
    Type.Object({ eventId: Type.String(), spaceId: Type.String(), glazeId: Type.String(), requestedAt: Type.String() }),
    { description: '`tips metal rollback` requests for Spaces of this phase the metal has not answered with a report yet (the pull side of the MQTT hint)' },
  ),
});

/**
 * The Update Manager's metal API (inside /api/metal/v1, after mTLS): every request also carries
 * `Authorization: PoP <token>` — the one-hop token this metal got from POST /tokens/issue, bound
 * to its certificate key — no older than the re-authentication period.
 */
export function updateMetalRoutes(app: FastifyInstance, updates: UpdateService, opts: { masterUri?: () => string | undefined } = {}): void {
  app.addHook('onRequest', async (req) => {
    await updates.authorize(req.metal, req.headers.authorization);
  });
  app.addContentTypeParser(COSE_MEDIA, { parseAs: 'buffer', bodyLimit: MAX_REPORT_BYTES }, (_req, body, done) => done(null, body));

  app.put<{ Body: ProfileInput }>(
    '/profile',
    {
      schema: {
        tags: ['metal'],
        summary: 'Register the metal profile (S7): vendor/class IDs, installed Glazes, interfaces, protocols',
        body: Type.Object(
          {
            vendorId: Nullable(Str(64)),
            classId: Nullable(Str(64)),
            glazes: Type.Array(Type.Object({ id: Str(64), name: Str(64), version: Str(64), sequence: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }), { maxItems: 256 }),
            interfaces: Type.Array(Type.Object({ name: Str(64), mac: Str(64), addresses: Type.Array(Str(64), { maxItems: 32 }) }, { additionalProperties: false }), { maxItems: 64 }),
            protocols: Type.Array(Type.Union([Type.Literal('https'), Type.Literal('mqtt')]), { maxItems: 4 }),
          },
          { additionalProperties: false },
        ),
        response: { 204: noContent('Registered'), ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      await updates.putProfile(req.metal, req.body);
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { phase: string } }>(
    '/work',
    {
      schema: {
        tags: ['metal'],
        summary: "Phase 2/3 work: one signed manifest per Space of that phase the metal is in (never another Space's)",
        querystring: Type.Object({ phase: Type.Union([Type.Literal('2'), Type.Literal('3')]) }, { additionalProperties: false }),
        response: { 200: WorkOut, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => updates.work(req.metal, Number(req.query.phase) as 2 | 3),
  );

  app.get<{ Params: { id: string } }>(
    '/glazes/:id/blob',
    {
      schema: {
        tags: ['metal'],
        summary: "A Glaze payload (single Range, If-Range) — only the Glaze of a Space the metal is in",
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: {
          200: binary('application/octet-stream', 'the whole payload'),
          206: binary('application/octet-stream', 'the requested range (Content-Range says which)'),
          ...errorResponses(401, 403, 404, 416),
        },
      },
    },
    async (req, reply) => {
      const glaze = await updates.blobGlaze(req.metal, req.params.id);
      const etag = `"sha256:${glaze.sha256}"`;
      reply.header('etag', etag).header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream');
      let range: ByteRange | undefined;
      const ifRange = req.headers['if-range'];
      if (req.headers.range && (!ifRange || ifRange === etag)) {
        const r = parseRange(req.headers.range, glaze.size);
        if (r === 'unsatisfiable') {
          reply.header('content-range', `bytes */${glaze.size}`);
          throw new UpdateError('range_not_satisfiable', `range ${req.headers.range.slice(0, 64)} is outside 0-${glaze.size - 1}`, 'range');
        }
        range = r;
      }
      const stream = await updates.openBlob(req.metal, glaze, range);
      if (range) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${glaze.size}`).header('content-length', range.end - range.start + 1);
      else reply.header('content-length', glaze.size);
      return reply.send(stream);
    },
  );

  app.get(
    '/trust-list',
    {
      schema: {
        tags: ['metal'],
        summary: "The metal's trust list (S5): the owner's active operator keys and this master, CBOR as @tips/trust encodes it",
        response: { 200: binary('application/cbor', 'encodeTrustList() bytes'), ...errorResponses(401, 403, 404) },
      },
    },
    async (req, reply) => reply.header('content-type', 'application/cbor').send(Buffer.from(await updates.trustList(req.metal, opts.masterUri?.()))),
  );

  app.post(
    '/reports',
    {
      schema: {
        tags: ['metal'],
        summary: 'A signed install report: COSE_Sign1 by the key of this metal certificate over the CBOR map { glazeId, spaceId, result, reason, sequence, at }',
        requestBody: bytesBody(COSE_MEDIA, 'COSE_Sign1 (tagged or not), at most 64 KiB'),
        response: { 204: noContent('Recorded'), ...errorResponses(400, 401, 403, 404, 415, 422) },
      },
    },
    async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) throw new UpdateError('unsupported_media_type', `send the report as Content-Type: ${COSE_MEDIA}`, 'content-type');
      await updates.report(req.metal, new Uint8Array(req.body));
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { changes: TamperChange[] } }>(
    '/tamper',
    {
      schema: {
        tags: ['metal'],
        summary: 'T16: software installed outside TIPS — recorded for the owner; every interface of the metal is blocked at every gateway',
        body: Type.Object(
          {
            changes: Type.Array(
              Type.Object(
                { path: Str(4096), kind: Type.Union(TAMPER_KINDS.map((k) => Type.Literal(k))), detail: Str(4096) },
                { additionalProperties: false },
              ),
              { minItems: 1, maxItems: 1000 },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ eventId: Type.String(), gateways: Type.Integer({ description: 'gateways told to block' }) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      req.log.warn({ event: 'security', code: 'tamper', metal: req.metal.metalId, changes: req.body.changes.length }, 'tamper report');
      return reply.code(202).send(await updates.tamper(req.metal, req.body.changes));
    },
  );
}

const ReportOut = Type.Object({
  id: Type.String(),
  spaceId: Type.String(),
  glazeId: Type.String(),
  result: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  sequence: Type.Integer(),
  at: Type.String(),
  createdAt: Type.String(),
  rolledBackTo: Type.Optional(
    Type.Object(
      { glazeId: Type.Union([Type.String(), Type.Null()]), glazeName: Type.Union([Type.String(), Type.Null()]), version: Type.Union([Type.String(), Type.Null()]) },
      { description: 'a rolled_back report that left the installed Glaze: what the metal went back to (glazeId null: nothing TIPS installed)' },
    ),
  ),
});
const EventOut = Type.Object({ id: Type.String(), kind: Type.String(), code: Type.String(), detail: Type.Record(Type.String(), Type.Unknown()), createdAt: Type.String() });
/** The additive part of `GET /api/v1/metals/:ref` (tips metal show). */
export const MetalUpdatesSchema = Type.Object({
  profile: Type.Union([
    Type.Object({
      vendorId: Type.Union([Type.String(), Type.Null()]),
      classId: Type.Union([Type.String(), Type.Null()]),
      glazes: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), version: Type.String(), sequence: Type.Integer() })),
      interfaces: Type.Array(Type.Object({ name: Type.String(), mac: Type.String(), addresses: Type.Array(Type.String()) })),
      protocols: Type.Array(Type.String()),
      updatedAt: Type.String(),
    }),
    Type.Null(),
  ]),
  installed: Type.Array(
    Type.Object({
      spaceId: Type.String(),
      glazeId: Type.String(),
      glazeName: Type.Union([Type.String(), Type.Null()]),
      version: Type.Union([Type.String(), Type.Null()]),
      sequence: Type.Union([Type.Integer(), Type.Null()]),
      installedAt: Type.Union([Type.String(), Type.Null()], { description: 'when it was installed, or when the metal went back to it (a rollback)' }),
    }),
  ),
  lastReport: Type.Union([ReportOut, Type.Null()]),
  history: Type.Array(ReportOut, { description: 'the newest reports first' }),
  events: Type.Array(EventOut, { description: 'tamper reports, refused authentications, rollback requests, rollbacks done (rolled_back: detail from/to Glaze IDs); newest first' }),
});

/** Owner API (inside /api/v1): rollback requests and the metal's events. */
export function updateOwnerRoutes(app: FastifyInstance, updates: UpdateService): void {
  app.post<{ Params: { ref: string }; Body: { glaze?: string } | undefined }>(
    '/metals/:ref/rollback',
    {
      schema: {
        tags: ['metals'],
        summary: 'Ask a metal to roll back an installed Glaze (all of them without `glaze`): recorded, and the metal is notified over MQTT',
        params: Type.Object({ ref: Ref }),
        body: Type.Optional(Type.Object({ glaze: Type.Optional(Ref) }, { additionalProperties: false })),
        response: {
          202: Type.Object({ eventId: Type.String(), spaces: Type.Array(Type.Object({ spaceId: Type.String(), glazeId: Type.String() })), notified: Type.Integer() }),
          ...errorResponses(404, 409),
        },
      },
    },
    async (req, reply) => reply.code(202).send(await updates.requestRollback(req.owner.id, req.params.ref, req.body?.glaze)),
  );

  app.get<{ Querystring: PageParams }>(
    '/tamper-events',
    {
      schema: {
        tags: ['metals'],
        summary: "Tamper reports (T16) of all the caller's metals, newest first, a page at a time: what changed, and whether the metal is blocked now",
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: {
          200: Page(
            Type.Intersect([
              EventOut,
              Type.Object({
                metalId: Type.String(),
                metalName: Type.String(),
                blocked: Type.Boolean({ description: 'the metal is blocked at every gateway now (a tamper report blocks it; the owner may have unblocked it since)' }),
              }),
            ]),
          ),
          ...errorResponses(400),
        },
      },
    },
    async (req) => readPage('tamper-events', req.query, (w) => updates.tamperEvents(req.owner.id, w), (e) => ({ at: e.createdAt, id: e.id })),
  );

  app.get<{ Params: { ref: string }; Querystring: { kind?: MetalEventKind } }>(
    '/metals/:ref/events',
    {
      schema: {
        tags: ['metals'],
        summary: "A metal's events, newest first: tamper reports with what changed, refused metal-API authentications, rollback requests",
        params: Type.Object({ ref: Ref }),
        querystring: Type.Object({ kind: Type.Optional(Type.Union(METAL_EVENT_KINDS.map((k) => Type.Literal(k)))) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(EventOut) }), ...errorResponses(404) },
      },
    },
    async (req) => ({ items: await updates.events(req.owner.id, req.params.ref, req.query.kind) }),
  );
}
