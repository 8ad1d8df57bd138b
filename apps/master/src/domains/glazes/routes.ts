import type { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ByteRange } from '../../blob/blob-store.ts';
import { registerStatusTable } from '../../http/errors.ts';
import { binary, bytesBody, noContent } from '../../http/openapi-responses.ts';
import { errorResponses, NameField, Ref } from '../../http/schemas.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { GlazeError, type GlazeErrorCode } from './errors.ts';
import type { Glaze } from './model.ts';
import type { GlazeService } from './service.ts';
import { idleBounded } from './upload-stream.ts';

registerStatusTable<GlazeErrorCode>('glazes', {
  glaze_not_found: 404,
  glaze_name_taken: 409,
  glaze_in_use: 409,
  upload_truncated: 400,
  upload_too_large: 413,
  upload_idle_timeout: 408,
  // The client has gone: nobody reads this status, the code names what happened in the log.
  upload_aborted: 400,
  digest_mismatch: 422,
  range_not_satisfiable: 416,
  unsupported_media_type: 415,
});

export const GlazeSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  size: Type.Integer(),
  sha256: Type.String(),
  mediaType: Type.String(),
  createdAt: Type.String(),
  spaces: Type.Array(Type.String(), { description: 'IDs of the Spaces allowed to use this Glaze' }),
  handler: Type.String({ description: 'install handler on the metal: archive | rootfs-ab | systemd-service | script' }),
  version: Type.Union([Type.String(), Type.Null()], { description: 'version label; `name@version` references it' }),
});

const out = ({ ownerId: _o, ...g }: Glaze) => g;
const etagOf = (g: Glaze) => `"sha256:${g.sha256}"`;

/** Parses a single `bytes=` range (RFC 9110 §14.1.2); multiple ranges are served as the whole body. */
export function parseRange(header: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/** The Glaze repository (T12): streamed upload, Range/ETag download. Owner-scoped. */
export interface GlazeRouteHooks {
  /** Called before an upload reads its body: may refuse it (the S11 upload hop lives in the tokens domain). */
  authorizeUpload?: (req: FastifyRequest, spaceRefs: string[]) => Promise<void>;
  /** An upload that sends no bytes for this long is abandoned, its partial write removed (default 60 s). */
  uploadIdleTimeoutMs?: number;
}

export function glazeRoutes(app: FastifyInstance, glazes: GlazeService, hooks: GlazeRouteHooks = {}): void {
  // Glaze payloads are streamed straight to the blob store; Fastify must not buffer them.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.post<{ Querystring: { name: string; spaces?: string; mediaType?: string; sha256?: string; handler?: string; version?: string }; Body: Readable }>(
    '/glazes',
    {
      bodyLimit: Number.MAX_SAFE_INTEGER,
      schema: {
        tags: ['glazes'],
        summary: 'Upload a Glaze (body: the raw image, Content-Type application/octet-stream)',
        querystring: Type.Object(
          {
            name: NameField,
            spaces: Type.Optional(Type.String({ maxLength: 4096, description: 'comma-separated Space IDs or names allowed to use it' })),
            mediaType: Type.Optional(Type.String({ maxLength: 255 })),
            sha256: Type.Optional(Type.String({ maxLength: 64, description: 'digest the client computed; checked' })),
            handler: Type.Optional(Type.String({ maxLength: 32, description: 'install handler on the metal: archive (default) | rootfs-ab | systemd-service | script' })),
            version: Type.Optional(Type.String({ maxLength: 32, description: 'version label, e.g. 1.4 (`name@version`)' })),
          },
          { additionalProperties: false },
        ),
        requestBody: bytesBody('application/octet-stream', 'the raw image bytes'),
        response: { 201: GlazeSchema, ...errorResponses(400, 403, 404, 408, 409, 413, 415, 422) },
      },
    },
    async (req, reply) => {
      if (req.headers['content-type']?.split(';')[0]?.trim() !== 'application/octet-stream') {
        throw new GlazeError('unsupported_media_type', 'send the image as Content-Type: application/octet-stream', 'content-type');
      }
      const spaceRefs = req.query.spaces ? req.query.spaces.split(',').filter((s) => s !== '') : [];
      await hooks.authorizeUpload?.(req, spaceRefs);
      const length = req.headers['content-length'];
      try {
        const glaze = await glazes.upload(
          req.owner.id,
          {
            name: req.query.name,
            spaces: spaceRefs,
            mediaType: req.query.mediaType,
            expectedSha256: req.query.sha256,
            handler: req.query.handler,
            version: req.query.version,
            expectedSize: length === undefined ? undefined : Number(length),
          },
          idleBounded(req.body, hooks.uploadIdleTimeoutMs ?? 60_000),
        );
        return reply.code(201).send(out(glaze));
      } catch (err) {
        // The rest of a refused body is not worth reading: answer, then close the connection.
        if (!req.raw.complete) reply.header('connection', 'close');
        throw err;
      }
    },
  );

  app.get<{ Querystring: { space?: string } & PageParams }>(
    '/glazes',
    {
      schema: {
        tags: ['glazes'],
        summary: "List the caller's Glazes, optionally those a Space may use; oldest first, a page at a time",
        querystring: Type.Object({ space: Type.Optional(Ref), ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(GlazeSchema), ...errorResponses(400, 404) },
      },
    },
    async (req) => readPage('glazes', req.query, (w) => glazes.list(req.owner.id, req.query.space, w), (g) => ({ at: g.createdAt, id: g.id }), out),
  );

  app.get<{ Params: { ref: string } }>(
    '/glazes/:ref',
    { schema: { tags: ['glazes'], summary: 'Show a Glaze', params: Type.Object({ ref: Ref }), response: { 200: GlazeSchema, ...errorResponses(404) } } },
    async (req) => out(await glazes.get(req.owner.id, req.params.ref)),
  );

  app.patch<{ Params: { ref: string }; Body: { name?: string; spaces?: string[] } }>(
    '/glazes/:ref',
    {
      schema: {
        tags: ['glazes'],
        summary: 'Rename a Glaze or replace the list of Spaces allowed to use it',
        params: Type.Object({ ref: Ref }),
        body: Type.Object(
          { name: Type.Optional(NameField), spaces: Type.Optional(Type.Array(Ref, { maxItems: 256 })) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: GlazeSchema, ...errorResponses(400, 404, 409) },
      },
    },
    async (req) => out(await glazes.update(req.owner.id, req.params.ref, req.body)),
  );

  app.delete<{ Params: { ref: string } }>(
    '/glazes/:ref',
    { schema: { tags: ['glazes'], summary: 'Delete a Glaze (refused while a Space uses it)', params: Type.Object({ ref: Ref }), response: { 204: noContent('Deleted'), ...errorResponses(404, 409) } } },
    async (req, reply) => {
      await glazes.delete(req.owner.id, req.params.ref);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { ref: string } }>(
    '/glazes/:ref/content',
    {
      schema: {
        tags: ['glazes'],
        summary: 'Download the payload; supports Range (single range), If-Range and If-None-Match',
        params: Type.Object({ ref: Ref }),
        response: {
          200: binary('*/*', "the whole payload, as the Glaze's media type (application/octet-stream unless another was given at upload)"),
          206: binary('*/*', 'the requested range (Content-Range says which)'),
          302: noContent(
            'With --s3-presign: fetch the payload from the object store at Location, a pre-signed URL valid for a short while (follow it without the Authorization header; Range works there too)',
          ),
          304: noContent('Not modified: the If-None-Match ETag matches'),
          ...errorResponses(404, 416),
        },
      },
    },
    async (req, reply) => {
      const glaze = await glazes.get(req.owner.id, req.params.ref);
      const etag = etagOf(glaze);
      reply.header('etag', etag).header('accept-ranges', 'bytes').header('content-type', glaze.mediaType);
      const inm = req.headers['if-none-match'];
      if (inm?.split(',').some((t) => t.trim() === etag || t.trim() === '*')) return reply.code(304).send();
      const direct = await glazes.downloadUrl(glaze);
      // The bytes do not pass through the master: the object store answers the same Range requests.
      if (direct) return reply.code(302).header('location', direct).header('cache-control', 'no-store').send();
      let range: ByteRange | undefined;
      const ifRange = req.headers['if-range'];
      if (req.headers.range && (!ifRange || ifRange === etag)) {
        const r = parseRange(req.headers.range, glaze.size);
        if (r === 'unsatisfiable') {
          reply.header('content-range', `bytes */${glaze.size}`);
          throw new GlazeError('range_not_satisfiable', `range ${req.headers.range} is outside 0-${glaze.size - 1}`, 'range');
        }
        range = r;
      }
      const { stream } = await glazes.open(req.owner.id, glaze.id, range);
      if (range) {
        reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${glaze.size}`).header('content-length', range.end - range.start + 1);
      } else {
        reply.header('content-length', glaze.size);
      }
      return reply.send(stream);
    },
  );
}
