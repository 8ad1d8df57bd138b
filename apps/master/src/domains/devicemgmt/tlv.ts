import { checkId, isObjectLink, type Lwm2mPath, Lwm2mFormatError, type ResourceRecord, type ResourceType, type ResourceValue } from './values.ts';

/**
 * OMA LwM2M TLV (content format 11542; Core 1.1 §7.4.3). Each entry: a type byte
 * (bits 7–6 identifier kind, bit 5 16-bit identifier, bits 4–3 length-field size, bits 2–0 a short
 * length), the identifier, the length, the value. Pure functions over bytes.
 */
export const TLV_OBJECT_INSTANCE = 0b00;
export const TLV_RESOURCE_INSTANCE = 0b01;
export const TLV_MULTIPLE_RESOURCE = 0b10;
export const TLV_RESOURCE = 0b11;

export type TlvKind = typeof TLV_OBJECT_INSTANCE | typeof TLV_RESOURCE_INSTANCE | typeof TLV_MULTIPLE_RESOURCE | typeof TLV_RESOURCE;

export interface TlvEntry {
  kind: TlvKind;
  id: number;
  /** The value bytes (resource, resource instance) or the nested entries (object instance, multiple resource). */
  value: Uint8Array | TlvEntry[];
}

const MAX_LENGTH = 0xffffff;

/** Decodes a TLV byte string into entries; nested entries for object instances and multiple resources. */
export function decodeTlv(bytes: Uint8Array): TlvEntry[] {
  return decodeLevel(bytes, 0);
}

function decodeLevel(bytes: Uint8Array, depth: number): TlvEntry[] {
  const out: TlvEntry[] = [];
  let i = 0;
  while (i < bytes.length) {
    const type = bytes[i++]!;
    const kind = (type >> 6) as TlvKind;
    const idLen = type & 0x20 ? 2 : 1;
    const lenType = (type >> 3) & 0x03;
    if (i + idLen + lenType > bytes.length) throw new Lwm2mFormatError(`TLV header at byte ${i - 1} is cut short`);
    const id = idLen === 2 ? (bytes[i]! << 8) | bytes[i + 1]! : bytes[i]!;
    i += idLen;
    let length = type & 0x07;
    if (lenType > 0) {
      if (length !== 0) throw new Lwm2mFormatError(`TLV entry ${id}: bits 2-0 must be 0 when a length field follows`);
      length = 0;
      for (let k = 0; k < lenType; k++) length = (length << 8) | bytes[i + k]!;
      i += lenType;
    }
    if (i + length > bytes.length) throw new Lwm2mFormatError(`TLV entry ${id} says ${length} bytes but ${bytes.length - i} remain`);
    const raw = bytes.subarray(i, i + length);
    i += length;
    if (kind === TLV_OBJECT_INSTANCE || kind === TLV_MULTIPLE_RESOURCE) {
      if (depth >= 2) throw new Lwm2mFormatError(`TLV entry ${id} nests too deep`);
      const inner = decodeLevel(raw, depth + 1);
      const expected = kind === TLV_OBJECT_INSTANCE ? [TLV_RESOURCE, TLV_MULTIPLE_RESOURCE] : [TLV_RESOURCE_INSTANCE];
      for (const e of inner) {
        if (!expected.includes(e.kind)) throw new Lwm2mFormatError(`TLV entry ${id}: a ${kindName(e.kind)} cannot sit inside a ${kindName(kind)}`);
      }
      out.push({ kind, id, value: inner });
    } else {
      out.push({ kind, id, value: raw.slice() });
    }
  }
  return out;
}

const kindName = (k: TlvKind) => ['object instance', 'resource instance', 'multiple resource', 'resource'][k];

/** Encodes entries back to bytes, always with the shortest identifier and length fields. */
export function encodeTlv(entries: readonly TlvEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    checkId(e.id, 'TLV identifier');
    const value = e.value instanceof Uint8Array ? e.value : encodeTlv(e.value);
    if (value.length > MAX_LENGTH) throw new Lwm2mFormatError(`TLV value of ${value.length} bytes is over the 24-bit length`);
    const idLen = e.id > 0xff ? 2 : 1;
    const lenType = value.length < 8 ? 0 : value.length <= 0xff ? 1 : value.length <= 0xffff ? 2 : 3;
    const head = new Uint8Array(1 + idLen + lenType);
    head[0] = (e.kind << 6) | (idLen === 2 ? 0x20 : 0) | (lenType << 3) | (lenType === 0 ? value.length : 0);
    if (idLen === 2) {
      head[1] = e.id >> 8;
      head[2] = e.id & 0xff;
    } else head[1] = e.id;
    for (let k = 0; k < lenType; k++) head[1 + idLen + k] = (value.length >> (8 * (lenType - 1 - k))) & 0xff;
    parts.push(head, value);
  }
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---- values ----

/** Encodes one value as TLV value bytes (integers in the fewest of 1, 2, 4, 8 bytes; floats as 8 bytes unless exact in 4). */
export function encodeTlvValue(v: ResourceValue): Uint8Array {
  if (typeof v === 'string') return new TextEncoder().encode(v);
  if (typeof v === 'boolean') return Uint8Array.of(v ? 1 : 0);
  if (v instanceof Uint8Array) return v;
  if (isObjectLink(v)) return Uint8Array.of(v.objectId >> 8, v.objectId & 0xff, v.instanceId >> 8, v.instanceId & 0xff);
  if (typeof v === 'bigint' || Number.isInteger(v)) {
    const n = BigInt(v);
    if (n < -(1n << 63n) || n >= 1n << 63n) throw new Lwm2mFormatError(`integer ${n} does not fit 64 bits`);
    for (const size of [1, 2, 4, 8]) {
      const bound = 1n << BigInt(size * 8 - 1);
      if (n >= -bound && n < bound) {
        const out = new Uint8Array(size);
        let x = BigInt.asUintN(size * 8, n);
        for (let k = size - 1; k >= 0; k--) {
          out[k] = Number(x & 0xffn);
          x >>= 8n;
        }
        return out;
      }
    }
  }
  const f = v as number;
  if (Math.fround(f) === f || Number.isNaN(f)) {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setFloat32(0, f);
    return out;
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, f);
  return out;
}

/** Reads TLV value bytes as the resource's type says. */
export function decodeTlvValue(bytes: Uint8Array, type: ResourceType): ResourceValue {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 'string':
    case 'corelnk':
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        throw new Lwm2mFormatError('a string resource is not valid UTF-8');
      }
    case 'integer':
    case 'time': {
      if (![1, 2, 4, 8].includes(bytes.length)) throw new Lwm2mFormatError(`an integer takes 1, 2, 4 or 8 bytes, not ${bytes.length}`);
      let n = 0n;
      for (const b of bytes) n = (n << 8n) | BigInt(b);
      const s = BigInt.asIntN(bytes.length * 8, n);
      return Number.isSafeInteger(Number(s)) ? Number(s) : s;
    }
    case 'unsigned': {
      if (![1, 2, 4, 8].includes(bytes.length)) throw new Lwm2mFormatError(`an unsigned integer takes 1, 2, 4 or 8 bytes, not ${bytes.length}`);
      let n = 0n;
      for (const b of bytes) n = (n << 8n) | BigInt(b);
      return Number.isSafeInteger(Number(n)) ? Number(n) : n;
    }
    case 'float':
      if (bytes.length === 4) return dv.getFloat32(0);
      if (bytes.length === 8) return dv.getFloat64(0);
      throw new Lwm2mFormatError(`a float takes 4 or 8 bytes, not ${bytes.length}`);
    case 'boolean':
      if (bytes.length !== 1 || bytes[0]! > 1) throw new Lwm2mFormatError('a boolean is one byte, 0 or 1');
      return bytes[0] === 1;
    case 'objlnk':
      if (bytes.length !== 4) throw new Lwm2mFormatError(`an object link takes 4 bytes, not ${bytes.length}`);
      return { objectId: dv.getUint16(0), instanceId: dv.getUint16(2) };
    case 'none':
      if (bytes.length !== 0) throw new Lwm2mFormatError('an executable resource carries no value');
      return new Uint8Array(0);
    default:
      return bytes.slice();
  }
}

/** Looks up a resource's type: the object model, with `opaque` for resources it does not know. */
export type TypeOf = (objectId: number, resourceId: number) => ResourceType;

/**
 * Turns TLV entries received for `base` (the request's path: [obj], [obj, inst] or [obj, inst, res])
 * into records. A read of /obj answers object-instance entries; of /obj/inst, resources; of
 * /obj/inst/res, the resource (or its instances).
 */
export function tlvToRecords(bytes: Uint8Array, base: Lwm2mPath, typeOf: TypeOf): ResourceRecord[] {
  const entries = decodeTlv(bytes);
  if (base.length < 1 || base.length > 3) throw new Lwm2mFormatError(`a TLV body belongs to /obj, /obj/inst or /obj/inst/res, not ${base.length} segments`);
  const obj = base[0]!;
  const out: ResourceRecord[] = [];
  const resource = (inst: number, e: TlvEntry) => {
    const type = typeOf(obj, e.id);
    if (e.kind === TLV_RESOURCE) out.push({ path: [obj, inst, e.id], value: decodeTlvValue(e.value as Uint8Array, type) });
    else if (e.kind === TLV_MULTIPLE_RESOURCE) {
      for (const ri of e.value as TlvEntry[]) out.push({ path: [obj, inst, e.id, ri.id], value: decodeTlvValue(ri.value as Uint8Array, type) });
    } else throw new Lwm2mFormatError(`a ${kindName(e.kind)} cannot stand where a resource is expected`);
  };
  if (base.length === 1) {
    for (const e of entries) {
      if (e.kind !== TLV_OBJECT_INSTANCE) throw new Lwm2mFormatError(`under /${obj} every TLV entry is an object instance, not a ${kindName(e.kind)}`);
      for (const r of e.value as TlvEntry[]) resource(e.id, r);
    }
  } else if (base.length === 2) {
    for (const e of entries) {
      if (e.kind === TLV_OBJECT_INSTANCE) {
        // Some clients wrap the instance even for /obj/inst; accept it only for that instance.
        if (e.id !== base[1]) throw new Lwm2mFormatError(`TLV object instance ${e.id} answered for /${obj}/${base[1]}`);
        for (const r of e.value as TlvEntry[]) resource(e.id, r);
      } else resource(base[1]!, e);
    }
  } else {
    for (const e of entries) {
      if (e.kind === TLV_RESOURCE_INSTANCE) {
        out.push({ path: [obj, base[1]!, base[2]!, e.id], value: decodeTlvValue(e.value as Uint8Array, typeOf(obj, base[2]!)) });
        continue;
      }
      if (e.id !== base[2]) throw new Lwm2mFormatError(`TLV resource ${e.id} answered for /${base.join('/')}`);
      resource(base[1]!, e);
    }
  }
  return out;
}

/**
 * Encodes records as TLV relative to `base` ([obj], [obj, inst] or [obj, inst, res]): object
 * instances for /obj, resources for /obj/inst, the one resource for /obj/inst/res. Records with a
 * fourth segment become a multiple resource.
 */
export function recordsToTlv(records: readonly ResourceRecord[], base: Lwm2mPath): Uint8Array {
  if (base.length < 1 || base.length > 3) throw new Lwm2mFormatError(`a TLV body belongs to /obj, /obj/inst or /obj/inst/res, not ${base.length} segments`);
  for (const r of records) {
    if (r.path.length < 3 || r.path.length > 4) throw new Lwm2mFormatError(`record ${r.path.join('/')} is not a resource path`);
    for (let k = 0; k < base.length; k++) if (r.path[k] !== base[k]) throw new Lwm2mFormatError(`record /${r.path.join('/')} is outside /${base.join('/')}`);
  }
  const resourcesOf = (recs: readonly ResourceRecord[]): TlvEntry[] => {
    const byRes = new Map<number, ResourceRecord[]>();
    for (const r of recs) byRes.set(r.path[2]!, [...(byRes.get(r.path[2]!) ?? []), r]);
    const out: TlvEntry[] = [];
    for (const [res, rs] of byRes) {
      const multi = rs.some((r) => r.path.length === 4);
      if (multi && rs.some((r) => r.path.length === 3)) throw new Lwm2mFormatError(`resource ${res} is given both as single and as multiple`);
      if (!multi && rs.length > 1) throw new Lwm2mFormatError(`resource ${res} is given twice`);
      out.push(
        multi
          ? { kind: TLV_MULTIPLE_RESOURCE, id: res, value: rs.map((r) => ({ kind: TLV_RESOURCE_INSTANCE, id: checkId(r.path[3]!, 'resource instance'), value: encodeTlvValue(r.value) })) }
          : { kind: TLV_RESOURCE, id: checkId(res, 'resource'), value: encodeTlvValue(rs[0]!.value) },
      );
    }
    return out;
  };
  if (base.length === 1) {
    const byInst = new Map<number, ResourceRecord[]>();
    for (const r of records) byInst.set(r.path[1]!, [...(byInst.get(r.path[1]!) ?? []), r]);
    return encodeTlv([...byInst].map(([inst, rs]) => ({ kind: TLV_OBJECT_INSTANCE, id: checkId(inst, 'object instance'), value: resourcesOf(rs) })));
  }
  return encodeTlv(resourcesOf(records));
}
