import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ByteRange } from '../../blob/blob-store.ts';
import { registerStatusTable } from '../../http/errors.ts';
import { binary, bytesBody, noContent } from '../../http/openapi-responses.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { errorResponses, Ref } from '../../http/schemas.ts';
import { parseRange } from '../glazes/routes.ts';
import { type ProvisioningErrorCode, ProvisioningError } from './errors.ts';
import { JOB_STATES, MAX_REPORT_BYTES, type Phase1Job } from './model.ts';
import type { ProvisioningService } from './service.ts';

registerStatusTable<ProvisioningErrorCode>('provisioning', {
  unknown_metal: 404,
  no_default_space: 409,
  job_not_found: 404,
  phase1_token_invalid: 401,
  job_claimed: 409,
  waiting_for_glaze: 409,
  job_not_installing: 409,
  report_invalid: 401,
  job_running: 409,
  glaze_unavailable: 409,
  range_not_satisfiable: 416,
  invalid_base: 400,
  invalid_installer_key: 400,
  report_malformed: 422,
  wrong_mac: 403,
  report_media_type: 415,
});

/** The COSE media type installer reports travel in (RFC 9052 §11; CONTRACT A3). */
export const COSE_MEDIA = 'application/cose';

const Nullable = <T extends ReturnType<typeof Type.String>>(s: T) => Type.Union([s, Type.Null()]);
const MacField = Type.String({ maxLength: 64, description: 'the metal interface MAC the gateway attests from its lease table', examples: ['02:00:00:00:00:01'] });

export const JobSchema = Type.Object({
  id: Type.String({ description: 'Phase 1 job ID (p1j_…)' }),
  metalId: Type.String(),
  interfaceName: Type.String({ description: 'the one PXE interface the metal is provisioned over' }),
  mac: Type.String(),
  spaceId: Type.String({ description: "the metal's default Space when the job was made" }),
  engine: Type.String({ description: 'builtin | tinkerbell' }),
  state: Type.String({ description: JOB_STATES.join(' | ') }),
  reason: Nullable(Type.String({ description: 'why the job waits or failed (a code such as no_glaze, suit_rollback, superseded)' })),
  detail: Nullable(Type.String()),
  glaze: Type.Union([
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      size: Type.Integer(),
      sha256: Type.String(),
      sequence: Type.Integer({ description: "the signed manifest's sequence number" }),
    }),
    Type.Null(),
  ], { description: 'the Glaze pinned at the job (a later change of the Space’s Glaze does not reach it); null while waiting' }),
  claimed: Type.Boolean({ description: 'an installer key is bound to the job' }),
  transitions: Type.Array(Type.Object({ state: Type.String(), at: Type.String(), reason: Nullable(Type.String()) })),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
const ReportSchema = Type.Object({
  receivedAt: Type.String(),
  cose: Type.String({ description: 'the COSE_Sign1 the installer sent, base64' }),
  payload: Type.Object({
    jobId: Type.String(),
    result: Type.String({ description: 'installed | failed' }),
    reason: Nullable(Type.String()),
    detail: Nullable(Type.String()),
    glazeSha256: Type.String(),
    bytesWritten: Type.Integer(),
    disk: Type.String(),
    at: Type.String(),
  }),
});
const JobDetail = Type.Intersect([JobSchema, Type.Object({ report: Type.Union([ReportSchema, Type.Null()]) })]);

export function jobOut(j: Phase1Job) {
  return {
    id: j.id,
    metalId: j.metalId,
    interfaceName: j.interfaceName,
    mac: j.mac,
    spaceId: j.spaceId,
    engine: j.engine,
    state: j.state,
    reason: j.reason,
    detail: j.detail,
    glaze: j.glaze && { id: j.glaze.id, name: j.glaze.name, size: j.glaze.size, sha256: j.glaze.sha256, sequence: j.glaze.sequence },
    claimed: j.installerKey !== null,
    transitions: j.transitions,
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
  };
}
const jobDetail = (j: Phase1Job) => ({
  ...jobOut(j),
  report: j.report && { receivedAt: j.report.receivedAt, cose: Buffer.from(j.report.cose).toString('base64'), payload: j.report.payload },
});

/** Phase 1 jobs for the owner (inside /api/v1). */
export function provisioningOwnerRoutes(app: FastifyInstance, provisioning: ProvisioningService): void {
  app.get<{ Querystring: { metal?: string; state?: string } & PageParams }>(
    '/provisioning/jobs',
    {
      schema: {
        tags: ['provisioning'],
        summary: "The caller's Phase 1 jobs (history included), newest first, a page at a time",
        querystring: Type.Object(
          { metal: Type.Optional(Ref), state: Type.Optional(Type.String({ maxLength: 32, description: JOB_STATES.join(' | ') })), ...PageQuery },
          { additionalProperties: false },
        ),
        response: { 200: Page(JobSchema), ...errorResponses(400, 404) },
      },
    },
    async (req) =>
      readPage('phase1-jobs', req.query, (w) => provisioning.list(req.owner.id, { metal: req.query.metal, state: req.query.state }, w), (j) => ({ at: j.createdAt, id: j.id }), jobOut),
  );

  app.get<{ Params: { job: string } }>(
    '/provisioning/jobs/:job',
    {
      schema: {
        tags: ['provisioning'],
        summary: 'Show a Phase 1 job with its transitions and the installer’s signed report',
        params: Type.Object({ job: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: JobDetail, ...errorResponses(404) },
      },
    },
    async (req) => jobDetail(await provisioning.get(req.owner.id, req.params.job)),
  );

  app.post<{ Params: { ref: string }; Body: { force?: boolean } | undefined }>(
    '/metals/:ref/reprovision',
    {
      schema: {
        tags: ['provisioning'],
        summary: 'Re-run Phase 1 for a metal: a new queued job (409 while one runs, unless force, which ends it failed/superseded)',
        params: Type.Object({ ref: Ref }),
        body: Type.Optional(Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
        response: { 201: JobSchema, ...errorResponses(400, 404, 409) },
      },
    },
    async (req, reply) => reply.code(201).send(jobOut(await provisioning.reprovision(req.owner.id, req.params.ref, req.body?.force === true))),
  );
}

/** Logs a refusal that is a security event (never the token or the key), then lets the error handler answer. */
function securityLog(req: FastifyRequest, err: unknown, mac: unknown): void {
  if (err instanceof ProvisioningError && err.security) {
    req.log.warn(
      { event: 'security', code: err.code, remote: req.ip, route: req.routeOptions.url, gatewayId: req.gateway.id, mac: typeof mac === 'string' ? mac.slice(0, 64) : undefined },
      'security event',
    );
  }
}

/** CONTRACT A3: the gateway's Phase 1 API (inside the signed /api/gateway/v1 scope). */
export async function provisioningGatewayRoutes(parent: FastifyInstance, provisioning: ProvisioningService): Promise<void> {
  await parent.register(async (scope) => {
    // Reports are COSE bytes; the TIPS-GW-1 signature covers them as sent.
    scope.addContentTypeParser(COSE_MEDIA, { parseAs: 'buffer', bodyLimit: MAX_REPORT_BYTES }, (req, body, done) => {
      req.rawBody = body as Buffer;
      done(null, body);
    });

    scope.get<{ Querystring: { mac: string; base: string } }>(
      '/provisioning/boot-script',
      {
        schema: {
          tags: ['gateway API'],
          summary: "The per-metal iPXE script for a metal of the gateway's owner booting from this MAC (creates its first Phase 1 job; queued → booting with a fresh token)",
          querystring: Type.Object(
            { mac: MacField, base: Type.String({ maxLength: 200, description: "the gateway's boot URL, http://<LAN address>:<port>", examples: ['http://192.0.2.1:8080'] }) },
            { additionalProperties: false },
          ),
          response: { 200: binary('text/plain', 'the iPXE script (#!ipxe …)'), ...errorResponses(400, 404, 409) },
        },
      },
      async (req, reply) => {
        try {
          const { script } = await provisioning.bootScript(req.gateway, req.query.mac, req.query.base);
          return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(script);
        } catch (err) {
          securityLog(req, err, req.query.mac);
          throw err;
        }
      },
    );

    const WorkOut = Type.Object({
      jobId: Type.String(),
      metal: Type.Object({ id: Type.String(), name: Type.String(), tipsId: Type.String() }),
      glaze: Type.Object({ id: Type.String(), name: Type.String(), version: Type.String(), size: Type.Integer(), sha256: Type.String() }),
      manifest: Type.String({ description: "base64 of the Glaze's operator-signed SUIT envelope" }),
      trustedKeys: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), alg: Type.String(), publicKeyPem: Type.String() })),
      minSequence: Type.Integer({ description: 'the sequence number of the last Glaze Phase 1 installed on the metal (a lower one is a rollback)' }),
      vendorId: Nullable(Type.String()),
      classId: Nullable(Type.String()),
      glazePath: Type.String(),
      reportPath: Type.String(),
      enrollment: Type.Object({ secretId: Type.String(), secret: Type.String(), estUrl: Type.String(), masterUrl: Type.String(), caPem: Type.String() }),
    });

    scope.post<{ Body: { mac: string; token: string; installerKey: string } }>(
      '/provisioning/work',
      {
        schema: {
          tags: ['gateway API'],
          summary: 'The installer claims its job with the boot token and binds its Ed25519 key; answers the pinned Glaze, its manifest, the trust list and a one-use enrollment secret (shown only here)',
          body: Type.Object(
            {
              mac: MacField,
              token: Type.String({ maxLength: 64, description: 'the tips.token from the boot script' }),
              installerKey: Type.String({ maxLength: 64, description: 'base64url raw 32-byte Ed25519 public key the installer made' }),
            },
            { additionalProperties: false },
          ),
          response: { 200: WorkOut, ...errorResponses(400, 401, 409) },
        },
      },
      async (req) => {
        try {
          const work = await provisioning.work(req.gateway, req.body);
          req.log.info({ jobId: work.jobId, metalId: work.metal.id, gatewayId: req.gateway.id, secretId: work.enrollment.secretId }, 'phase 1 job claimed');
          return work;
        } catch (err) {
          securityLog(req, err, req.body.mac);
          throw err;
        }
      },
    );

    scope.get<{ Params: { jobId: string }; Querystring: { mac: string } }>(
      '/provisioning/jobs/:jobId/glaze',
      {
        schema: {
          tags: ['gateway API'],
          summary: "The job's pinned Glaze bytes, for the job's MAC while it installs; single Range, If-Range, If-None-Match",
          params: Type.Object({ jobId: Type.String({ minLength: 1, maxLength: 64 }) }),
          querystring: Type.Object({ mac: MacField }, { additionalProperties: false }),
          response: {
            200: binary('application/octet-stream', 'the whole Glaze'),
            206: binary('application/octet-stream', 'the requested range (Content-Range says which)'),
            304: noContent('Not modified: the If-None-Match ETag matches'),
            ...errorResponses(400, 403, 404, 409, 416),
          },
        },
      },
      async (req, reply) => {
        try {
          return await sendGlaze(req, reply, provisioning);
        } catch (err) {
          securityLog(req, err, req.query.mac);
          throw err;
        }
      },
    );

    scope.post<{ Params: { jobId: string }; Querystring: { mac: string }; Body: unknown }>(
      '/provisioning/jobs/:jobId/report',
      {
        schema: {
          tags: ['gateway API'],
          summary: "The installer's SUIT report: a COSE_Sign1 (EdDSA) by the job's installer key over the CBOR report map; ends the job installed or failed",
          params: Type.Object({ jobId: Type.String({ minLength: 1, maxLength: 64 }) }),
          querystring: Type.Object({ mac: MacField }, { additionalProperties: false }),
          requestBody: bytesBody(COSE_MEDIA, `COSE_Sign1, at most ${MAX_REPORT_BYTES} bytes`),
          response: { 204: noContent('Recorded; the job is installed or failed'), ...errorResponses(400, 401, 403, 404, 409, 422) },
        },
      },
      async (req, reply) => {
        try {
          if (!Buffer.isBuffer(req.body)) throw new ProvisioningError('report_media_type', `the report is a ${COSE_MEDIA} body`, 'content-type');
          const job = await provisioning.report(req.gateway, req.params.jobId, req.query.mac, new Uint8Array(req.body));
          req.log.info({ jobId: job.id, metalId: job.metalId, state: job.state, reason: job.reason }, 'phase 1 report recorded');
          return reply.code(204).send();
        } catch (err) {
          securityLog(req, err, req.query.mac);
          throw err;
        }
      },
    );
  });
}

async function sendGlaze(req: FastifyRequest<{ Params: { jobId: string }; Querystring: { mac: string } }>, reply: FastifyReply, provisioning: ProvisioningService) {
  // Checks first (job, MAC, state); the range is checked against the pinned size.
  const probe = await provisioning.glazeInfo(req.gateway, req.params.jobId, req.query.mac);
  const etag = `"sha256:${probe.sha256}"`;
  reply.header('etag', etag).header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream');
  const inm = req.headers['if-none-match'];
  if (inm?.split(',').some((t) => t.trim() === etag || t.trim() === '*')) return reply.code(304).send();
  let range: ByteRange | undefined;
  const ifRange = req.headers['if-range'];
  if (req.headers.range && (!ifRange || ifRange === etag)) {
    const r = parseRange(req.headers.range, probe.size);
    if (r === 'unsatisfiable') {
      reply.header('content-range', `bytes */${probe.size}`);
      throw new ProvisioningError('range_not_satisfiable', `range ${req.headers.range.slice(0, 64)} is outside 0-${probe.size - 1}`, 'range');
    }
    range = r;
  }
  const { stream, size } = await provisioning.openGlaze(req.gateway, req.params.jobId, req.query.mac, range);
  if (range) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', range.end - range.start + 1);
  else reply.header('content-length', size);
  return reply.send(stream);
}

