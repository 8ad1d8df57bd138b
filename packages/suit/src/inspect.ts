/** A readable JSON view of an envelope, with the specification's names (for `tips suit inspect`). */
import { type CborValue, decodeCbor } from './cbor.ts';
import { COMMAND_NAMES, MEMBER_NAMES, PARAMETER_NAMES, SUIT_PARAMETER_IMAGE_DIGEST } from './constants.ts';
import { coseAlg, coseKid, decodeCoseSingle } from './cose.ts';
import { parseDigest, type SuitCommandSequence, type SuitEnvelope } from './manifest.ts';
import { uuidToString } from './uuid.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export function cborToJson(v: CborValue): Json {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return `h'${hex(v)}'`;
  if (Array.isArray(v)) return v.map(cborToJson);
  if (v instanceof Map) {
    const o: { [k: string]: Json } = {};
    for (const [k, x] of v) o[typeof k === 'string' || typeof k === 'number' ? String(k) : JSON.stringify(cborToJson(k))] = cborToJson(x);
    return o;
  }
  if (typeof v === 'object') return { tag: v.tag, value: cborToJson(v.value) };
  return v;
}

function paramJson(id: number, v: CborValue): Json {
  if ((id === 1 || id === 2) && v instanceof Uint8Array && v.length === 16) return uuidToString(v);
  if (id === SUIT_PARAMETER_IMAGE_DIGEST && v instanceof Uint8Array) {
    const d = parseDigest(decodeCbor(v), 'image-digest');
    return { 'algorithm-id': d.alg, 'digest-bytes': hex(d.bytes) };
  }
  return cborToJson(v);
}

function sequenceJson(seq: SuitCommandSequence): Json {
  return seq.commands.map((c) => {
    const name = COMMAND_NAMES[c.id] ?? `command ${c.id}`;
    const a = c.arg;
    let arg: Json;
    if (a.kind === 'policy') arg = a.policy;
    else if (a.kind === 'index') arg = a.index;
    else if (a.kind === 'parameters') arg = Object.fromEntries([...a.parameters].map(([k, v]) => [PARAMETER_NAMES[k] ?? String(k), paramJson(k, v)]));
    else if (a.kind === 'try-each') arg = [...a.options.map(sequenceJson), ...(a.otherwiseNil ? [null] : [])];
    else if (a.kind === 'sequence') arg = sequenceJson(a.sequence);
    else arg = cborToJson(a.value);
    return { [name]: arg };
  });
}

export function envelopeToJson(env: SuitEnvelope): Json {
  const m = env.manifest;
  const manifest: { [k: string]: Json } = {
    'manifest-version': m.version,
    'manifest-sequence-number': typeof m.sequenceNumber === 'bigint' ? m.sequenceNumber.toString() : m.sequenceNumber,
    common: {
      components: m.common.components.map((c) => c.map((p) => `h'${hex(p)}'`)),
      ...(m.common.dependencies ? { dependencies: cborToJson(m.common.dependencies) } : {}),
      ...(m.common.sharedSequence ? { 'shared-sequence': sequenceJson(m.common.sharedSequence) } : {}),
    },
  };
  if (m.referenceUri !== undefined) manifest['reference-uri'] = m.referenceUri;
  for (const [k, s] of m.sequences) manifest[MEMBER_NAMES[k] ?? String(k)] = sequenceJson(s);
  for (const [k, s] of m.severable) {
    const name = MEMBER_NAMES[k] ?? String(k);
    if (s.severed) manifest[name] = { severed: true, 'algorithm-id': s.digest.alg, 'digest-bytes': hex(s.digest.bytes), inEnvelope: env.severed.has(k) };
    else if (s.sequence) manifest[name] = sequenceJson(s.sequence);
    else manifest[name] = cborToJson(s.value ?? s.bytes);
  }
  const out: { [k: string]: Json } = { tagged: env.tagged };
  if (env.authentication) {
    out['authentication-wrapper'] = {
      digest: { 'algorithm-id': env.authentication.digest.alg, 'digest-bytes': hex(env.authentication.digest.bytes) },
      blocks: env.authentication.blocks.map((b) => {
        try {
          const c = decodeCoseSingle(b);
          const kid = coseKid(c);
          const o: { [k: string]: Json } = { type: c.type === 'sign1' ? 'COSE_Sign1' : 'COSE_Mac0', alg: coseAlg(c) };
          if (kid) o.kid = hex(kid);
          return o;
        } catch (e) {
          const o: { [k: string]: Json } = { error: (e as Error).message };
          return o;
        }
      }),
    };
  }
  out.manifest = manifest;
  if (env.integrated.size > 0) out['integrated-payloads'] = Object.fromEntries([...env.integrated].map(([k, v]) => [k, { size: v.length }]));
  return out;
}
