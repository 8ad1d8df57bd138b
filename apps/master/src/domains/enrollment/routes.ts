import { Type } from '@sinclair/typebox';
import { certsOnlyPkcs7, parseCertificate } from '@tips/trust';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, registerStatusTable } from '../../http/errors.ts';
import { binary, bytesBody, noContent } from '../../http/openapi-responses.ts';
import { errorResponses, Ref } from '../../http/schemas.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { isTls, peerCertificate } from '../../tls/peer.ts';
import { EnrollmentError, type EnrollmentErrorCode } from './errors.ts';
import type { EnrollmentSecret, IssuedCertificate, MetalPrincipal } from './model.ts';
import { type CreateSecretInput, type EnrollmentService, estIdentity } from './service.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The metal at the other end of an mTLS request on /api/metal/v1. */
    metal: MetalPrincipal;
  }
}

registerStatusTable<EnrollmentErrorCode>('enrollment', {
  secret_not_found: 404,
  enrollment_unauthenticated: 401,
  enrollment_secret_invalid: 401,
  enrollment_secret_exhausted: 401,
  enrollment_secret_expired: 401,
  csr_malformed: 400,
  csr_signature_invalid: 400,
  csr_key_unsupported: 400,
  csr_identity_missing: 400,
  csr_identity_mismatch: 403,
  https_required: 403,
  unsupported_media_type: 415,
  client_certificate_required: 401,
  client_certificate_invalid: 401,
  certificate_unknown: 401,
  certificate_revoked: 401,
  certificate_expired: 401,
  certificate_not_accepted_here: 401,
  certificate_not_found: 404,
  metal_blocked: 403,
  metal_retired: 403,
  too_many_attempts: 429,
  scope_invalid: 422,
});

/** EST media types (RFC 7030 §4, RFC 8951: bodies are base64 without a transfer-encoding header being required). */
export const EST_MEDIA = {
  pkcs10: 'application/pkcs10',
  certsOnly: 'application/pkcs7-mime; smime-type=certs-only',
  csrattrs: 'application/csrattrs',
} as const;

/**
 * Logs refusals that are someone trying to get in (any domain error flagged `security`): one line,
 * the code, never a secret. Installed once per API scope.
 */
function logSecurityEvents(app: FastifyInstance): void {
  app.addHook('onError', async (req, _reply, err) => {
    if (err instanceof DomainError && (err as DomainError & { security?: boolean }).security === true) {
      req.log.warn({ event: 'security', code: err.code, remote: req.ip, route: req.routeOptions.url ?? req.url.split('?')[0] }, 'security event');
    }
  });
}

/** Owner scope: a client certificate presented *instead of* a token is refused by name. */
export function refuseCertificateWithoutToken(req: FastifyRequest, token: string | undefined): void {
  if (token === undefined && peerCertificate(req)) {
    throw new EnrollmentError('certificate_not_accepted_here', 'the owner API takes an API token; a client certificate is not accepted here');
  }
}

const SecretOut = Type.Object({
  id: Type.String(),
  scope: Type.Object({ kind: Type.String({ description: 'metal | space' }), id: Type.String() }),
  method: Type.String({ description: 'secret | image-key' }),
  maxUses: Type.Integer(),
  uses: Type.Integer(),
  expiresAt: Type.String(),
  createdAt: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});
const CertOut = Type.Object({
  serial: Type.String(),
  subject: Type.Object({ kind: Type.String(), id: Type.String() }),
  fingerprint: Type.String({ description: 'SHA-256 of the DER certificate, hex' }),
  notBefore: Type.String(),
  notAfter: Type.String(),
  status: Type.String(),
  issuedVia: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  revokeReason: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
});
const secretOut = ({ ownerId: _o, ...s }: EnrollmentSecret) => s;
const certOut = ({ ownerId: _o, secretId: _s, publicKey: _k, ...c }: IssuedCertificate) => c;

/** Owner API (inside /api/v1): enrollment secrets, issued certificates, revocation, the CA. */
export function enrollmentRoutes(app: FastifyInstance, enrollment: EnrollmentService): void {
  logSecurityEvents(app);

  app.post<{ Body: CreateSecretInput }>(
    '/enrollment/secrets',
    {
      schema: {
        tags: ['enrollment'],
        summary: 'Create an enrollment secret for one metal or one Phase 1 Space; the secret is shown only in this response',
        body: Type.Object(
          {
            metal: Type.Optional(Ref),
            space: Type.Optional(Ref),
            maxUses: Type.Optional(Type.Integer({ description: 'how many enrollments it allows (default 1)' })),
            expiresInMinutes: Type.Optional(Type.Integer({ description: 'default 1440' })),
            imagePublicKey: Type.Optional(Type.String({ maxLength: 4096, description: 'T14 image-key mode: the P-256 public key (PEM) baked into the Phase 1 image; no secret is made' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([SecretOut, Type.Object({ secret: Type.Optional(Type.String()) })]), ...errorResponses(400, 404, 422) },
      },
    },
    async (req, reply) => {
      const { secret, value } = await enrollment.createSecret(req.owner.id, req.body);
      return reply.code(201).send({ ...secretOut(secret), ...(value === undefined ? {} : { secret: value }) });
    },
  );

  app.get<{ Querystring: PageParams }>(
    '/enrollment/secrets',
    {
      schema: {
        tags: ['enrollment'],
        summary: 'List your enrollment secrets (never the secrets themselves), oldest first, a page at a time',
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(SecretOut), ...errorResponses(400) },
      },
    },
    async (req) => readPage('enrollment-secrets', req.query, (w) => enrollment.listSecrets(req.owner.id, w), (s) => ({ at: s.createdAt, id: s.id }), secretOut),
  );

  app.delete<{ Params: { id: string } }>(
    '/enrollment/secrets/:id',
    { schema: { tags: ['enrollment'], summary: 'Revoke an enrollment secret', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 204: noContent('Revoked'), ...errorResponses(404) } } },
    async (req, reply) => {
      await enrollment.revokeSecret(req.owner.id, req.params.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { metal?: string } & PageParams }>(
    '/enrollment/certificates',
    {
      schema: {
        tags: ['enrollment'],
        summary: 'Certificates issued to your metals, oldest first, a page at a time',
        querystring: Type.Object({ metal: Type.Optional(Ref), ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(CertOut), ...errorResponses(400, 404) },
      },
    },
    async (req) =>
      readPage('enrollment-certificates', req.query, (w) => enrollment.listCertificates(req.owner.id, req.query.metal, w), (c) => ({ at: c.createdAt, id: c.serial }), certOut),
  );

  app.post<{ Params: { serial: string } }>(
    '/enrollment/certificates/:serial/revoke',
    { schema: { tags: ['enrollment'], summary: 'Revoke one certificate', params: Type.Object({ serial: Type.String({ maxLength: 64, pattern: '^[0-9a-fA-F]+$' }) }), response: { 204: noContent('Revoked'), ...errorResponses(404) } } },
    async (req, reply) => {
      await enrollment.revokeCertificate(req.owner.id, req.params.serial);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { ref: string } }>(
    '/enrollment/metals/:ref/revoke',
    {
      schema: {
        tags: ['enrollment'],
        summary: "Revoke every certificate of a metal (blocked, retired, or forced to re-enroll); the next mTLS request is refused",
        params: Type.Object({ ref: Ref }),
        response: { 200: Type.Object({ revoked: Type.Integer() }), ...errorResponses(404) },
      },
    },
    async (req) => ({ revoked: await enrollment.revokeMetal(req.owner.id, req.params.ref) }),
  );

  app.post<{ Params: { ref: string } }>(
    '/metals/:ref/retire',
    {
      schema: {
        tags: ['enrollment'],
        summary:
          'Retire a metal (S14): revoke its certificates and metal-scoped enrollment secrets (its PoP tokens die with the certificate key); its next request is refused with 403 metal_retired, on which the client wipes its credentials; it never enrolls again. Idempotent',
        params: Type.Object({ ref: Ref }),
        response: {
          200: Type.Object({ metal: Type.String(), retiredAt: Type.String(), certificatesRevoked: Type.Integer(), secretsRevoked: Type.Integer() }),
          ...errorResponses(404),
        },
      },
    },
    async (req) => {
      const r = await enrollment.retireMetal(req.owner.id, req.params.ref);
      req.log.info({ event: 'metal_retired', metal: r.metal, certificatesRevoked: r.certificatesRevoked, secretsRevoked: r.secretsRevoked }, 'metal retired');
      return r;
    },
  );

  app.get('/enrollment/ca', { schema: { tags: ['enrollment'], summary: 'The root and intermediate CA certificates (PEM)', response: { 200: Type.Object({ rootPem: Type.String(), intermediatePem: Type.String() }) } } }, async () =>
    enrollment.caPem(),
  );
}

/** Strict base64 (whitespace and line breaks allowed, nothing else). */
export function decodeBase64Body(body: unknown, field: string): Uint8Array {
  const text = typeof body === 'string' ? body.replace(/\s+/g, '') : '';
  if (text === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new EnrollmentError('csr_malformed', `expected a base64-encoded DER ${field}`, field);
  }
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** The bytes of a base64 body, or none: only to name who a request claims to be, never to act on. */
function lenientBase64(body: unknown): Uint8Array | undefined {
  try {
    return decodeBase64Body(body, 'csr');
  } catch {
    return undefined;
  }
}

function base64Lines(der: Uint8Array): string {
  return `${Buffer.from(der)
    .toString('base64')
    .replace(/.{1,64}/g, '$&\n')}`;
}

function basicCredentials(req: FastifyRequest): { id: string; secret: string } | undefined {
  const h = req.headers.authorization;
  if (!h?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : { id: decoded.slice(0, i), secret: decoded.slice(i + 1) };
}

const CSRATTRS = csrAttrs();

/**
 * csrattrs (RFC 7030 §4.5.2): SEQUENCE OF AttrOrOID — ecdsa-with-SHA256 for the signature, and
 * an ecPublicKey attribute naming the P-256 curve for the key.
 */
function csrAttrs(): Uint8Array {
  const tlv = (tag: number, body: number[]): number[] => [tag, body.length, ...body];
  const oid = (bytes: number[]) => tlv(0x06, bytes);
  const ecdsaWithSha256 = oid([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
  const ecPublicKey = oid([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
  const prime256v1 = oid([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
  return new Uint8Array(tlv(0x30, [...ecdsaWithSha256, ...tlv(0x30, [...ecPublicKey, ...tlv(0x31, prime256v1)])]));
}

function sendCerts(reply: FastifyReply, der: Uint8Array, type: string = EST_MEDIA.certsOnly) {
  return reply.header('content-type', type).header('content-transfer-encoding', 'base64').send(base64Lines(der));
}

const BASE64_LINES = { contentEncoding: 'base64', pattern: '^[A-Za-z0-9+/=\\r\\n]+$' };
const EST_CERTS = binary(EST_MEDIA.certsOnly, 'a certs-only PKCS#7 (RFC 5652), DER in base64 lines', BASE64_LINES);
const EST_CSR = bytesBody(EST_MEDIA.pkcs10, 'a DER PKCS#10 request in base64', { contentEncoding: 'base64' });

/** EST (RFC 7030) at /.well-known/est, over HTTPS only. */
export function estRoutes(app: FastifyInstance, enrollment: EnrollmentService): void {
  logSecurityEvents(app);
  // EST takes one request type: any other (JSON, a form, octet-stream) is refused by name here,
  // before its body is read, instead of by the framework's generic 415 or a JSON parse error.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(EST_MEDIA.pkcs10, { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('*', (req, _payload, done) => done(wrongMediaType(req), undefined));
  app.addHook('onRequest', async (req) => {
    if (!isTls(req)) throw new EnrollmentError('https_required', 'EST is served over HTTPS only');
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (reply.statusCode === 401) reply.header('www-authenticate', 'Basic realm="TIPS EST", charset="UTF-8"');
    return payload;
  });
  const requirePkcs10 = (req: FastifyRequest) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== EST_MEDIA.pkcs10) throw wrongMediaType(req);
  };

  app.get('/cacerts', { schema: { tags: ['est'], summary: 'CA certificates, certs-only PKCS#7, base64 (RFC 7030 §4.1)', security: [], response: { 200: EST_CERTS } } }, async (_req, reply) =>
    sendCerts(reply, await enrollment.caCertificates()),
  );

  app.get('/csrattrs', { schema: { tags: ['est'], summary: 'CSR attributes the CA wants (RFC 7030 §4.5)', security: [], response: { 200: binary(EST_MEDIA.csrattrs, 'the CsrAttrs (RFC 7030 §4.5.2), DER in base64 lines', BASE64_LINES) } } }, async (_req, reply) =>
    reply.header('content-type', EST_MEDIA.csrattrs).header('content-transfer-encoding', 'base64').send(base64Lines(CSRATTRS)),
  );

  app.post(
    '/simpleenroll',
    {
      schema: {
        tags: ['est'],
        summary: 'Enroll with an enrollment secret (HTTP Basic: secret ID : secret); body: base64 DER PKCS#10',
        security: [{ estSecret: [] }, {}],
        requestBody: EST_CSR,
        response: { 200: EST_CERTS, ...errorResponses(400, 401, 403, 415, 429) },
      },
    },
    async (req, reply) => {
      // HTTP Basic (secret ID : secret), or none at all in image-key mode (T14).
      const credentials = basicCredentials(req);
      requirePkcs10(req);
      const identity = estIdentity({ basicUser: credentials?.id, csr: credentials ? undefined : lenientBase64(req.body) });
      const { der } = await enrollment.throttled(req.ip, identity, () => enrollment.enroll(credentials, decodeBase64Body(req.body, 'csr')));
      return sendCerts(reply, certsOnly(der));
    },
  );

  app.post(
    '/simplereenroll',
    {
      schema: {
        tags: ['est'],
        summary: 'Renew with the current certificate (mTLS); body: base64 DER PKCS#10 naming the same metal',
        security: [{ metalCertificate: [] }],
        requestBody: EST_CSR,
        response: { 200: EST_CERTS, ...errorResponses(400, 401, 403, 415, 429) },
      },
    },
    async (req, reply) => {
      const peer = peerCertificate(req);
      const identity = estIdentity({ clientCertificate: peer?.der, csr: lenientBase64(req.body) });
      const { der } = await enrollment.throttled(req.ip, identity, async () => {
        const principal = await enrollment.authenticateMetal(peer);
        requirePkcs10(req);
        return enrollment.reenroll(principal, decodeBase64Body(req.body, 'csr'));
      });
      return sendCerts(reply, certsOnly(der));
    },
  );
}

function wrongMediaType(req: FastifyRequest): EnrollmentError {
  const came = req.headers['content-type'];
  return new EnrollmentError(
    'unsupported_media_type',
    `expected Content-Type ${EST_MEDIA.pkcs10} (a base64 DER PKCS#10), came ${came ? came.slice(0, 100) : 'none'}`,
    'content-type',
  );
}

function certsOnly(der: Uint8Array): Uint8Array {
  return certsOnlyPkcs7([parseCertificate(der)]);
}

/** The metal API (/api/metal/v1): mTLS only — the certificate is the identity; tokens are ignored. */
export function metalScope(app: FastifyInstance, enrollment: EnrollmentService): void {
  logSecurityEvents(app);
  app.decorateRequest('metal', null as unknown as MetalPrincipal);
  app.addHook('onRequest', async (req) => {
    req.metal = await enrollment.authenticateMetal(peerCertificate(req));
  });
  app.get(
    '/whoami',
    {
      schema: {
        tags: ['metal'],
        summary: 'The metal this client certificate names',
        response: { 200: Type.Object({ metal: Type.String(), serial: Type.String(), notAfter: Type.String() }) },
      },
    },
    async (req) => ({ metal: req.metal.metalId, serial: req.metal.serial, notAfter: req.metal.notAfter }),
  );
}
