import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { errorResponses, NameField, Ref } from '../../http/schemas.ts';
import type { BootstrapErrorCode } from './errors.ts';
import { ATTESTATIONS, type BootstrapProfile, type DeviceFacts, ONBOARDING_STATES, type OnboardingRecord, type OnboardingState, PROTOCOLS } from './model.ts';
import type { BootstrapService, CreateProfileInput } from './service.ts';

registerStatusTable<BootstrapErrorCode>('bootstrap', {
  profile_not_found: 404,
  profile_name_taken: 409,
  profile_invalid: 422,
  onboarding_not_found: 404,
  guid_unknown: 404,
  voucher_used: 409,
  no_profile: 422,
  attestation_failed: 401,
  registration_failed: 422,
  onboarding_malformed: 400,
});

const lit = <T extends string>(xs: readonly T[]) => Type.Union(xs.map((x) => Type.Literal(x)));
const Match = Type.Object(
  {
    vendor: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "the voucher's device-info vendor=" })),
    class: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "the voucher's device-info class=" })),
    arch: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'reported by the device: x86_64, aarch64, …' })),
    minRamMb: Type.Optional(Type.Integer({ minimum: 0 })),
    minStorageMb: Type.Optional(Type.Integer({ minimum: 0 })),
    purpose: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "device-info purpose=, else the device's purpose label" })),
  },
  { additionalProperties: false },
);
const Agent = Type.Object(
  {
    vendorId: Type.Optional(Type.Union([Type.String({ maxLength: 36 }), Type.Null()])),
    classId: Type.Optional(Type.Union([Type.String({ maxLength: 36 }), Type.Null()])),
    managedPaths: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 32 })),
    pollIntervalSeconds: Type.Optional(Type.Integer()),
    push: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const Lwm2m = Type.Object(
  {
    serverUri: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: "coaps://host[:port] of the LwM2M server the device registers with; absent: this master's CoAP endpoint" })),
    lifetime: Type.Integer({ description: 'registration lifetime in seconds (Server object /1/0/1), 1 to 2147483647', examples: [300] }),
    binding: Type.String({ description: 'U | UQ (queue mode: the device sleeps between its updates; operations wait for it)', examples: ['UQ'] }),
    defaultMinPeriod: Type.Optional(Type.Integer({ description: 'seconds (/1/0/2)' })),
    defaultMaxPeriod: Type.Optional(Type.Integer({ description: 'seconds (/1/0/3), not less than defaultMinPeriod' })),
  },
  { additionalProperties: false, description: "what the LwM2M bootstrap server writes into the device's Security (0) and Server (1) objects (contract K)" },
);
const ProfileIn = Type.Object(
  {
    name: NameField,
    priority: Type.Optional(Type.Integer({ description: 'lower is tried first (default 100)' })),
    match: Type.Optional(Match),
    phase1Glaze: Type.Optional(Type.Union([Ref, Type.Null()], { description: "the Phase 1 Glaze (must be the profile's Phase 1 Space's), or null: the device has its OS" })),
    spaces: Type.Optional(Type.Array(Ref, { maxItems: 16, description: 'Spaces the metal joins; the Phase 1 one becomes its default Space' })),
    protocols: Type.Optional(Type.Array(lit(PROTOCOLS), { minItems: 1, maxItems: 2 })),
    agent: Type.Optional(Agent),
    attestation: Type.Optional(lit(ATTESTATIONS)),
    pcrs: Type.Optional(Type.Array(Type.Integer(), { maxItems: 24, description: 'tpm2: PCR indices the quote must cover' })),
    pcrDigest: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()], { description: 'tpm2: expected hex SHA-256 over the selected PCRs' })),
    lwm2m: Type.Optional(Type.Union([Lwm2m, Type.Null()])),
  },
  { additionalProperties: false },
);
const ProfileOut = Type.Object({
  id: Type.String(),
  name: Type.String(),
  priority: Type.Integer(),
  match: Match,
  phase1Glaze: Type.Union([Type.String(), Type.Null()]),
  spaces: Type.Array(Type.String()),
  protocols: Type.Array(lit(PROTOCOLS)),
  agent: Agent,
  attestation: lit(ATTESTATIONS),
  pcrs: Type.Array(Type.Integer()),
  pcrDigest: Type.Union([Type.String(), Type.Null()]),
  lwm2m: Type.Optional(Lwm2m),
  createdAt: Type.String(),
});
const profileOut = (p: BootstrapProfile) => ({
  id: p.id,
  name: p.name,
  priority: p.priority,
  match: p.match,
  phase1Glaze: p.phase1Glaze,
  spaces: p.spaces,
  protocols: p.protocols,
  agent: p.agent,
  attestation: p.attestation,
  pcrs: p.pcrs,
  pcrDigest: p.pcrDigest,
  ...(p.lwm2m ? { lwm2m: p.lwm2m } : {}),
  createdAt: p.createdAt,
});

const Iface = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 32 }),
    mac: Type.String({ minLength: 1, maxLength: 32 }),
    type: lit(['ethernet', 'wifi', 'other'] as const),
    pxe: Type.Optional(Type.Boolean({ description: 'the interface the device boots from' })),
  },
  { additionalProperties: false },
);
const Facts = Type.Object(
  {
    interfaces: Type.Array(Iface, { minItems: 1, maxItems: 16 }),
    ramMb: Type.Optional(Type.Integer({ minimum: 0 })),
    storageMb: Type.Optional(Type.Integer({ minimum: 0 })),
    arch: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    purpose: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false, description: 'what the device says about itself; its proof signs the SHA-256 of this JSON as sent' },
);
const State = lit(ONBOARDING_STATES);
const RecordOut = Type.Object({
  id: Type.String(),
  guid: Type.String(),
  status: State,
  reason: Type.Union([Type.String(), Type.Null()], { description: 'why it failed: the verifier or the flow, exactly' }),
  profile: Type.Union([Type.Object({ id: Type.String(), name: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
  verifier: Type.Union([lit(ATTESTATIONS), Type.Null()]),
  metal: Type.Union([Type.String(), Type.Null()]),
  enrollmentSecret: Type.Union([Type.String(), Type.Null()], { description: 'the ID of the secret issued (its value went to the device only)' }),
  device: Type.Union([Facts, Type.Null()]),
  events: Type.Array(Type.Object({ status: State, at: Type.String(), reason: Type.Union([Type.String(), Type.Null()]) })),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
const recordOut = async (b: BootstrapService, r: OnboardingRecord) => ({
  id: r.id,
  guid: r.guid,
  status: r.status,
  reason: r.reason,
  profile: r.profileId ? { id: r.profileId, name: await b.profileName(r.profileId) } : null,
  verifier: r.verifier,
  metal: r.metalId,
  enrollmentSecret: r.secretId,
  device: r.facts,
  events: r.events,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
});

/** Owner API (inside /api/v1): bootstrapping profiles and onboarding records (issue 11, Z1 Z4). */
export function bootstrapRoutes(app: FastifyInstance, b: BootstrapService): void {
  app.post<{ Body: CreateProfileInput }>(
    '/bootstrap/profiles',
    {
      schema: {
        tags: ['bootstrap'],
        summary: 'Make a bootstrapping profile: which devices (vendor, class, resources, purpose) become what (Spaces, Phase 1 Glaze, protocols, agent settings, verifier)',
        body: ProfileIn,
        response: { 201: ProfileOut, ...errorResponses(400, 404, 409, 422) },
      },
    },
    async (req, reply) => reply.code(201).send(profileOut(await b.createProfile(req.owner.id, req.body))),
  );

  app.get<{ Querystring: PageParams }>(
    '/bootstrap/profiles',
    {
      schema: {
        tags: ['bootstrap'],
        summary: 'Your bootstrapping profiles, oldest first, a page at a time (devices try them by priority)',
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(ProfileOut), ...errorResponses(400) },
      },
    },
    async (req) => readPage('bootstrap-profiles', req.query, (w) => b.listProfiles(req.owner.id, w), (p) => ({ at: p.createdAt, id: p.id }), profileOut),
  );

  app.get<{ Params: { ref: string } }>(
    '/bootstrap/profiles/:ref',
    { schema: { tags: ['bootstrap'], summary: 'One bootstrapping profile, by ID or name', params: Type.Object({ ref: Ref }), response: { 200: ProfileOut, ...errorResponses(404) } } },
    async (req) => profileOut(await b.getProfile(req.owner.id, req.params.ref)),
  );

  app.patch<{ Params: { ref: string }; Body: Partial<CreateProfileInput> }>(
    '/bootstrap/profiles/:ref',
    {
      schema: {
        tags: ['bootstrap'],
        summary: 'Change a bootstrapping profile (what the body names; the rest stays): later onboardings get it, metals that already onboarded keep what they became',
        params: Type.Object({ ref: Ref }),
        body: Type.Partial(ProfileIn, { additionalProperties: false, minProperties: 1 }),
        response: { 200: ProfileOut, ...errorResponses(400, 404, 409, 422) },
      },
    },
    async (req) => profileOut(await b.updateProfile(req.owner.id, req.params.ref, req.body)),
  );

  app.get<{ Querystring: PageParams & { status?: OnboardingState } }>(
    '/onboardings',
    {
      schema: {
        tags: ['bootstrap'],
        summary: "Your devices' onboardings (waiting, attested, registered, enrolled, failed + reason), oldest first, a page at a time",
        querystring: Type.Object({ ...PageQuery, status: Type.Optional(State) }, { additionalProperties: false }),
        response: { 200: Page(RecordOut), ...errorResponses(400) },
      },
    },
    async (req) => {
      const page = await readPage('onboardings', req.query, (w) => b.listRecords(req.owner.id, req.query.status, w), (r) => ({ at: r.createdAt, id: r.id }));
      return { items: await Promise.all(page.items.map((r) => recordOut(b, r))), nextCursor: page.nextCursor };
    },
  );

  app.get<{ Params: { ref: string } }>(
    '/onboardings/:ref',
    {
      schema: {
        tags: ['bootstrap'],
        summary: "One device's onboarding, by its ID or the device GUID, with every attempt",
        params: Type.Object({ ref: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: RecordOut, ...errorResponses(404) },
      },
    },
    async (req) => recordOut(b, await b.getRecord(req.owner.id, req.params.ref)),
  );
}

const B64 = Type.String({ minLength: 1, maxLength: 96 * 1024, description: 'base64' });
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
function b64(s: string, field: string): Uint8Array {
  if (s.length % 4 !== 0 || !BASE64.test(s)) throw Object.assign(new Error(`${field}: expected base64`), { field });
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/**
 * TO2 (`/api/onboarding/v1`, no credential: the owner proves itself with the onboarding key, the
 * device with the key its voucher binds and, when its profile asks, a TPM quote).
 */
export function onboardingDeviceRoutes(app: FastifyInstance, b: BootstrapService): void {
  const malformed = (reply: { code(n: number): { send(x: unknown): unknown } }, id: unknown, e: unknown) =>
    reply.code(400).send({ error: { code: 'onboarding_malformed', message: (e as Error).message, field: (e as { field?: string }).field }, requestId: String(id) });

  app.post<{ Body: { guid: string; nonce: string; device: DeviceFacts; tpm?: string } }>(
    '/hello',
    {
      schema: {
        tags: ['onboarding'],
        summary: 'TO2 step 1: the device names its GUID, a nonce and its facts; the owner answers with the voucher, its nonce, a proof signed by its onboarding key, and the attestation its profile asks for',
        body: Type.Object(
          { guid: Type.String({ minLength: 1, maxLength: 64 }), nonce: B64, device: Facts, tpm: Type.Optional({ ...B64, description: "base64 CBOR { ek, ak }: the device's TPM identity (tpm2 profiles challenge it)" }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            voucher: Type.String(),
            nonce: Type.String(),
            ownerProof: Type.String(),
            attestation: Type.Object({
              verifier: lit(ATTESTATIONS),
              pcrs: Type.Array(Type.Integer()),
              challenge: Type.Optional(Type.String({ description: 'tpm2: base64 credential for tpm2_activatecredential (only the TPM holding the EK, with the AK, unwraps it)' })),
            }),
          }),
          ...errorResponses(400, 404, 409, 422),
        },
      },
    },
    async (req, reply) => {
      let nonce: Uint8Array;
      let tpm: Uint8Array | undefined;
      try {
        nonce = b64(req.body.nonce, 'nonce');
        tpm = req.body.tpm === undefined ? undefined : b64(req.body.tpm, 'tpm');
      } catch (e) {
        return malformed(reply, req.id, e);
      }
      const r = await b.hello(req.body.guid, nonce, req.body.device, tpm);
      return {
        voucher: Buffer.from(r.voucher).toString('base64'),
        nonce: Buffer.from(r.ownerNonce).toString('base64'),
        ownerProof: Buffer.from(r.ownerProof).toString('base64'),
        attestation: { verifier: r.attestation.verifier, pcrs: r.attestation.pcrs, ...(r.attestation.challenge ? { challenge: Buffer.from(r.attestation.challenge).toString('base64') } : {}) },
      };
    },
  );

  app.post<{ Body: { guid: string; nonce: string; proof: string; evidence?: string } }>(
    '/prove',
    {
      schema: {
        tags: ['onboarding'],
        summary: "TO2 step 2: the device's proof of possession over the owner's nonce (and TPM evidence when asked) → a Metal Object and the sealed setup (enrollment credential, agent configuration)",
        body: Type.Object({ guid: Type.String({ minLength: 1, maxLength: 64 }), nonce: B64, proof: B64, evidence: Type.Optional(B64) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            guid: Type.String(),
            status: State,
            metal: Type.String(),
            setup: Type.String({ description: 'base64 COSE_Sign1 by the onboarding key over the setup encrypted to the device\'s setup key' }),
          }),
          ...errorResponses(400, 401, 404, 409, 422),
        },
      },
    },
    async (req, reply) => {
      let nonce: Uint8Array;
      let proof: Uint8Array;
      let evidence: Uint8Array | undefined;
      try {
        nonce = b64(req.body.nonce, 'nonce');
        proof = b64(req.body.proof, 'proof');
        evidence = req.body.evidence === undefined ? undefined : b64(req.body.evidence, 'evidence');
      } catch (e) {
        return malformed(reply, req.id, e);
      }
      const r = await b.prove(req.body.guid, nonce, proof, evidence);
      return { guid: r.record.guid, status: r.record.status, metal: r.record.metalId!, setup: Buffer.from(r.setup).toString('base64') };
    },
  );
}
