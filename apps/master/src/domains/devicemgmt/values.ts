/**
 * The LwM2M data model shared by every content format: a flat list of resource values, each named by
 * its path (/object/instance/resource[/resource-instance]). TLV, SenML-CBOR and SenML-JSON decode to it
 * and encode from it (OMA-TS-LightweightM2M_Core-V1_1 §7.4).
 */

/** Object link: the value of an Objlnk resource (two 16-bit IDs). */
export interface ObjectLink {
  objectId: number;
  instanceId: number;
}

export type ResourceValue = string | number | bigint | boolean | Uint8Array | ObjectLink;

/** Path as numbers: [object], [object, instance], [object, instance, resource] or with a resource instance. */
export type Lwm2mPath = readonly number[];

export interface ResourceRecord {
  /** [object, instance, resource] or [object, instance, resource, resourceInstance]. */
  path: Lwm2mPath;
  value: ResourceValue;
}

/** Resource data types of the object model (§C): they decide how TLV bytes and SenML values read. */
export type ResourceType = 'string' | 'integer' | 'unsigned' | 'float' | 'boolean' | 'opaque' | 'time' | 'objlnk' | 'corelnk' | 'none';

export class Lwm2mFormatError extends Error {
  readonly code = 'lwm2m_malformed' as const;
}

const MAX_ID = 65535;

/** Parses "/3/0/1" (or "3/0/1") into [3, 0, 1]; the root "/" is []. Refuses anything else. */
export function parsePath(text: string): number[] {
  const t = text.startsWith('/') ? text.slice(1) : text;
  if (t === '' || t === '/') return [];
  const parts = t.endsWith('/') ? t.slice(0, -1).split('/') : t.split('/');
  if (parts.length > 4) throw new Lwm2mFormatError(`path ${JSON.stringify(text)} has more than 4 segments`);
  return parts.map((p) => {
    if (!/^(0|[1-9][0-9]{0,4})$/.test(p) || Number(p) > MAX_ID) throw new Lwm2mFormatError(`path segment ${JSON.stringify(p)} of ${JSON.stringify(text)} is not an ID 0..65535`);
    return Number(p);
  });
}

export const formatPath = (path: Lwm2mPath): string => `/${path.join('/')}`;

export function checkId(id: number, what: string): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new Lwm2mFormatError(`${what} ${id} is not an ID 0..65535`);
  return id;
}

export const isObjectLink = (v: ResourceValue): v is ObjectLink => typeof v === 'object' && !(v instanceof Uint8Array) && 'objectId' in v;

/** JSON-friendly rendering of a value for the owner API and the CLI. */
export function valueToJson(v: ResourceValue): string | number | boolean | { base64: string } | { objlnk: string } {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return { base64: Buffer.from(v).toString('base64') };
  if (isObjectLink(v)) return { objlnk: `${v.objectId}:${v.instanceId}` };
  return v;
}
