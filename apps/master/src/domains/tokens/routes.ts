import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { errorResponses } from '../../http/schemas.ts';
import type { TokenErrorCode } from './errors.ts';
import type { IssueInput, TokenService } from './service.ts';

registerStatusTable<TokenErrorCode>('tokens', {
  token_malformed: 401,
  token_signature_invalid: 401,
  token_issuer_unknown: 401,
  token_expired: 401,
  token_not_yet_valid: 401,
  token_audience_mismatch: 403,
  token_scope_insufficient: 403,
  pop_required: 401,
  pop_invalid: 401,
  challenge_invalid: 401,
  holder_key_invalid: 400,
  scope_invalid: 400,
  upload_token_required: 401,
  token_owner_mismatch: 403,
});

const Proof = Type.Object(
  { nonce: Type.String({ maxLength: 128 }), signature: Type.String({ maxLength: 256, description: 'base64url signature by the cnf key over "tips-pop-v1:<nonce>:<sha256(token) hex>"' }) },
  { additionalProperties: false },
);
const IssuerKeyOut = Type.Object({
  coseKey: Type.String({ description: 'the COSE_Key, base64url CBOR' }),
  jwk: Type.Object({ kty: Type.String(), crv: Type.String(), x: Type.String() }, { description: 'the same key as a JWK (OKP, Ed25519)' }),
  kid: Type.String(),
});
const TokenOut = Type.Object({
  cwt: Type.String({ description: 'base64url COSE_Sign1 CWT' }),
  jwt: Type.String({ description: 'the same claims as a compact JWT (EdDSA)' }),
  cti: Type.String(),
  audience: Type.String(),
  subject: Type.String(),
  scope: Type.Array(Type.String()),
  expiresAt: Type.String(),
});

/** Owner API (inside /api/v1): issue scoped PoP tokens, challenges, introspection. */
export function tokenRoutes(app: FastifyInstance, tokens: TokenService): void {
  app.post<{ Body: IssueInput }>(
    '/tokens/issue',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Issue an authorization token (CWT + JWT) for one hop, bound to a holder key',
        body: Type.Object(
          {
            audience: Type.String({ maxLength: 80, description: 'urn:tips:master or urn:tips:metal:<TIPS ID>' }),
            scope: Type.Array(Type.String({ maxLength: 160 }), { maxItems: 16 }),
            ttlMinutes: Type.Optional(Type.Integer({ description: '1–60, default 5' })),
            holder: Type.Object({ publicKey: Type.Optional(Type.String({ maxLength: 4096 })), metal: Type.Optional(Type.String({ maxLength: 128 })) }, { additionalProperties: false }),
          },
          { additionalProperties: false },
        ),
        response: { 201: TokenOut, ...errorResponses(400, 404) },
      },
    },
    async (req, reply) => reply.code(201).send(await tokens.issue(req.owner.id, req.body)),
  );

  app.post('/tokens/challenge', { schema: { tags: ['tokens'], summary: 'A fresh single-use nonce for proof of possession (valid 2 minutes)', response: { 201: Type.Object({ nonce: Type.String(), expiresAt: Type.String() }) } } }, async (req, reply) =>
    reply.code(201).send(await tokens.challenge(req.owner.id)),
  );

  app.get('/tokens/issuer-key', { schema: { tags: ['tokens'], summary: 'The public key tokens are signed with (COSE_Key and JWK)', response: { 200: IssuerKeyOut } } }, async () => tokens.issuerKey());

  app.post<{ Body: { token: string; audience: string; scope?: string; proof?: { nonce: string; signature: string } } }>(
    '/tokens/introspect',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Introspection for constrained resource servers: is this token active for this audience and scope, with this proof?',
        body: Type.Object(
          { token: Type.String({ maxLength: 8192 }), audience: Type.String({ maxLength: 80 }), scope: Type.Optional(Type.String({ maxLength: 160 })), proof: Type.Optional(Proof) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ active: Type.Boolean(), reason: Type.Optional(Type.String()) }, { additionalProperties: true }) },
      },
    },
    async (req) => {
      const { token, ...expect } = req.body;
      const r = await tokens.introspect(token, expect);
      if (!r.active) req.log.warn({ event: 'security', code: r.reason, remote: req.ip, route: '/api/v1/tokens/introspect' }, 'security event');
      return r;
    },
  );
}

/** Metal API (inside /api/metal/v1, mTLS): a metal presents a token bound to its certificate key. */
export function tokenMetalRoutes(app: FastifyInstance, tokens: TokenService, opts: { ttlMinutes?: number } = {}): void {
  app.post(
    '/tokens/issue',
    {
      schema: {
        tags: ['metal'],
        summary:
          'A one-hop token for the metal→master hop (audience urn:tips:master, scope pull:metal:<id> register:metal:<id>), bound to this certificate key; sent as `Authorization: PoP <cwt>` on this connection. Getting one is the fresh authentication the re-authentication period asks for',
        response: { 201: TokenOut, ...errorResponses(401, 403, 404) },
      },
    },
    async (req, reply) => {
      const id = req.metal.metalId;
      const token = await tokens.issue(req.metal.ownerId, { audience: 'urn:tips:master', scope: [`pull:metal:${id}`, `register:metal:${id}`], ttlMinutes: opts.ttlMinutes, holder: { metal: id, certificateSpki: req.metal.spki } });
      return reply.code(201).send(token);
    },
  );

  app.post<{ Body: { token: string; scope: string } }>(
    '/tokens/check',
    {
      schema: {
        tags: ['metal'],
        summary: 'Check a token for the metal→master hop: audience urn:tips:master, the scope, and PoP by this mTLS connection',
        body: Type.Object({ token: Type.String({ maxLength: 8192 }), scope: Type.String({ maxLength: 160 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ sub: Type.String(), scope: Type.String(), pop: Type.String() }), ...errorResponses(401, 403) },
      },
    },
    async (req) => {
      const v = await tokens.verify(req.body.token, { audience: 'urn:tips:master', scope: req.body.scope, tlsSpki: req.metal.spki });
      return { sub: v.claims.sub ?? '', scope: v.claims.scope ?? '', pop: v.pop };
    },
  );
}
