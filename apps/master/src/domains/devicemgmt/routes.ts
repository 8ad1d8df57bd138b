import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { errorResponses, Ref } from '../../http/schemas.ts';
import { DeviceMgmtError, type DeviceMgmtErrorCode } from './errors.ts';
import type { FirmwareJob } from './model.ts';
import type { DeviceMgmtService, QueuedOperation } from './service.ts';
import { FW_RESULT_NAMES, FW_STATE_NAMES } from './firmware.ts';
import { formatPath, valueToJson } from './values.ts';

registerStatusTable<DeviceMgmtErrorCode>('devicemgmt', {
  lwm2m_malformed: 400,
  lwm2m_endpoint_mismatch: 403,
  lwm2m_registration_not_found: 404,
  lwm2m_resource_not_found: 404,
  lwm2m_operation_not_found: 404,
  lwm2m_not_registered: 409,
  lwm2m_offline: 409,
  lwm2m_glaze_not_for_metal: 409,
  lwm2m_glaze_unsigned: 409,
  lwm2m_firmware_busy: 409,
  lwm2m_queue_full: 409,
  lwm2m_device_error: 502,
  lwm2m_no_coap: 503,
});

const Value = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Object({ base64: Type.String() }), Type.Object({ objlnk: Type.String({ description: '"obj:inst"' }) })], {
  description: 'the resource value: string, number (an integer beyond 2^53 as a decimal string), boolean, {base64} for opaque, {objlnk} for an object link',
});

const FirmwareOut = Type.Object({
  jobId: Type.String(),
  glazeId: Type.String(),
  status: Type.String({ description: 'delivering | downloading | downloaded | updating | succeeded | failed' }),
  state: Type.Union([Type.String({ description: '/5/0/3: idle | downloading | downloaded | updating' }), Type.Null()]),
  result: Type.Union([Type.String({ description: '/5/0/5: initial | success | not_enough_flash | … | unsupported_protocol' }), Type.Null()]),
  packageUri: Type.String({ description: 'the CoAP URI of the Glaze payload written to /5/0/1' }),
  updatedAt: Type.String(),
});

export const Lwm2mSchema = Type.Object({
  registrationId: Type.String({ description: 'the ID in /rd/{id}' }),
  endpoint: Type.String({ description: 'the ep the device registered with (its TIPS ID or name)' }),
  lwm2mVersion: Type.String(),
  lifetime: Type.Integer({ description: 'seconds; past lifetime + grace without an Update the device is offline' }),
  binding: Type.String({ description: 'U, or UQ in queue mode' }),
  queueMode: Type.Boolean(),
  objects: Type.Array(Type.Object({ objectId: Type.Integer(), version: Type.Optional(Type.String()), instances: Type.Array(Type.Integer()) })),
  registeredAt: Type.String(),
  lastUpdate: Type.String(),
  online: Type.Boolean(),
  firmware: Type.Union([FirmwareOut, Type.Null()], { description: 'the newest firmware job (object 5)' }),
});
/** The `lwm2m` field of `GET /metals/:ref` (tips metal show). */
export const MetalLwm2mSchema = Type.Union([Lwm2mSchema, Type.Null()], { description: 'Z5: LwM2M registration and firmware state; null when the metal never registered over LwM2M' });

const jobOut = (j: FirmwareJob) => ({
  jobId: j.id,
  glazeId: j.glazeId,
  status: j.status,
  state: j.state === null ? null : FW_STATE_NAMES[j.state],
  result: j.result === null ? null : FW_RESULT_NAMES[j.result],
  packageUri: j.packageUri,
  updatedAt: j.updatedAt,
});

const QueuedOut = Type.Object(
  {
    id: Type.String({ description: 'lwq_…: the operation, listed by GET /metals/{ref}/lwm2m/queue' }),
    kind: Type.String({ description: 'read | firmware' }),
    target: Type.String({ description: 'read: the path; firmware: the Glaze ID' }),
    status: Type.String({ description: 'queued (the device sleeps) → sent (at its next registration update) → done | failed' }),
    records: Type.Optional(Type.Array(Type.Object({ path: Type.String(), value: Value }))),
    jobId: Type.Optional(Type.String({ description: 'firmware: the job it started (GET /metals/{ref}/lwm2m)' })),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { description: 'queue mode (binding UQ): an operation held in the database until the device next sends a registration update, sent once by whichever replica that update reaches' },
);
const queuedOut = (o: QueuedOperation) => ({
  id: o.id,
  kind: o.kind,
  target: o.target,
  status: o.status,
  ...(o.records ? { records: o.records } : {}),
  ...(o.jobId ? { jobId: o.jobId } : {}),
  ...(o.error ? { error: o.error } : {}),
  createdAt: o.createdAt,
  updatedAt: o.updatedAt,
});

const Id = Type.String({ pattern: '^(0|[1-9][0-9]{0,4})$', description: 'an LwM2M ID 0..65535' });

/** Owner API (inside /api/v1): what LwM2M devices registered and reported, and the operations on them. */
export function deviceMgmtOwnerRoutes(app: FastifyInstance, devices: DeviceMgmtService): void {
  app.get<{ Querystring: PageParams }>(
    '/lwm2m/devices',
    {
      schema: {
        tags: ['lwm2m'],
        summary: 'Z5: your LwM2M devices (every metal that registered over LwM2M: online, offline or in queue mode), in TIPS ID order, a page at a time',
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(Type.Composite([Type.Object({ metalId: Type.String(), metalName: Type.String() }), Lwm2mSchema])), ...errorResponses(400) },
      },
    },
    async (req) =>
      readPage('lwm2m-devices', req.query, (w) => devices.list(req.owner.id, w), (d) => ({ at: req.owner.id, id: d.metalId }), (d) => ({ metalId: d.metalId, metalName: d.metalName, ...d.view })),
  );

  app.get<{ Params: { ref: string } }>(
    '/metals/:ref/lwm2m',
    {
      schema: {
        tags: ['lwm2m'],
        summary: "Z5: the metal's LwM2M registration (lifetime, binding, objects, last update, online) and its newest firmware job",
        params: Type.Object({ ref: Ref }),
        response: { 200: Lwm2mSchema, ...errorResponses(404) },
      },
    },
    async (req) => {
      const v = await devices.viewByRef(req.owner.id, req.params.ref);
      if (!v) throw new DeviceMgmtError('lwm2m_registration_not_found', 'this metal has no LwM2M registration', 'ref');
      return v;
    },
  );

  app.get<{ Params: { ref: string; obj: string; inst: string; res: string } }>(
    '/metals/:ref/lwm2m/resources/:obj/:inst/:res',
    {
      schema: {
        tags: ['lwm2m'],
        summary: 'Z5: the last value the device reported for /obj/inst/res (a read answer or an Observe notification)',
        params: Type.Object({ ref: Ref, obj: Id, inst: Id, res: Id }),
        response: { 200: Type.Object({ path: Type.String(), value: Value, observedAt: Type.String() }), ...errorResponses(404) },
      },
    },
    async (req) => {
      const { obj, inst, res } = req.params;
      return devices.observedValue(req.owner.id, req.params.ref, `/${Number(obj)}/${Number(inst)}/${Number(res)}`);
    },
  );

  app.post<{ Params: { ref: string }; Body: { path: string } }>(
    '/metals/:ref/lwm2m/read',
    {
      schema: {
        tags: ['lwm2m'],
        summary:
          'Z5: read /obj, /obj/inst or /obj/inst/res live from the device (TLV or SenML-CBOR); the values are kept as observed values. A queue-mode (UQ) device sleeps: 202 and the read is sent at its next registration update (GET …/lwm2m/queue)',
        params: Type.Object({ ref: Ref }),
        body: Type.Object({ path: Type.String({ minLength: 2, maxLength: 24, description: '/3/0, /3/0/9, …', examples: ['/3/0/9'] }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({ records: Type.Array(Type.Object({ path: Type.String(), value: Value })) }),
          202: Type.Object({ queued: QueuedOut }),
          ...errorResponses(400, 404, 409, 502, 503),
        },
      },
    },
    async (req, reply) => {
      const r = await devices.read(req.owner.id, req.params.ref, req.body.path);
      if (!Array.isArray(r)) return reply.code(202).send({ queued: queuedOut(r.queued) });
      return { records: r.map((x) => ({ path: formatPath(x.path), value: valueToJson(x.value) })) };
    },
  );

  app.get<{ Params: { ref: string } }>(
    '/metals/:ref/lwm2m/queue',
    {
      schema: {
        tags: ['lwm2m'],
        summary: "Z5 queue mode: the operations waiting for the device's next registration update, and the last finished ones with their answers (every replica's: the queue is in the database)",
        params: Type.Object({ ref: Ref }),
        response: { 200: Type.Object({ items: Type.Array(QueuedOut) }), ...errorResponses(404) },
      },
    },
    async (req) => ({ items: (await devices.queued(req.owner.id, req.params.ref)).map(queuedOut) }),
  );

  app.get<{ Params: { ref: string; id: string } }>(
    '/metals/:ref/lwm2m/queue/:id',
    {
      schema: {
        tags: ['lwm2m'],
        summary: 'Z5 queue mode: one queued operation — its status, and once the device answered, the records read or the firmware job started, or the error',
        params: Type.Object({ ref: Ref, id: Type.String({ pattern: '^lwq_[A-Za-z0-9]{1,40}$', description: 'lwq_…' }) }),
        response: { 200: QueuedOut, ...errorResponses(400, 404) },
      },
    },
    async (req) => queuedOut(await devices.queuedOne(req.owner.id, req.params.ref, req.params.id)),
  );

  app.post<{ Params: { ref: string }; Body: { glaze: string } }>(
    '/metals/:ref/lwm2m/firmware',
    {
      schema: {
        tags: ['lwm2m'],
        summary:
          'Z5 S4 S5: update the device through Firmware Update (object 5): the Glaze of one of its Spaces, its signed SUIT manifest written to /5/0/0, its CoAP URI to /5/0/1; the device verifies, downloads block-wise, and the master executes /5/0/2 and records State/Result',
        params: Type.Object({ ref: Ref }),
        body: Type.Object({ glaze: Ref }, { additionalProperties: false }),
        response: { 202: Type.Union([FirmwareOut, Type.Object({ queued: QueuedOut })], { description: 'the job, or (queue mode) the operation that starts it at the device\'s next update' }), ...errorResponses(400, 404, 409, 502, 503) },
      },
    },
    async (req, reply) => {
      const started = await devices.startFirmwareUpdate(req.owner.id, req.params.ref, req.body.glaze);
      if ('queued' in started) return reply.code(202).send({ queued: queuedOut(started.queued) });
      const job = started;
      req.log.info({ event: 'lwm2m_firmware_requested', metal: job.metalId, job: job.id, glaze: job.glazeId }, 'LwM2M firmware update requested');
      return reply.code(202).send(jobOut(job));
    },
  );
}
