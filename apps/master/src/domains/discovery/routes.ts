import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { GatewayId } from '@tips/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { jsonLines } from '../../http/openapi-responses.ts';
import { errorResponses, Ref } from '../../http/schemas.ts';
import { filtersOf, Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import type { DiscoveryErrorCode } from './errors.ts';
import type { RegistrationRecord } from './model.ts';
import { type DiscoveryService, MAX_BATCH, type RawQuery, type RawRegistration } from './service.ts';

registerStatusTable<DiscoveryErrorCode>('discovery', {
  metal_not_blocked: 409,
  idempotency_key_reused: 409,
});

const RecordSchema = Type.Object({
  at: Type.String(),
  gatewayId: Type.String(),
  gatewayName: Type.Optional(Type.String({ description: 'the name of the gateway that asked; absent once that gateway is removed' })),
  mac: Type.String(),
  ip: Type.String(),
  interfaceType: Type.String(),
  gatewayInterface: Type.String(),
  pxe: Type.Boolean(),
  hostname: Type.Optional(Type.String()),
  decision: Type.String(),
  reason: Type.Optional(Type.String()),
  tipsId: Type.Optional(Type.String()),
});

const Filters = {
  mac: Type.Optional(Type.String({ maxLength: 64 })),
  gatewayId: Type.Optional(Type.String({ maxLength: 64 })),
  reason: Type.Optional(Type.String({ maxLength: 32 })),
  since: Type.Optional(Type.String({ maxLength: 40, description: 'ISO-8601' })),
};
const ListQuery = Type.Object({ ...Filters, ...PageQuery }, { additionalProperties: false });
const AllQuery = Type.Object({ ...Filters, decision: Type.Optional(Type.String({ maxLength: 16 })), ...PageQuery }, { additionalProperties: false });
const ExportQuery = Type.Object({ ...Filters }, { additionalProperties: false });
const AllExportQuery = Type.Object({ ...Filters, decision: Type.Optional(Type.String({ maxLength: 16 })) }, { additionalProperties: false });

/** The public shape of a decision record: no internal id, no owner, absent fields left out. */
export function recordOut(r: RegistrationRecord, gatewayNames?: Map<GatewayId, string>) {
  const gatewayName = gatewayNames?.get(r.gatewayId);
  return {
    at: r.at,
    gatewayId: r.gatewayId,
    ...(gatewayName !== undefined ? { gatewayName } : {}),
    mac: r.mac,
    ip: r.ip,
    interfaceType: r.interfaceType,
    gatewayInterface: r.gatewayInterface,
    pxe: r.pxe,
    ...(r.hostname !== null ? { hostname: r.hostname } : {}),
    decision: r.decision,
    ...(r.reason !== null ? { reason: r.reason } : {}),
    ...(r.tipsId !== null ? { tipsId: r.tipsId } : {}),
  };
}

const BlockOut = Type.Object({ tipsId: Type.String(), macs: Type.Array(Type.String()), gateways: Type.Integer({ description: 'gateways told' }) });

/** TIPS-D for the owner (inside /api/v1): decision records (T9) and the block hook (T16). */
export function discoveryOwnerRoutes(app: FastifyInstance, discovery: DiscoveryService): void {
  app.post<{ Params: { ref: string }; Body: { reason?: string } | undefined }>(
    '/metals/:ref/block',
    {
      schema: {
        tags: ['discovery'],
        summary: "Block every interface of a metal at all the owner's gateways (T16), until unblocked",
        params: Type.Object({ ref: Ref }),
        body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ maxLength: 256 })) }, { additionalProperties: false })),
        response: { 202: BlockOut, ...errorResponses(400, 404) },
      },
    },
    async (req, reply) => reply.code(202).send(await discovery.block(req.owner.id, req.params.ref, req.body?.reason)),
  );

  app.post<{ Params: { ref: string } }>(
    '/metals/:ref/unblock',
    {
      schema: {
        tags: ['discovery'],
        summary: 'Lift a block: every gateway of the owner is told to unblock each MAC of the metal',
        params: Type.Object({ ref: Ref }),
        response: { 202: BlockOut, ...errorResponses(404, 409) },
      },
    },
    async (req, reply) => reply.code(202).send(await discovery.unblock(req.owner.id, req.params.ref)),
  );

  app.get<{ Querystring: RawQuery & PageParams }>(
    '/discovery/failures',
    {
      schema: {
        tags: ['discovery'],
        summary: "Failed registrations seen by the caller's gateways (T9), newest first, a page at a time",
        querystring: ListQuery,
        response: { 200: Page(RecordSchema), ...errorResponses(400) },
      },
    },
    async (req) => {
      const names = await discovery.gatewayNames(req.owner.id);
      return readPage('discovery-failures', req.query, (w) => discovery.list(req.owner.id, filtersOf(req.query), true, w), (r) => ({ at: r.at, id: r.id }), (r) => recordOut(r, names));
    },
  );

  app.get<{ Querystring: RawQuery & PageParams }>(
    '/discovery/registrations',
    {
      schema: {
        tags: ['discovery'],
        summary: "Every registration decision of the caller's gateways, newest first, a page at a time",
        querystring: AllQuery,
        response: { 200: Page(RecordSchema), ...errorResponses(400) },
      },
    },
    async (req) => {
      const names = await discovery.gatewayNames(req.owner.id);
      return readPage('discovery-registrations', req.query, (w) => discovery.list(req.owner.id, filtersOf(req.query), false, w), (r) => ({ at: r.at, id: r.id }), (r) => recordOut(r, names));
    },
  );

  const jsonl = (failuresOnly: boolean) => async (req: FastifyRequest<{ Querystring: RawQuery }>, reply: FastifyReply) => {
    const records = discovery.export(req.owner.id, req.query, failuresOnly);
    // Parse the filters before the first byte goes out, so bad input is still a 400.
    const first = await records.next();
    const names = await discovery.gatewayNames(req.owner.id);
    async function* lines() {
      if (first.done) return;
      yield `${JSON.stringify(recordOut(first.value, names))}\n`;
      for await (const r of records) yield `${JSON.stringify(recordOut(r, names))}\n`;
    }
    return reply.type('application/x-ndjson').send(Readable.from(lines()));
  };

  app.get<{ Querystring: RawQuery }>(
    '/discovery/failures.jsonl',
    { schema: { tags: ['discovery'], summary: 'Failed registrations as JSON lines, oldest first (for anomaly detection)', querystring: ExportQuery, response: { 200: jsonLines(RecordSchema), ...errorResponses(400) } } },
    jsonl(true),
  );

  app.get<{ Querystring: RawQuery }>(
    '/discovery/registrations.jsonl',
    { schema: { tags: ['discovery'], summary: 'Every registration decision as JSON lines, oldest first', querystring: AllExportQuery, response: { 200: jsonLines(RecordSchema), ...errorResponses(400) } } },
    jsonl(false),
  );
}

const Decision = Type.Object({
  decision: Type.Union([Type.Literal('active'), Type.Literal('blocked')]),
  tipsId: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
});

/** TIPS-D for gateways (inside the signed /api/gateway/v1 scope): the registration decision (T5, T6). */
export function discoveryGatewayRoutes(scope: FastifyInstance, discovery: DiscoveryService): void {
  scope.post<{ Body: RawRegistration }>(
    '/registrations',
    {
      config: { gatewayAuth: 'channel' },
      schema: {
        security: [{ gatewaySignature: [] }, { gatewayCertificate: [] }],
        tags: ['gateway API'],
        summary: 'Report a joining interface; answers active (with the TIPS ID) or blocked (with a reason)',
        body: Type.Object(
          {
            mac: Type.String({ maxLength: 64 }),
            ip: Type.String({ maxLength: 64 }),
            gatewayInterface: Type.String({ maxLength: 64 }),
            interfaceType: Type.Optional(Type.String({ maxLength: 16, description: 'ethernet | wifi | other' })),
            pxe: Type.Optional(Type.Boolean()),
            hostname: Type.Optional(Type.String({ maxLength: 255 })),
            idempotencyKey: Type.Optional(
              Type.String({
                maxLength: 64,
                description: "the gateway's key for this registration, the same on every retry: a retry of a registration already recorded is answered from that record (8–64 of A–Z a–z 0–9 . _ : -)",
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Decision, ...errorResponses(400, 401, 409) },
      },
    },
    async (req) => discovery.register(req.gateway, req.body),
  );

  scope.post<{ Body: { items: unknown } }>(
    '/registrations/batch',
    {
      config: { gatewayAuth: 'channel' },
      schema: {
        security: [{ gatewaySignature: [] }, { gatewayCertificate: [] }],
        tags: ['gateway API'],
        summary: `Report up to ${MAX_BATCH} joining interfaces at once (a table re-registered after a restart, a fleet powering on); answers one decision per item, in order`,
        description:
          'Each item has the body of POST /registrations ({mac, ip, gatewayInterface, interfaceType?, pxe?, hostname?}) and is decided by the same rule and recorded. ' +
          'A bad item refuses the whole batch (400, field `items[i].name`) and records nothing. ' +
          'An item whose idempotencyKey this gateway already sent is answered from the decision recorded then and adds no record (a retry after a lost answer).',
        body: Type.Object({ items: Type.Array(Type.Unknown(), { description: `1–${MAX_BATCH} registrations` }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(Decision) }), ...errorResponses(400, 401, 409) },
      },
    },
    async (req) => ({ items: await discovery.registerBatch(req.gateway, req.body.items) }),
  );
}
