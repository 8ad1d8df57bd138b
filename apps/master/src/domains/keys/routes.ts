import { Type } from '@sinclair/typebox';
import { InvalidValueError, isId } from '@tips/core';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { binary, bytesBody, noContent } from '../../http/openapi-responses.ts';
import { errorResponses, NameField, Ref } from '../../http/schemas.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import type { KeyErrorCode } from './errors.ts';
import { type GlazeManifest, MAX_ENVELOPE_BYTES, type OperatorKey, SERVER_HELD_WARNING, SUIT_ENVELOPE_MEDIA } from './model.ts';
import type { KeyService, SignInput } from './service.ts';

registerStatusTable<KeyErrorCode>('keys', {
  key_not_found: 404,
  key_name_taken: 409,
  key_already_registered: 409,
  key_invalid: 400,
  key_not_server_held: 409,
  manifest_malformed: 400,
  manifest_untrusted: 422,
  manifest_digest_mismatch: 422,
  manifest_not_found: 404,
});

const KeyOut = Type.Object({
  id: Type.String(),
  name: Type.String(),
  alg: Type.String(),
  publicKey: Type.String({ description: 'SPKI PEM' }),
  kid: Type.String(),
  serverHeld: Type.Boolean({ description: 'true when the master holds the private key (hobby mode)' }),
  warning: Type.Optional(Type.String()),
  createdAt: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});
const ManifestOut = Type.Object({ glazeId: Type.String(), sequenceNumber: Type.String(), createdAt: Type.String(), signedBy: KeyOut });

const keyOut = (k: OperatorKey) => ({
  id: k.id,
  name: k.name,
  alg: k.alg,
  publicKey: k.publicKeyPem,
  kid: k.kid,
  serverHeld: k.serverHeld,
  ...(k.serverHeld ? { warning: SERVER_HELD_WARNING } : {}),
  createdAt: k.createdAt,
  revokedAt: k.revokedAt,
});
/** Every response that involves a server-held key says so, in a header as well as in the body. */
function flag(reply: FastifyReply, keys: OperatorKey[]): void {
  if (keys.some((k) => k.serverHeld)) reply.header('x-tips-server-held-key', 'true');
}
const manifestOut = (m: GlazeManifest, k: OperatorKey) => ({ glazeId: m.glazeId, sequenceNumber: m.sequenceNumber, createdAt: m.createdAt, signedBy: keyOut(k) });

/** Owner API (inside /api/v1): operator signing keys and the signed manifest of each Glaze. */
export function keyRoutes(app: FastifyInstance, keys: KeyService): void {
  app.addContentTypeParser(SUIT_ENVELOPE_MEDIA, { parseAs: 'buffer', bodyLimit: MAX_ENVELOPE_BYTES }, (_req, body, done) => done(null, body));

  app.post<{ Body: { name: string; publicKey?: string; serverHeld?: boolean } }>(
    '/keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'Register an operator public key (the CLI keeps the private key); or, with serverHeld: true, let the master make and hold one (hobby mode)',
        body: Type.Object(
          { name: NameField, publicKey: Type.Optional(Type.String({ maxLength: 8192 })), serverHeld: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 201: KeyOut, ...errorResponses(400, 409) },
      },
    },
    async (req, reply) => {
      const { name, publicKey, serverHeld } = req.body;
      if ((publicKey === undefined) === (serverHeld !== true)) {
        return reply.code(400).send({ error: { code: 'invalid_value', message: 'give publicKey, or serverHeld: true (never both)', field: 'publicKey' }, requestId: String(req.id) });
      }
      const k = publicKey !== undefined ? await keys.register(req.owner.id, { name, publicKey }) : await keys.createServerHeld(req.owner.id, { name });
      flag(reply, [k]);
      return reply.code(201).send(keyOut(k));
    },
  );

  app.get<{ Querystring: PageParams }>(
    '/keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'Your operator keys (revoked ones included), oldest first, a page at a time',
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(KeyOut), ...errorResponses(400) },
      },
    },
    async (req, reply) =>
      readPage(
        'keys',
        req.query,
        async (w) => {
          const list = await keys.list(req.owner.id, w);
          flag(reply, list);
          return list;
        },
        (k) => ({ at: k.createdAt, id: k.id }),
        keyOut,
      ),
  );

  app.delete<{ Params: { ref: string } }>(
    '/keys/:ref',
    { schema: { tags: ['keys'], summary: 'Revoke an operator key: manifests signed by it are no longer accepted', params: Type.Object({ ref: Ref }), response: { 204: noContent('Revoked'), ...errorResponses(404) } } },
    async (req, reply) => {
      await keys.revoke(req.owner.id, req.params.ref);
      return reply.code(204).send();
    },
  );

  app.put<{ Params: { ref: string }; Body: Buffer }>(
    '/glazes/:ref/manifest',
    {
      config: { bodyType: SUIT_ENVELOPE_MEDIA },
      schema: {
        tags: ['keys'],
        summary: `Attach a SUIT envelope (${SUIT_ENVELOPE_MEDIA}) signed by one of your keys whose image digest is the Glaze's SHA-256`,
        params: Type.Object({ ref: Ref }),
        requestBody: bytesBody(SUIT_ENVELOPE_MEDIA, 'the SUIT envelope (CBOR bytes)'),
        response: { 200: ManifestOut, ...errorResponses(400, 404, 415, 422) },
      },
    },
    async (req, reply) => {
      const { manifest, key } = await keys.attachManifest(req.owner.id, req.params.ref, new Uint8Array(req.body ?? []));
      flag(reply, [key]);
      return manifestOut(manifest, key);
    },
  );

  app.post<{ Params: { ref: string }; Body: SignInput }>(
    '/glazes/:ref/manifest/sign',
    {
      schema: {
        tags: ['keys'],
        summary: 'Hobby mode: the master builds and signs the envelope with a server-held key',
        params: Type.Object({ ref: Ref }),
        body: Type.Object(
          {
            key: Ref,
            sequenceNumber: Type.Integer({ minimum: 0 }),
            vendorDomain: Type.String({ maxLength: 253 }),
            classInfo: Type.String({ maxLength: 128 }),
            component: Type.String({ maxLength: 64 }),
            uri: Type.String({ maxLength: 2048 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: ManifestOut, ...errorResponses(400, 404, 409, 422) },
      },
    },
    async (req, reply) => {
      const { manifest, key } = await keys.signWithServerKey(req.owner.id, req.params.ref, req.body);
      flag(reply, [key]);
      return manifestOut(manifest, key);
    },
  );

  app.get<{ Querystring: { glazes: string } }>(
    '/manifests',
    {
      schema: {
        tags: ['keys'],
        summary: 'Who signed the manifest of each Glaze named (Glaze IDs, up to 200, comma-separated): key ID, name and kid, sequence number (T12)',
        description: 'One item per Glaze that has a signed manifest; a Glaze without one (or not yours) has no item.',
        querystring: Type.Object({ glazes: Type.String({ maxLength: 200 * 40, description: 'Glaze IDs (glz_…), comma-separated' }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(ManifestOut) }), ...errorResponses(400) },
      },
    },
    async (req, reply) => {
      const ids = req.query.glazes.split(',').filter((g) => g !== '');
      if (ids.length > 200) throw new InvalidValueError('querystring.glazes', 'at most 200 Glazes');
      const bad = ids.find((g) => !isId('glaze', g));
      if (bad !== undefined) throw new InvalidValueError('querystring.glazes', `"${bad.slice(0, 40)}" is not a Glaze ID (glz_…)`);
      const items = await keys.signersOf(req.owner.id, [...new Set(ids)]);
      flag(reply, items.map((m) => m.signedBy));
      return { items: items.map((m) => ({ glazeId: m.glazeId, sequenceNumber: m.sequenceNumber, createdAt: m.createdAt, signedBy: keyOut(m.signedBy) })) };
    },
  );

  app.get<{ Params: { ref: string } }>(
    '/glazes/:ref/manifest',
    { schema: { tags: ['keys'], summary: 'The signed SUIT envelope of a Glaze', params: Type.Object({ ref: Ref }), response: { 200: binary(SUIT_ENVELOPE_MEDIA, 'the SUIT envelope (CBOR bytes)'), ...errorResponses(404) } } },
    async (req, reply) => {
      const m = await keys.getManifest(req.owner.id, req.params.ref);
      return reply.header('content-type', SUIT_ENVELOPE_MEDIA).header('x-tips-signed-by', m.keyId).send(Buffer.from(m.envelope));
    },
  );
}
