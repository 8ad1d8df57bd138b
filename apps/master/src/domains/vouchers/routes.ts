import { Type } from '@sinclair/typebox';
import type { OwnerId } from '@tips/core';
import { armorVoucher, decodeVoucher, guidToString, readVoucherFile } from '@tips/onboarding';
import type { FastifyInstance } from 'fastify';
import { registerStatusTable } from '../../http/errors.ts';
import { Page, type PageParams, PageQuery, readPage } from '../../http/pagination.ts';
import { errorResponses, NameField, Ref } from '../../http/schemas.ts';
import { VoucherDomainError, type VoucherDomainErrorCode } from './errors.ts';
import { type ImportedVoucher, MAX_VOUCHERS_PER_IMPORT, ONBOARDING_STATUSES, type OnboardingKey } from './model.ts';
import type { VoucherService } from './service.ts';

registerStatusTable<VoucherDomainErrorCode>('vouchers', {
  voucher_malformed: 400,
  voucher_unsupported: 422,
  voucher_header_mismatch: 422,
  voucher_no_entries: 422,
  entry_signature_invalid: 422,
  entry_prev_hash_mismatch: 422,
  entry_header_info_mismatch: 422,
  voucher_wrong_owner: 422,
  voucher_conflict: 409,
  voucher_not_found: 404,
  onboarding_key_not_found: 404,
  onboarding_key_name_taken: 409,
  rendezvous_failed: 502,
  guid_unknown: 404,
  onboarding_malformed: 400,
});

const KeyOut = Type.Object({
  id: Type.String(),
  name: Type.String(),
  alg: Type.String(),
  publicKey: Type.String({ description: 'SPKI PEM: give it to your distributor (`tips factory voucher extend --to`)' }),
  fingerprint: Type.String({ description: 'hex SHA-256 of the SPKI DER' }),
  createdAt: Type.String(),
});
const keyOut = (k: OnboardingKey) => ({ id: k.id, name: k.name, alg: k.alg, publicKey: k.publicKeyPem, fingerprint: k.fingerprint, createdAt: k.createdAt });

const VoucherOut = Type.Object({
  guid: Type.String({ description: 'the device GUID' }),
  status: Type.Union(ONBOARDING_STATUSES.map((s) => Type.Literal(s)), { description: 'imported → rendezvous_registered → onboarded' }),
  deviceInfo: Type.String(),
  rendezvous: Type.Array(Type.String(), { description: 'rendezvous addresses from the voucher header' }),
  manufacturerKey: Type.String({ description: 'hex SHA-256 of the manufacturer key' }),
  deviceKey: Type.String({ description: 'the device key bound in the voucher, SPKI PEM' }),
  ownerChain: Type.Array(Type.String(), { description: 'hex SHA-256 of the key each entry hands the device to, in order; the last is yours' }),
  entries: Type.Integer(),
  onboardingKey: Type.Object({ id: Type.String(), name: Type.Union([Type.String(), Type.Null()]) }),
  sha256: Type.String({ description: 'hex SHA-256 of the voucher bytes' }),
  importedAt: Type.String(),
  updatedAt: Type.String(),
});
const VoucherDetail = Type.Composite([VoucherOut, Type.Object({ voucher: Type.String({ description: 'the voucher, armoured (-----BEGIN OWNERSHIP VOUCHER-----)' }) })]);

async function voucherOut(vouchers: VoucherService, ownerId: OwnerId, v: ImportedVoucher, names?: Map<string, string>) {
  const name = names?.get(v.onboardingKeyId) ?? (await vouchers.keyName(ownerId, v)) ?? null;
  return {
    guid: v.guid,
    status: v.status,
    deviceInfo: v.deviceInfo,
    rendezvous: v.rendezvous,
    manufacturerKey: v.manufacturerKey,
    deviceKey: v.deviceKeyPem,
    ownerChain: v.ownerChain,
    entries: v.ownerChain.length,
    onboardingKey: { id: v.onboardingKeyId, name },
    sha256: v.sha256,
    importedAt: v.createdAt,
    updatedAt: v.updatedAt,
  };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The GUID a voucher's header names, read without trusting it (for the refusal's record), or undefined. */
function guidOf(bytes: Uint8Array): string | undefined {
  try {
    return guidToString(decodeVoucher(readVoucherFile(bytes)).header.guid);
  } catch {
    return undefined;
  }
}

/** A voucher as the API takes it: base64 of the CBOR, or the armoured text. */
function voucherBytes(s: string, index: number): Uint8Array {
  if (s.trimStart().startsWith('-----BEGIN')) return new Uint8Array(Buffer.from(s, 'utf8'));
  if (s.length % 4 !== 0 || !BASE64.test(s)) throw Object.assign(new Error(`vouchers[${index}]: expected base64 of the voucher's CBOR, or the armoured text`), { field: `vouchers[${index}]` });
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Owner API (inside /api/v1): onboarding keys and ownership vouchers (issue 11, Z3). */
export function voucherRoutes(
  app: FastifyInstance,
  vouchers: VoucherService,
  publicUrl?: () => string,
  /** An import refused: the bootstrap domain records it on the device's onboarding (when the voucher names a GUID). */
  onRefused?: (ownerId: OwnerId, guid: string, reason: string) => Promise<void>,
): void {
  app.post<{ Body: { name: string } }>(
    '/onboarding-keys',
    {
      schema: {
        tags: ['vouchers'],
        summary: 'Make an onboarding key (P-256, held by the master): the key distributors sign your devices over to',
        body: Type.Object({ name: NameField }, { additionalProperties: false }),
        response: { 201: KeyOut, ...errorResponses(400, 409) },
      },
    },
    async (req, reply) => reply.code(201).send(keyOut(await vouchers.createKey(req.owner.id, req.body))),
  );

  app.get<{ Querystring: PageParams }>(
    '/onboarding-keys',
    {
      schema: {
        tags: ['vouchers'],
        summary: 'Your onboarding keys, oldest first, a page at a time',
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(KeyOut), ...errorResponses(400) },
      },
    },
    async (req) => readPage('onboarding-keys', req.query, (w) => vouchers.listKeys(req.owner.id, w), (k) => ({ at: k.createdAt, id: k.id }), keyOut),
  );

  app.get<{ Params: { ref: string } }>(
    '/onboarding-keys/:ref',
    { schema: { tags: ['vouchers'], summary: 'One onboarding key (its public key to hand to a distributor)', params: Type.Object({ ref: Ref }), response: { 200: KeyOut, ...errorResponses(404) } } },
    async (req) => keyOut(await vouchers.getKey(req.owner.id, req.params.ref)),
  );

  app.post<{ Body: { vouchers: string[] } }>(
    '/vouchers',
    {
      bodyLimit: 8 * 1024 * 1024,
      schema: {
        tags: ['vouchers'],
        summary: 'Import ownership vouchers (bulk, all or nothing, idempotent): each chain must end at one of your onboarding keys',
        description:
          'Every voucher is verified in full (device key binding, each entry\'s hash link and signature, the last key is one of yours). The first one refused stops the import; nothing is written; the error names it (`field: vouchers[i]`) and the broken link (the entry index, or the header). A voucher imported before with the same bytes is `unchanged`; a device imported before with another voucher is 409.',
        body: Type.Object(
          { vouchers: Type.Array(Type.String({ minLength: 1, maxLength: 96 * 1024, description: 'base64 of the voucher CBOR, or the armoured text' }), { minItems: 1, maxItems: MAX_VOUCHERS_PER_IMPORT }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(Type.Object({ result: Type.Union([Type.Literal('imported'), Type.Literal('unchanged')]), voucher: VoucherOut })),
            imported: Type.Integer(),
            unchanged: Type.Integer(),
          }),
          ...errorResponses(400, 409, 422),
        },
      },
    },
    async (req, reply) => {
      let bytes: Uint8Array[];
      try {
        bytes = req.body.vouchers.map(voucherBytes);
      } catch (e) {
        const field = (e as { field?: string }).field ?? 'vouchers';
        return reply.code(400).send({ error: { code: 'voucher_malformed', message: (e as Error).message, field }, requestId: String(req.id) });
      }
      let results: Awaited<ReturnType<VoucherService['import']>>;
      try {
        results = await vouchers.import(req.owner.id, bytes);
      } catch (e) {
        const i = e instanceof VoucherDomainError ? /^vouchers\[(\d+)\]$/.exec(e.field ?? '') : null;
        const guid = i ? guidOf(bytes[Number(i[1])]!) : undefined;
        if (onRefused && guid && e instanceof VoucherDomainError) await onRefused(req.owner.id, guid, `${e.code}: ${e.message}`);
        throw e;
      }
      const names = new Map((await vouchers.listKeys(req.owner.id)).map((k) => [k.id as string, k.name]));
      const items = await Promise.all(results.map(async (r) => ({ result: r.outcome, voucher: await voucherOut(vouchers, req.owner.id, r.voucher, names) })));
      return { items, imported: results.filter((r) => r.outcome === 'imported').length, unchanged: results.filter((r) => r.outcome === 'unchanged').length };
    },
  );

  app.get<{ Querystring: PageParams }>(
    '/vouchers',
    {
      schema: {
        tags: ['vouchers'],
        summary: 'Your imported vouchers and each device\'s onboarding status, oldest first, a page at a time',
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: Page(VoucherOut), ...errorResponses(400) },
      },
    },
    async (req) => {
      const names = new Map((await vouchers.listKeys(req.owner.id)).map((k) => [k.id as string, k.name]));
      const page = await readPage('vouchers', req.query, (w) => vouchers.list(req.owner.id, w), (v) => ({ at: v.createdAt, id: v.guid }), (v) => v);
      return { items: await Promise.all(page.items.map((v) => voucherOut(vouchers, req.owner.id, v, names))), nextCursor: page.nextCursor };
    },
  );

  app.get<{ Params: { guid: string } }>(
    '/vouchers/:guid',
    {
      schema: {
        tags: ['vouchers'],
        summary: 'One device\'s voucher (armoured) and onboarding status, by GUID',
        params: Type.Object({ guid: Type.String({ minLength: 1, maxLength: 64, description: 'device GUID, with or without dashes' }) }),
        response: { 200: VoucherDetail, ...errorResponses(404) },
      },
    },
    async (req) => {
      const v = await vouchers.get(req.owner.id, req.params.guid);
      return { ...(await voucherOut(vouchers, req.owner.id, v)), voucher: armorVoucher(v.voucher) };
    },
  );

  app.post<{ Params: { guid: string } }>(
    '/vouchers/:guid/rendezvous',
    {
      schema: {
        tags: ['vouchers'],
        summary: "TO0: register the device at the rendezvous servers its voucher names, pointing it at this master (status → rendezvous_registered)",
        params: Type.Object({ guid: Type.String({ minLength: 1, maxLength: 64, description: 'device GUID' }) }),
        response: { 200: Type.Object({ voucher: VoucherOut, registered: Type.Array(Type.String()) }), ...errorResponses(404, 502) },
      },
    },
    async (req) => {
      const address = publicUrl?.() ?? `${req.protocol}://${req.host}`;
      const r = await vouchers.registerRendezvous(req.owner.id, req.params.guid, address);
      return { voucher: await voucherOut(vouchers, req.owner.id, r.voucher), registered: r.registered };
    },
  );
}
