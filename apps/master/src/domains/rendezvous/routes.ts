import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { errorResponses } from '../../http/schemas.ts';
import type { RendezvousErrorCode } from './errors.ts';
import { RendezvousError } from './errors.ts';
import type { RendezvousService } from './service.ts';

registerStatusTable<RendezvousErrorCode>('rendezvous', {
  voucher_invalid: 422,
  to1d_invalid: 422,
  registration_superseded: 409,
  guid_unknown: 404,
  proof_invalid: 401,
  malformed: 400,
});

const B64 = Type.String({ minLength: 1, maxLength: 96 * 1024, description: 'base64' });
const Guid = Type.String({ minLength: 1, maxLength: 64, description: 'device GUID' });

function bytes(s: string, field: string): Uint8Array {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new RendezvousError('malformed', `${field}: expected base64`, field);
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/**
 * The rendezvous server (`/api/rendezvous/v1`, no credential: what is registered is proven by the
 * voucher chain and the owner's signature; what is handed out, by the device's proof of possession).
 */
export function rendezvousRoutes(app: FastifyInstance, rv: RendezvousService): void {
  app.post<{ Body: { voucher: string; to1d: string } }>(
    '/registrations',
    {
      bodyLimit: 256 * 1024,
      schema: {
        tags: ['rendezvous'],
        summary: "TO0: an owner registers where a device should go — the voucher and a to1d signed by the voucher's current owner",
        body: Type.Object({ voucher: B64, to1d: B64 }, { additionalProperties: false }),
        response: { 200: Type.Object({ guid: Type.String(), expiresAt: Type.String() }), ...errorResponses(400, 409, 422) },
      },
    },
    async (req) => rv.register(bytes(req.body.voucher, 'voucher'), bytes(req.body.to1d, 'to1d')),
  );

  app.post<{ Body: { guid: string } }>(
    '/hello',
    {
      schema: {
        tags: ['rendezvous'],
        summary: 'TO1 step 1: a device asks for a challenge for its GUID',
        body: Type.Object({ guid: Guid }, { additionalProperties: false }),
        response: { 200: Type.Object({ nonce: Type.String({ description: 'base64, 16 bytes, valid 2 minutes, once' }) }), ...errorResponses(400, 404) },
      },
    },
    async (req) => ({ nonce: Buffer.from(await rv.hello(req.body.guid)).toString('base64') }),
  );

  app.post<{ Body: { guid: string; proof: string } }>(
    '/prove',
    {
      schema: {
        tags: ['rendezvous'],
        summary: "TO1 step 2: the device's proof of possession (COSE_Sign1 by its voucher's key over the nonce) → the owner's signed redirect (to1d)",
        body: Type.Object({ guid: Guid, proof: B64 }, { additionalProperties: false }),
        response: { 200: Type.Object({ to1d: Type.String({ description: 'base64 COSE_Sign1 by the owner key' }) }), ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => ({ to1d: Buffer.from(await rv.prove(req.body.guid, bytes(req.body.proof, 'proof'))).toString('base64') }),
  );
}
