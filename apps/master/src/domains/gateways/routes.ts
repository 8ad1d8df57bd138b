import websocket from '@fastify/websocket';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { noContent } from '../../http/openapi-responses.ts';
import { errorResponses, NameField, Ref } from '../../http/schemas.ts';
import { DEFAULT_PAGE_LIMIT, Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { isTls, peerCertificate } from '../../tls/peer.ts';
import { GatewayError, type GatewayErrorCode } from './errors.ts';
import { type Gateway, MAX_TABLE_BYTES } from './model.ts';
import { GatewayAuthError, type GatewayService } from './service.ts';
import { GATEWAY_HEADERS } from './signature.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The gateway that signed this request (set by the /api/gateway/v1 authentication hook). */
    gateway: Gateway;
    /** The exact body bytes, which the TIPS-GW-1 signature covers. */
    rawBody: Buffer | undefined;
  }
  interface FastifyContextConfig {
    /**
     * false: the route is reachable without a gateway signature (enrollment only). 'channel': over
     * mTLS the gateway's certificate alone authenticates it (no TIPS-GW-1 headers needed; plain
     * HTTP still needs them) — for the registration path, whose answers nobody keeps as proof.
     */
    gatewayAuth?: boolean | 'channel';
  }
}

registerStatusTable<GatewayErrorCode>('gateways', {
  gateway_not_found: 404,
  gateway_name_taken: 409,
  enrollment_failed: 401,
  gateway_auth_failed: 401,
  table_too_large: 413,
  invalid_table: 400,
  table_changed: 409,
});

const Nullable = (s: ReturnType<typeof Type.String>) => Type.Union([s, Type.Null()]);
export const GatewaySchema = Type.Object({
  id: Type.String({ description: 'gateway ID (gwy_…)' }),
  name: Type.String(),
  enrolled: Type.Boolean(),
  connected: Type.Boolean({ description: 'its command channel is open to this master process' }),
  enrolledName: Nullable(Type.String()),
  enrolledAt: Nullable(Type.String()),
  enrollmentExpiresAt: Nullable(Type.String()),
  createdAt: Type.String(),
  lastSeenAt: Nullable(Type.String()),
});
const TableRow = Type.Object({}, { additionalProperties: true, description: 'one interface as the gateway reported it (T11): mac, ip, tipsId, state, type, gatewayInterface, nat …' });
const GatewayDetail = Type.Intersect([
  GatewaySchema,
  Type.Object({
    table: Type.Union([
      Type.Object({
        updatedAt: Type.String(),
        rowCount: Type.Integer({ description: 'rows in the whole table' }),
        rows: Type.Array(TableRow, { description: `the first page of rows (at most ${DEFAULT_PAGE_LIMIT}), in the gateway's order` }),
        nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null when `rows` is the whole table; else pass as ?cursor= to GET /gateways/{ref}/interfaces for the rest' }),
      }),
      Type.Null(),
    ]),
  }),
]);
const TablePage = Type.Object({
  updatedAt: Type.Union([Type.String(), Type.Null()], { description: 'when the gateway reported this table; null: never' }),
  items: Type.Array(TableRow),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as ?cursor= for the next page; null when this is the last page' }),
});

type Snapshot = { rows: Record<string, unknown>[]; updatedAt: string };

/**
 * One page of a gateway's interface table. The table is one snapshot the gateway replaces whole,
 * so a position is (the snapshot's time, a row index): a cursor of an older snapshot would skip or
 * repeat rows, and is refused with 409 table_changed instead.
 */
function tablePage(gatewayId: string, t: Snapshot, q: PageParams) {
  return readPage(
    `gateway-table:${gatewayId}`,
    q,
    async (w) => {
      if (w.after && w.after.at !== t.updatedAt) {
        throw new GatewayError('table_changed', `the gateway reported a new table (${t.updatedAt}) since this cursor; start again without cursor`, 'cursor');
      }
      const start = w.after ? Number(w.after.id) + 1 : 0;
      if (!Number.isSafeInteger(start) || start < 0) throw new GatewayError('table_changed', 'the cursor names no row of this table; start again without cursor', 'cursor');
      return t.rows.slice(start, start + w.limit).map((row, k) => ({ row, index: start + k }));
    },
    (x) => ({ at: t.updatedAt, id: String(x.index) }),
    (x) => x.row,
  );
}

const CertificateOut = Type.Object({
  certificate: Type.String({ description: "the gateway's TLS client certificate, PEM (its Ed25519 key, SAN urn:tips:gateway:<id>, clientAuth)" }),
  caChain: Type.String({ description: "intermediate then root CA certificates, PEM: verify the master's HTTPS certificate against these" }),
  notAfter: Type.String({ description: 'when the certificate expires; renew before with POST /certificate' }),
});

/** Where gateways reach the master: `url` (--public-url or the listen address), `tlsUrl` the HTTPS one (null: no HTTPS). */
export interface PublicUrls {
  url: string;
  tlsUrl: string | null;
}

/** Where a gateway keeps its state, in the commands we print (apps/gateway/README.md). */
const GATEWAY_DATA_DIR = '/var/lib/tips-gateway';

/**
 * The `tips-gateway enroll` commands for a new gateway: over the master's public URL, and over
 * HTTPS verifying the master against the TIPS root CA (`--ca`, from `tips ca show`).
 */
export function enrollCommands(urls: PublicUrls, token: string, name: string): { master: string; command: string; httpsMaster: string | null; httpsCommand: string | null } {
  const tail = `--token ${token} --data-dir ${GATEWAY_DATA_DIR} --name ${name}`;
  const httpsMaster = urls.url.startsWith('https:') ? urls.url : urls.tlsUrl;
  return {
    master: urls.url,
    command: `tips-gateway enroll --master ${urls.url} ${tail}`,
    httpsMaster,
    httpsCommand: httpsMaster && `tips-gateway enroll --master ${httpsMaster} --ca tips-ca.pem ${tail}`,
  };
}

const EnrollOut = Type.Object({
  master: Type.String({ description: "the master's public URL (--public-url, else its listen address)" }),
  command: Type.String({ description: 'run on the gateway: tips-gateway enroll over the public URL' }),
  httpsMaster: Nullable(Type.String({ description: "the master's HTTPS URL; null when it serves no HTTPS" })),
  httpsCommand: Nullable(Type.String({ description: 'the same over HTTPS, verifying the master against the TIPS CA in tips-ca.pem (`tips ca show > tips-ca.pem`)' })),
});

/** The owner's gateways (inside the authenticated /api/v1 scope). Another owner's gateway is a 404. */
export function gatewayOwnerRoutes(app: FastifyInstance, gateways: GatewayService, publicUrls?: () => PublicUrls): void {
  app.post<{ Body: { name: string } }>(
    '/gateways',
    {
      schema: {
        tags: ['gateways'],
        summary: 'Declare a gateway; returns its one-time enrollment token (shown only here, valid 24 h, single use)',
        body: Type.Object({ name: NameField }, { additionalProperties: false }),
        response: { 201: Type.Object({ gateway: GatewaySchema, enrollmentToken: Type.String(), enroll: EnrollOut }), ...errorResponses(400, 409) },
      },
    },
    async (req, reply) => {
      const r = await gateways.create(req.owner.id, req.body);
      // Without a configured URL (in-process use), the address this request reached the master at.
      const urls = publicUrls?.() ?? { url: `${req.protocol}://${req.host}`, tlsUrl: req.protocol === 'https' ? `https://${req.host}` : null };
      return reply.code(201).send({ ...r, enroll: enrollCommands(urls, r.enrollmentToken, r.gateway.name) });
    },
  );

  app.get<{ Querystring: PageParams }>(
    '/gateways',
    {
      schema: {
        tags: ['gateways'],
        summary: "List the caller's gateways, oldest first, a page at a time",
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(GatewaySchema), ...errorResponses(400) },
      },
    },
    async (req) => readPage('gateways', req.query, (w) => gateways.list(req.owner.id, w), (g) => ({ at: g.createdAt, id: g.id })),
  );

  app.get<{ Params: { ref: string } }>(
    '/gateways/:ref',
    {
      schema: {
        tags: ['gateways'],
        summary: 'Show a gateway (by ID or name) with its latest interface table (T11)',
        params: Type.Object({ ref: Ref }),
        response: { 200: GatewayDetail, ...errorResponses(404) },
      },
    },
    async (req) => {
      const g = await gateways.show(req.owner.id, req.params.ref);
      if (!g.table) return g;
      const page = await tablePage(g.id, g.table, {});
      return { ...g, table: { updatedAt: g.table.updatedAt, rowCount: g.table.rows.length, rows: page.items, nextCursor: page.nextCursor } };
    },
  );

  app.get<{ Params: { ref: string }; Querystring: PageParams }>(
    '/gateways/:ref/interfaces',
    {
      schema: {
        tags: ['gateways'],
        summary: "A gateway's latest interface table (T11), a page at a time in the gateway's order",
        params: Type.Object({ ref: Ref }),
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: TablePage, ...errorResponses(400, 404, 409) },
      },
    },
    async (req) => {
      const g = await gateways.show(req.owner.id, req.params.ref);
      if (!g.table) return { updatedAt: null, ...(await tablePage(g.id, { rows: [], updatedAt: '' }, req.query)) };
      return { updatedAt: g.table.updatedAt, ...(await tablePage(g.id, g.table, req.query)) };
    },
  );

  app.delete<{ Params: { ref: string } }>(
    '/gateways/:ref',
    { schema: { tags: ['gateways'], summary: 'Remove a gateway: revokes its key and closes its channel', params: Type.Object({ ref: Ref }), response: { 204: noContent('Removed'), ...errorResponses(404) } } },
    async (req, reply) => {
      await gateways.delete(req.owner.id, req.params.ref);
      return reply.code(204).send();
    },
  );
}

/**
 * Authentication of the gateway API: keeps the raw body for the signature, then verifies the
 * TIPS-GW-1 headers before validation, so an unauthenticated caller learns nothing of the schemas.
 */
export function installGatewayAuth(scope: FastifyInstance, gateways: GatewayService): void {
  scope.decorateRequest('gateway', null as unknown as Gateway);
  scope.decorateRequest('rawBody', undefined);
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_TABLE_BYTES }, (req, body, done) => {
    const raw = body as Buffer;
    req.rawBody = raw;
    if (raw.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(raw.toString('utf8')));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  scope.addHook('preValidation', async (req) => {
    if (req.routeOptions.config.gatewayAuth === false) {
      // Enrollment is unsigned, but with --gateway-require-tls it too is served over HTTPS only.
      if (gateways.requiresTls && !isTls(req)) {
        req.log.warn({ securityEvent: 'gateway_auth_failed', why: 'plain HTTP refused (--gateway-require-tls)', ip: req.ip }, 'gateway request refused');
        throw new GatewayAuthError('plain HTTP refused');
      }
      return;
    }
    const mode = req.routeOptions.config.gatewayAuth === 'channel' && isTls(req) && req.headers[GATEWAY_HEADERS.signature] === undefined ? 'channel' : 'signature';
    try {
      if (mode === 'channel') {
        req.gateway = await gateways.authenticateChannel(req.raw.socket, () => peerCertificate(req));
        gateways.countAuth(mode, 'ok');
        return;
      }
      req.gateway = await gateways.authenticate({
        headers: req.headers,
        method: req.method,
        pathWithQuery: req.url,
        body: req.rawBody,
        ...(isTls(req) ? { tls: { peer: peerCertificate(req) } } : {}),
      });
      gateways.countAuth(mode, 'ok');
    } catch (err) {
      gateways.countAuth(mode, 'refused');
      if (err instanceof GatewayAuthError) {
        const claimed = req.headers[GATEWAY_HEADERS.gateway];
        req.log.warn(
          { securityEvent: 'gateway_auth_failed', why: err.why, claimedGateway: typeof claimed === 'string' ? claimed.slice(0, 40) : undefined, ip: req.ip, tls: isTls(req) },
          'gateway request refused',
        );
      }
      throw err;
    }
  });
}

/** The gateway's own API (enrollment, interface table, command channel), in the /api/gateway/v1 scope. */
export async function gatewayApiRoutes(scope: FastifyInstance, gateways: GatewayService): Promise<void> {
  await scope.register(websocket, { options: { maxPayload: 64 * 1024 } });

  scope.post<{ Body: { enrollmentToken: string; name?: string; publicKey: string } }>(
    '/enroll',
    {
      config: { gatewayAuth: false },
      schema: {
        tags: ['gateway API'],
        summary:
          'Enroll a gateway with its one-time token and its Ed25519 public key (SPKI PEM); not signed. Returns its TLS client certificate for that key (urn:tips:gateway:<id>) and the CA chain',
        security: [],
        body: Type.Object(
          { enrollmentToken: Type.String({ maxLength: 128 }), name: Type.Optional(NameField), publicKey: Type.String({ maxLength: 1024 }) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([Type.Object({ gatewayId: Type.String() }), CertificateOut]), ...errorResponses(400, 401) },
      },
    },
    async (req, reply) => {
      const r = await gateways.enrollWithCertificate(req.body).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'enrollment_failed') req.log.warn({ securityEvent: 'gateway_enrollment_failed', ip: req.ip }, 'gateway enrollment refused');
        throw err;
      });
      req.log.info({ securityEvent: 'gateway_enrolled', gatewayId: r.gateway.id }, 'gateway enrolled');
      return reply.code(201).send({ gatewayId: r.gateway.id, certificate: r.certificate, caChain: r.caChain, notAfter: r.notAfter });
    },
  );

  scope.post(
    '/certificate',
    {
      schema: {
        tags: ['gateway API'],
        summary: 'Renew this gateway’s TLS client certificate (same key); signed, and over TLS with the current certificate',
        response: { 200: CertificateOut, ...errorResponses(401) },
      },
    },
    async (req) => {
      const r = await gateways.issueCertificate(req.gateway);
      req.log.info({ securityEvent: 'gateway_certificate_renewed', gatewayId: req.gateway.id, notAfter: r.notAfter }, 'gateway certificate renewed');
      return r;
    },
  );

  scope.put<{ Body: { rows: unknown } }>(
    '/table',
    {
      schema: {
        tags: ['gateway API'],
        summary: "Replace the master's copy of this gateway's interface table (T11)",
        body: Type.Object({ rows: Type.Array(Type.Unknown()) }, { additionalProperties: true }),
        response: { 204: noContent('Stored'), ...errorResponses(400, 401, 413) },
      },
    },
    async (req, reply) => {
      await gateways.saveTable(req.gateway, req.body.rows);
      return reply.code(204).send();
    },
  );

  scope.get('/channel', { websocket: true, schema: { hide: true } }, (socket, req) => {
    const id = req.gateway.id;
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, 30_000);
    socket.on('pong', () => {
      alive = true;
    });
    socket.on('message', (data, isBinary) => {
      alive = true;
      if (isBinary) return;
      gateways.channelMessage(id, data.toString()).catch((err: Error) => req.log.info({ gatewayId: id, msg: err.message }, 'channel message ignored'));
    });
    socket.on('close', () => {
      clearInterval(ping);
      gateways.channelClosed(id, socket);
    });
    socket.on('error', (err) => req.log.debug({ gatewayId: id, msg: err.message }, 'channel error'));
    gateways.channelOpened(id, socket).catch((err: Error) => {
      req.log.error({ err, gatewayId: id }, 'channel setup failed');
      socket.close(1011, 'internal error');
    });
  });
}
