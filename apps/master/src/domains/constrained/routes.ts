import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { noContent } from '../../http/openapi-responses.ts';
import { errorResponses, Ref } from '../../http/schemas.ts';
import type { ConstrainedErrorCode } from './errors.ts';
import type { PskCredential } from './model.ts';
import type { ConstrainedService } from './service.ts';

registerStatusTable<ConstrainedErrorCode>('constrained', {
  psk_not_found: 404,
  psk_limit_reached: 409,
  metal_retired: 403,
  peer_unauthenticated: 401,
  metal_blocked: 403,
  invalid_body: 400,
  unsupported_content_format: 415,
  not_acceptable: 406,
});

const PskOut = Type.Object({
  identity: Type.String({ description: 'the DTLS PSK identity: <metal TIPS ID>.<n>' }),
  createdAt: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});
const pskOut = (c: PskCredential) => ({ identity: c.identity, createdAt: c.createdAt, revokedAt: c.revokedAt });

/** Owner API (inside /api/v1): DTLS pre-shared keys of constrained metals (S13, CONTRACT F). */
export function constrainedOwnerRoutes(app: FastifyInstance, constrained: ConstrainedService): void {
  app.post<{ Params: { ref: string } }>(
    '/metals/:ref/psk',
    {
      schema: {
        tags: ['metals'],
        summary: 'Issue a DTLS PSK for the metal (CoAP over DTLS): the key is in this answer only, never shown again',
        params: Type.Object({ ref: Ref }),
        response: {
          201: Type.Object({ ...PskOut.properties, key: Type.String({ description: '16 random bytes, hex: give it to the metal (e.g. coap-client -k)' }) }),
          ...errorResponses(403, 404, 409),
        },
      },
    },
    async (req, reply) => {
      const { credential, key } = await constrained.issuePsk(req.owner.id, req.params.ref);
      req.log.info({ metal: credential.metalId, identity: credential.identity }, 'psk issued');
      return reply.code(201).send({ ...pskOut(credential), key });
    },
  );

  app.get<{ Params: { ref: string } }>(
    '/metals/:ref/psk',
    {
      schema: {
        tags: ['metals'],
        summary: "The metal's PSK identities, oldest first, revoked ones too (never a key)",
        params: Type.Object({ ref: Ref }),
        response: { 200: Type.Object({ items: Type.Array(PskOut) }), ...errorResponses(404) },
      },
    },
    async (req) => ({ items: (await constrained.listPsks(req.owner.id, req.params.ref)).map(pskOut) }),
  );

  app.delete<{ Params: { ref: string; identity: string } }>(
    '/metals/:ref/psk/:identity',
    {
      schema: {
        tags: ['metals'],
        summary: 'Revoke a PSK: new DTLS handshakes with it are refused, and requests of sessions made with it are refused (4.01)',
        params: Type.Object({ ref: Ref, identity: Type.String({ maxLength: 128 }) }),
        response: { 204: noContent('Revoked'), ...errorResponses(404) },
      },
    },
    async (req, reply) => {
      await constrained.revokePsk(req.owner.id, req.params.ref, req.params.identity);
      req.log.info({ identity: req.params.identity }, 'psk revoked');
      return reply.code(204).send();
    },
  );
}
