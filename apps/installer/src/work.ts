/** The Phase 1 work the gateway hands the installer (A3 `work`), checked field by field. */
import { InstallerError } from './errors.ts';

export interface TrustedKeyJson {
  id: string;
  name: string;
  alg: string;
  publicKeyPem: string;
}

export interface Work {
  jobId: string;
  metal: { id: string; name: string; tipsId: string };
  glaze: { id: string; name: string; version: string; size: number; sha256: string };
  /** The Glaze's signed SUIT envelope, base64. */
  manifest: string;
  trustedKeys: TrustedKeyJson[];
  minSequence: number;
  vendorId: string | null;
  classId: string | null;
  glazePath: string;
  reportPath: string;
  enrollment: { secretId: string; secret: string; estUrl: string; masterUrl: string; caPem: string } | null;
}

function fail(field: string, what: string): never {
  throw new InstallerError('work_refused', `work.${field}: expected ${what}`);
}
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
function str(o: Record<string, unknown>, k: string, path: string): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0) fail(`${path}${k}`, 'a non-empty string');
  return v;
}
function nullableStr(o: Record<string, unknown>, k: string): string | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') fail(k, 'a string or null');
  return v;
}
function relPath(o: Record<string, unknown>, k: string): string {
  const v = str(o, k, '');
  if (!/^\/[A-Za-z0-9_./-]*$/.test(v) || v.includes('..')) fail(k, 'an absolute path on the gateway');
  return v;
}

export function parseWork(body: unknown): Work {
  if (!isObj(body)) fail('', 'a JSON object');
  const metal = body.metal;
  const glaze = body.glaze;
  if (!isObj(metal)) fail('metal', 'an object');
  if (!isObj(glaze)) fail('glaze', 'an object');
  const size = glaze.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) fail('glaze.size', 'a positive integer');
  const sha256 = str(glaze, 'sha256', 'glaze.');
  if (!/^[0-9a-f]{64}$/.test(sha256)) fail('glaze.sha256', '64 lower-case hex characters');
  const keys = body.trustedKeys;
  if (!Array.isArray(keys)) fail('trustedKeys', 'an array');
  const trustedKeys = keys.map((k, i) => {
    if (!isObj(k)) fail(`trustedKeys[${i}]`, 'an object');
    return { id: str(k, 'id', `trustedKeys[${i}].`), name: typeof k.name === 'string' ? k.name : '', alg: typeof k.alg === 'string' ? k.alg : '', publicKeyPem: str(k, 'publicKeyPem', `trustedKeys[${i}].`) };
  });
  const minSequence = body.minSequence ?? 0;
  if (typeof minSequence !== 'number' || !Number.isSafeInteger(minSequence) || minSequence < 0) fail('minSequence', 'a non-negative integer');
  const manifest = str(body, 'manifest', '');
  if (!/^[A-Za-z0-9+/=_-]+$/.test(manifest)) fail('manifest', 'a base64 SUIT envelope');
  let enrollment: Work['enrollment'] = null;
  const e = body.enrollment;
  if (e !== null && e !== undefined) {
    if (!isObj(e)) fail('enrollment', 'an object or null');
    enrollment = { secretId: str(e, 'secretId', 'enrollment.'), secret: str(e, 'secret', 'enrollment.'), estUrl: str(e, 'estUrl', 'enrollment.'), masterUrl: str(e, 'masterUrl', 'enrollment.'), caPem: str(e, 'caPem', 'enrollment.') };
  }
  return {
    jobId: str(body, 'jobId', ''),
    metal: { id: str(metal, 'id', 'metal.'), name: typeof metal.name === 'string' ? metal.name : '', tipsId: str(metal, 'tipsId', 'metal.') },
    glaze: { id: str(glaze, 'id', 'glaze.'), name: typeof glaze.name === 'string' ? glaze.name : '', version: typeof glaze.version === 'string' ? glaze.version : '', size, sha256 },
    manifest,
    trustedKeys,
    minSequence,
    vendorId: nullableStr(body, 'vendorId'),
    classId: nullableStr(body, 'classId'),
    glazePath: relPath(body, 'glazePath'),
    reportPath: relPath(body, 'reportPath'),
    enrollment,
  };
}
