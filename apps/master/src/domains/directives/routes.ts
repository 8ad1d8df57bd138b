import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { bytesBody } from '../../http/openapi-responses.ts';
import { errorResponses, Items, Ref } from '../../http/schemas.ts';
import { SUIT_ENVELOPE_MEDIA } from '../keys/model.ts';
import type { DirectiveErrorCode } from './errors.ts';
import type { Directive } from './model.ts';
import type { DirectiveService } from './service.ts';

registerStatusTable<DirectiveErrorCode>('directives', {
  directive_malformed: 400,
  directive_untrusted: 422,
  directive_component_unknown: 422,
  directive_metal_required: 400,
  directive_metal_unexpected: 400,
});

const DirectiveOut = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('trust-list'), Type.Literal('reenroll')]),
  metal: Type.Union([Type.String(), Type.Null()], { description: 'the metal a reenroll order is for; null: every metal of the owner' }),
  signedBy: Type.String({ description: 'the operator key ID' }),
  sequenceNumber: Type.String(),
  createdAt: Type.String(),
});
const directiveOut = (d: Directive) => ({ id: d.id, kind: d.kind, metal: d.metalId, signedBy: d.keyId, sequenceNumber: d.sequenceNumber, createdAt: d.createdAt });

/** Owner API (inside /api/v1, after keyRoutes, which registers the SUIT envelope body parser). */
export function directiveOwnerRoutes(app: FastifyInstance, directives: DirectiveService): void {
  app.post<{ Querystring: { metal?: string }; Body: Buffer }>(
    '/directives',
    {
      config: { bodyType: SUIT_ENVELOPE_MEDIA },
      schema: {
        tags: ['directives'],
        summary:
          'Publish a signed order to metals (S5, S6): a SUIT envelope signed by one of your keys for ["tips","trust-list"] (a new trust list, for every metal) or ["tips","enrollment"] (re-enroll with a new key and the secret it carries; give metal). Metals verify it against their own trust list',
        querystring: Type.Object({ metal: Type.Optional(Ref) }, { additionalProperties: false }),
        requestBody: bytesBody(SUIT_ENVELOPE_MEDIA, 'the signed SUIT envelope (CBOR bytes), the payload integrated'),
        response: { 201: DirectiveOut, ...errorResponses(400, 404, 415, 422) },
      },
    },
    async (req, reply) => {
      const d = await directives.upload(req.owner.id, new Uint8Array(req.body ?? []), req.query.metal);
      req.log.info({ event: 'directive_published', id: d.id, kind: d.kind, metal: d.metalId, signedBy: d.keyId }, 'directive published');
      return reply.code(201).send(directiveOut(d));
    },
  );
  app.get('/directives', { schema: { tags: ['directives'], summary: 'Your published directives, newest first (at most 200)', response: { 200: Items(DirectiveOut) } } }, async (req) => ({
    items: (await directives.list(req.owner.id)).map(directiveOut),
  }));
}

/** Metal API (inside /api/metal/v1, after the mTLS hook): the directives this metal is to consider. */
export function directiveMetalRoutes(app: FastifyInstance, directives: DirectiveService): void {
  app.get(
    '/directives',
    {
      schema: {
        tags: ['metal'],
        summary: "Signed orders for this metal: its owner's newest trust-list update and its own newest re-enrollment order (SUIT envelopes, base64); the metal verifies each against its trust list",
        response: { 200: Type.Object({ directives: Type.Array(Type.Object({ id: Type.String(), kind: Type.String(), envelope: Type.String({ description: 'base64 SUIT envelope' }), createdAt: Type.String() })) }) },
      },
    },
    async (req) => ({
      directives: (await directives.forMetal(req.metal.ownerId, req.metal.metalId)).map((d) => ({ id: d.id, kind: d.kind, envelope: Buffer.from(d.envelope).toString('base64'), createdAt: d.createdAt })),
    }),
  );
}
