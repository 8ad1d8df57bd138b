import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { formatPath, isObjectLink, type Lwm2mPath, Lwm2mFormatError, parsePath, type ResourceRecord, type ResourceValue } from './values.ts';

/**
 * SenML (RFC 8428) as LwM2M 1.1 uses it (Core §7.4.4–7.4.5): content formats 112 (CBOR) and 110
 * (JSON). A record's name is base name + name = a resource path; LwM2M adds "vlo" for object links.
 */
export const SENML_BVER = -1;
export const SENML_BN = -2;
export const SENML_BT = -3;
export const SENML_N = 0;
export const SENML_V = 2;
export const SENML_VS = 3;
export const SENML_VB = 4;
export const SENML_T = 6;
export const SENML_VD = 8;
export const SENML_VLO = 'vlo';

const CBOR_LABELS = new Map<number | string, string>([
  [SENML_BVER, 'bver'],
  [SENML_BN, 'bn'],
  [SENML_BT, 'bt'],
  [-4, 'bu'],
  [-5, 'bv'],
  [-6, 'bs'],
  [SENML_N, 'n'],
  [1, 'u'],
  [SENML_V, 'v'],
  [SENML_VS, 'vs'],
  [SENML_VB, 'vb'],
  [5, 's'],
  [SENML_T, 't'],
  [7, 'ut'],
  [SENML_VD, 'vd'],
  [SENML_VLO, 'vlo'],
]);
const JSON_LABELS = new Set(CBOR_LABELS.values());

interface RawRecord {
  bn?: unknown;
  n?: unknown;
  v?: unknown;
  vs?: unknown;
  vb?: unknown;
  vd?: unknown;
  vlo?: unknown;
  [k: string]: unknown;
}

const pathName = (p: Lwm2mPath) => formatPath(p);

/** Common prefix of the records' paths (at least [obj, inst] when they share them) as the base name. */
function baseOf(records: readonly ResourceRecord[]): Lwm2mPath {
  if (records.length === 0) return [];
  let base = records[0]!.path.slice(0, -1);
  for (const r of records) {
    let k = 0;
    while (k < base.length && k < r.path.length - 1 && base[k] === r.path[k]) k++;
    base = base.slice(0, k);
  }
  return base;
}

function toRaw(records: readonly ResourceRecord[], opaque: (b: Uint8Array) => unknown): RawRecord[] {
  const base = baseOf(records);
  const bn = base.length > 0 ? `${pathName(base)}/` : undefined;
  return records.map((r, i) => {
    const raw: RawRecord = {};
    if (i === 0 && bn) raw.bn = bn;
    raw.n = bn ? r.path.slice(base.length).join('/') : pathName(r.path);
    const v = r.value;
    if (typeof v === 'string') raw.vs = v;
    else if (typeof v === 'boolean') raw.vb = v;
    else if (v instanceof Uint8Array) raw.vd = opaque(v);
    else if (isObjectLink(v)) raw.vlo = `${v.objectId}:${v.instanceId}`;
    else raw.v = v;
    return raw;
  });
}

function fromRaw(raws: RawRecord[], opaque: (x: unknown) => Uint8Array): ResourceRecord[] {
  let bn = '';
  const out: ResourceRecord[] = [];
  for (const [i, r] of raws.entries()) {
    if (r.bn !== undefined) {
      if (typeof r.bn !== 'string') throw new Lwm2mFormatError(`record ${i}: bn must be a string`);
      bn = r.bn;
    }
    if (r.n !== undefined && typeof r.n !== 'string') throw new Lwm2mFormatError(`record ${i}: n must be a string`);
    const name = bn + ((r.n as string | undefined) ?? '');
    const path = parsePath(name);
    if (path.length < 3) throw new Lwm2mFormatError(`record ${i}: ${JSON.stringify(name)} does not name a resource`);
    const given = (['v', 'vs', 'vb', 'vd', 'vlo'] as const).filter((k) => r[k] !== undefined);
    if (given.length !== 1) throw new Lwm2mFormatError(`record ${i} (${name}) must carry exactly one value, has ${given.length}`);
    let value: ResourceValue;
    switch (given[0]) {
      case 'v':
        if (typeof r.v !== 'number' && typeof r.v !== 'bigint') throw new Lwm2mFormatError(`record ${i}: v must be a number`);
        value = r.v;
        break;
      case 'vs':
        if (typeof r.vs !== 'string') throw new Lwm2mFormatError(`record ${i}: vs must be a string`);
        value = r.vs;
        break;
      case 'vb':
        if (typeof r.vb !== 'boolean') throw new Lwm2mFormatError(`record ${i}: vb must be a boolean`);
        value = r.vb;
        break;
      case 'vd':
        value = opaque(r.vd);
        break;
      default: {
        const m = typeof r.vlo === 'string' ? /^(\d{1,5}):(\d{1,5})$/.exec(r.vlo) : null;
        if (!m || Number(m[1]) > 65535 || Number(m[2]) > 65535) throw new Lwm2mFormatError(`record ${i}: vlo must be "obj:inst"`);
        value = { objectId: Number(m[1]), instanceId: Number(m[2]) };
      }
    }
    out.push({ path, value });
  }
  return out;
}

/** SenML-CBOR (112): an array of maps with the integer labels of RFC 8428 §6. */
export function encodeSenmlCbor(records: readonly ResourceRecord[]): Uint8Array {
  const raws = toRaw(records, (b) => b);
  const byName = new Map([...CBOR_LABELS].map(([k, v]) => [v, k]));
  return cborEncode(raws.map((r) => new Map(Object.entries(r).map(([k, v]) => [byName.get(k)!, v]))));
}

export function decodeSenmlCbor(bytes: Uint8Array): ResourceRecord[] {
  let decoded: unknown;
  try {
    decoded = cborDecode(bytes, { useMaps: true, rejectDuplicateMapKeys: true, strict: true, allowUndefined: false, allowIndefinite: false });
  } catch (e) {
    throw new Lwm2mFormatError(`SenML-CBOR is not well-formed CBOR: ${(e as Error).message}`);
  }
  if (!Array.isArray(decoded)) throw new Lwm2mFormatError('SenML-CBOR must be an array of records');
  return fromRaw(
    decoded.map((m, i) => {
      if (!(m instanceof Map)) throw new Lwm2mFormatError(`SenML-CBOR record ${i} is not a map`);
      const raw: RawRecord = {};
      for (const [k, v] of m) {
        const label = CBOR_LABELS.get(k as number | string);
        if (label === undefined) {
          // RFC 8428 §4.4: labels ending in "_" are must-understand; everything else unknown is skipped.
          if (typeof k === 'string' && k.endsWith('_')) throw new Lwm2mFormatError(`SenML-CBOR record ${i}: must-understand label ${k}`);
          continue;
        }
        raw[label] = v;
      }
      return raw;
    }),
    (x) => {
      if (!(x instanceof Uint8Array)) throw new Lwm2mFormatError('vd must be a byte string in SenML-CBOR');
      return x;
    },
  );
}

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** SenML-JSON (110); opaque values as base64url (RFC 8428 §5). */
export function encodeSenmlJson(records: readonly ResourceRecord[]): Uint8Array {
  const raws = toRaw(records, b64url).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
  return new TextEncoder().encode(JSON.stringify(raws));
}

export function decodeSenmlJson(bytes: Uint8Array): ResourceRecord[] {
  let decoded: unknown;
  try {
    decoded = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Lwm2mFormatError(`SenML-JSON is not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(decoded)) throw new Lwm2mFormatError('SenML-JSON must be an array of records');
  return fromRaw(
    decoded.map((r, i) => {
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Lwm2mFormatError(`SenML-JSON record ${i} is not an object`);
      for (const k of Object.keys(r)) if (!JSON_LABELS.has(k) && k.endsWith('_')) throw new Lwm2mFormatError(`SenML-JSON record ${i}: must-understand label ${k}`);
      return r as RawRecord;
    }),
    (x) => {
      if (typeof x !== 'string' || !/^[A-Za-z0-9_-]*$/.test(x)) throw new Lwm2mFormatError('vd must be base64url in SenML-JSON');
      return new Uint8Array(Buffer.from(x, 'base64url'));
    },
  );
}
