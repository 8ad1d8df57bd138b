/**
 * Typed codec for SUIT_Envelope, SUIT_Manifest, SUIT_Common and command sequences. Decoding
 * checks every member's type and rejects unknown keys (a processor may not skip what it does not
 * understand). Every bstr-wrapped member keeps its exact bytes, and encoding rebuilds the same
 * bytes from the typed form, so decode → encode is the identity on strictly encoded input.
 */
import { type CborMap, CborTag, type CborValue, decodeCbor, encodeCbor, typeName } from './cbor.ts';
import {
  DIGEST_ALGORITHMS,
  MEMBER_NAMES,
  REP_POLICY_COMMANDS,
  SEQUENCE_MEMBERS,
  SEVERABLE_MEMBERS,
  SUIT_AUTHENTICATION_WRAPPER,
  SUIT_COMMON,
  SUIT_COMPONENTS,
  SUIT_CURRENT_VERSION,
  SUIT_DELEGATION,
  SUIT_DEPENDENCIES,
  SUIT_DIRECTIVE_OVERRIDE_PARAMETERS,
  SUIT_DIRECTIVE_RUN_SEQUENCE,
  SUIT_DIRECTIVE_SET_COMPONENT_INDEX,
  SUIT_DIRECTIVE_SET_PARAMETERS,
  SUIT_DIRECTIVE_TRY_EACH,
  SUIT_ENVELOPE_TAG,
  SUIT_MANIFEST,
  SUIT_MANIFEST_COMPONENT_ID,
  SUIT_MANIFEST_SEQUENCE_NUMBER,
  SUIT_MANIFEST_TAG,
  SUIT_MANIFEST_VERSION,
  SUIT_PARAMETER_COMPONENT_SLOT,
  SUIT_PARAMETER_CONTENT,
  SUIT_PARAMETER_IMAGE_DIGEST,
  SUIT_PARAMETER_IMAGE_SIZE,
  SUIT_PARAMETER_SOFT_FAILURE,
  SUIT_PARAMETER_SOURCE_COMPONENT,
  SUIT_PARAMETER_STRICT_ORDER,
  SUIT_PARAMETER_URI,
  SUIT_REFERENCE_URI,
  SUIT_SHARED_SEQUENCE,
  SUIT_TEXT,
} from './constants.ts';
import { SuitError, type SuitErrorCode } from './errors.ts';

export interface SuitDigest {
  alg: number;
  bytes: Uint8Array;
}

/** A bstr-wrapped command sequence: its exact bytes and its commands. */
export interface SuitCommandSequence {
  bytes: Uint8Array;
  commands: SuitCommand[];
}

export type SuitCommandArg =
  | { kind: 'policy'; policy: number }
  | { kind: 'index'; index: number | true | number[] }
  | { kind: 'parameters'; parameters: SuitParameters }
  | { kind: 'try-each'; options: SuitCommandSequence[]; otherwiseNil: boolean }
  | { kind: 'sequence'; sequence: SuitCommandSequence }
  | { kind: 'raw'; value: CborValue };

export interface SuitCommand {
  id: number;
  arg: SuitCommandArg;
}

/** Parameter id → value as decoded. image-digest (3) stays the bstr of a checked SUIT_Digest. */
export type SuitParameters = Map<number, CborValue>;

export type ComponentId = Uint8Array[];

export interface SuitCommon {
  bytes: Uint8Array;
  dependencies?: CborMap;
  components: ComponentId[];
  sharedSequence?: SuitCommandSequence;
}

/** A severable member: present in the manifest, or severed (only its digest is in the manifest). */
export type SeverableMember =
  | { severed: false; bytes: Uint8Array; sequence?: SuitCommandSequence; value?: CborValue }
  | { severed: true; digest: SuitDigest };

export interface SuitManifest {
  version: 1;
  sequenceNumber: number | bigint;
  common: SuitCommon;
  referenceUri?: string;
  manifestComponentId?: ComponentId;
  /** current-version (update management), kept as its bstr. */
  currentVersion?: Uint8Array;
  /** Unseverable sequences: validate 7, load 8, invoke 9, uninstall 24. */
  sequences: Map<number, SuitCommandSequence>;
  /** Severable members by key: coswid 14, dependency-resolution 15, payload-fetch 16, candidate-verification 18, install 20, text 23. */
  severable: Map<number, SeverableMember>;
}

export interface SuitAuthentication {
  /** Exact bytes of the bstr-wrapped SUIT_Digest (the detached COSE payload). */
  digestBytes: Uint8Array;
  digest: SuitDigest;
  /** Exact bytes of each bstr-wrapped COSE structure. */
  blocks: Uint8Array[];
}

export interface SuitEnvelope {
  tagged: boolean;
  delegation?: CborValue;
  authentication?: SuitAuthentication;
  manifestBytes: Uint8Array;
  /** The manifest bstr held a tag-1070 SUIT_Manifest_Tagged. */
  manifestTagged: boolean;
  manifest: SuitManifest;
  /** Severed members carried in the envelope: key → exact bytes of the bstr content. */
  severed: Map<number, Uint8Array>;
  /** Integrated payloads: tstr key → bytes. */
  integrated: Map<string, Uint8Array>;
}

function fail(code: SuitErrorCode, message: string): never {
  throw new SuitError(code, message);
}

/** A field name for error messages; hot paths pass a thunk so the string is built only on error. */
type Field = string | (() => string);
function fieldName(f: Field): string {
  return typeof f === 'string' ? f : f();
}
function commandField(parent: Field, index: number, id: number): Field {
  return () => `${fieldName(parent)}[${index}] command ${id}`;
}
/** A lazily built sub-field name (an anonymous closure: no per-call naming helper under tsx). */
function subField(parent: Field, sep: string, key: number): Field {
  return () => `${fieldName(parent)}${sep}${key}`;
}

function expectType(cond: boolean, field: Field, expected: string, v: CborValue): void {
  if (!cond) fail('suit_bad_type', `${fieldName(field)}: expected ${expected}, came ${typeName(v)}`);
}

function isUint(v: CborValue): v is number | bigint {
  return (typeof v === 'number' && v >= 0) || (typeof v === 'bigint' && v >= 0n);
}

function asMap(v: CborValue, field: Field): CborMap {
  expectType(v instanceof Map, field, 'a map', v);
  return v as CborMap;
}

function asBytes(v: CborValue, field: Field): Uint8Array {
  expectType(v instanceof Uint8Array, field, 'a byte string', v);
  return v as Uint8Array;
}

function embedded(bytes: Uint8Array): CborValue {
  return decodeCbor(bytes);
}

export function parseDigest(v: CborValue, field: Field): SuitDigest {
  expectType(Array.isArray(v), field, 'a SUIT_Digest array', v);
  const a = v as CborValue[];
  if (a.length < 2 || a.length > 3) fail('suit_bad_type', `${fieldName(field)}: expected [alg, bytes], came ${a.length} elements`);
  expectType(typeof a[0] === 'number', () => `${fieldName(field)}.algorithm-id`, 'an integer', a[0]!);
  const bytes = asBytes(a[1]!, () => `${fieldName(field)}.digest-bytes`);
  return { alg: a[0] as number, bytes };
}

export function encodeDigest(d: SuitDigest): CborValue {
  return [d.alg, d.bytes];
}

export function isKnownDigestAlg(alg: number): boolean {
  return DIGEST_ALGORITHMS.has(alg);
}

function parseComponentId(v: CborValue, field: Field): ComponentId {
  expectType(Array.isArray(v), field, 'a component identifier array', v);
  const a = v as CborValue[];
  for (let i = 0; i < a.length; i++) asBytes(a[i]!, () => `${fieldName(field)}[${i}]`);
  return a as Uint8Array[];
}

function parseParameters(v: CborValue, field: Field): SuitParameters {
  const m = asMap(v, field);
  for (const [k, val] of m) {
    if (typeof k !== 'number') fail('suit_bad_type', `${fieldName(field)}: expected integer parameter labels, came ${typeName(k)}`);
    const f = subField(field, '.parameter ', k);
    switch (k) {
      case 1:
      case 2:
      case 24:
        asBytes(val, f);
        break;
      case SUIT_PARAMETER_IMAGE_DIGEST:
        parseDigest(embedded(asBytes(val, f)), f);
        break;
      case SUIT_PARAMETER_COMPONENT_SLOT:
      case SUIT_PARAMETER_IMAGE_SIZE:
      case SUIT_PARAMETER_SOURCE_COMPONENT:
        expectType(isUint(val), f, 'an unsigned integer', val);
        break;
      case SUIT_PARAMETER_STRICT_ORDER:
      case SUIT_PARAMETER_SOFT_FAILURE:
        expectType(typeof val === 'boolean', f, 'a boolean', val);
        break;
      case SUIT_PARAMETER_CONTENT:
        asBytes(val, f);
        break;
      case SUIT_PARAMETER_URI:
        expectType(typeof val === 'string', f, 'a text string', val);
        break;
    }
  }
  // Every label is an integer now: the decoded map is the parameter map (no copy).
  return m as SuitParameters;
}

export function parseSequence(bytes: Uint8Array, field: Field, depth = 0): SuitCommandSequence {
  if (depth > 8) fail('suit_bad_value', `${fieldName(field)}: expected try-each/run-sequence nesting of at most 8, came deeper`);
  const v = embedded(bytes);
  expectType(Array.isArray(v), field, 'a command sequence array', v);
  const a = v as CborValue[];
  if (a.length % 2 !== 0) fail('suit_bad_type', `${fieldName(field)}: expected command id / argument pairs, came an odd count ${a.length}`);
  const commands: SuitCommand[] = [];
  for (let i = 0; i < a.length; i += 2) {
    const id = a[i]!;
    const arg = a[i + 1]!;
    if (typeof id !== 'number') fail('suit_bad_type', `${fieldName(field)}[${i}]: expected an integer command id, came ${typeName(id)}`);
    const f = commandField(field, i, id);
    commands.push({ id, arg: parseCommandArg(id, arg, f, depth) });
  }
  return { bytes, commands };
}

function parseCommandArg(id: number, arg: CborValue, f: Field, depth: number): SuitCommandArg {
  if (REP_POLICY_COMMANDS.has(id)) {
    expectType(typeof arg === 'number' && arg >= 0, f, 'a reporting policy (uint)', arg);
    return { kind: 'policy', policy: arg as number };
  }
  switch (id) {
    case SUIT_DIRECTIVE_SET_COMPONENT_INDEX: {
      if (arg === true || (typeof arg === 'number' && arg >= 0)) return { kind: 'index', index: arg };
      expectType(Array.isArray(arg) && arg.length > 0 && arg.every((x) => typeof x === 'number' && x >= 0), f, 'a component index, true or an index array', arg);
      return { kind: 'index', index: arg as number[] };
    }
    case SUIT_DIRECTIVE_SET_PARAMETERS:
    case SUIT_DIRECTIVE_OVERRIDE_PARAMETERS:
      return { kind: 'parameters', parameters: parseParameters(arg, f) };
    case SUIT_DIRECTIVE_TRY_EACH: {
      expectType(Array.isArray(arg), f, 'an array of sequences', arg);
      const a = arg as CborValue[];
      const otherwiseNil = a.length > 0 && a[a.length - 1] === null;
      const seqs = otherwiseNil ? a.slice(0, -1) : a;
      if (seqs.length === 0) fail('suit_bad_type', `${fieldName(f)}: expected at least one sequence in try-each, came none`);
      return { kind: 'try-each', otherwiseNil, options: seqs.map((s, i) => parseSequence(asBytes(s, () => `${fieldName(f)}[${i}]`), () => `${fieldName(f)}[${i}]`, depth + 1)) };
    }
    case SUIT_DIRECTIVE_RUN_SEQUENCE:
      return { kind: 'sequence', sequence: parseSequence(asBytes(arg, f), f, depth + 1) };
    default:
      return { kind: 'raw', value: arg };
  }
}

function commandArgValue(arg: SuitCommandArg): CborValue {
  switch (arg.kind) {
    case 'policy':
      return arg.policy;
    case 'index':
      return arg.index;
    case 'parameters':
      return arg.parameters;
    case 'try-each': {
      const out: CborValue[] = arg.options.map(encodeSequence);
      if (arg.otherwiseNil) out.push(null);
      return out;
    }
    case 'sequence':
      return encodeSequence(arg.sequence);
    case 'raw':
      return arg.value;
  }
}

/** The content bytes of a sequence, rebuilt from its commands. */
export function encodeSequence(seq: SuitCommandSequence | SuitCommand[]): Uint8Array {
  const commands = Array.isArray(seq) ? seq : seq.commands;
  const out: CborValue[] = [];
  for (const c of commands) out.push(c.id, commandArgValue(c.arg));
  return encodeCbor(out);
}

export function sequenceFrom(commands: SuitCommand[]): SuitCommandSequence {
  return { bytes: encodeSequence(commands), commands };
}

function parseCommon(bytes: Uint8Array): SuitCommon {
  const m = asMap(embedded(bytes), 'common');
  const out: SuitCommon = { bytes, components: [] };
  let sawComponents = false;
  for (const [k, v] of m) {
    switch (k) {
      case SUIT_DEPENDENCIES:
        out.dependencies = asMap(v, 'common.dependencies');
        break;
      case SUIT_COMPONENTS: {
        expectType(Array.isArray(v) && v.length > 0, 'common.components', 'a non-empty array', v);
        out.components = (v as CborValue[]).map((c, i) => parseComponentId(c, () => `common.components[${i}]`));
        sawComponents = true;
        break;
      }
      case SUIT_SHARED_SEQUENCE:
        out.sharedSequence = parseSequence(asBytes(v, 'common.shared-sequence'), 'common.shared-sequence');
        break;
      default:
        fail('suit_unknown_critical_key', `common: expected keys 1, 2 or 4, came ${String(k)}`);
    }
  }
  if (!sawComponents) fail('suit_missing_member', 'common: expected components (2), came none');
  return out;
}

function encodeCommon(c: SuitCommon): Uint8Array {
  const m: CborMap = new Map();
  if (c.dependencies) m.set(SUIT_DEPENDENCIES, c.dependencies);
  m.set(SUIT_COMPONENTS, c.components);
  if (c.sharedSequence) m.set(SUIT_SHARED_SEQUENCE, encodeSequence(c.sharedSequence));
  return encodeCbor(m);
}

const KNOWN_MANIFEST_KEYS = new Set<number>([1, 2, 3, 4, 5, 6, ...SEQUENCE_MEMBERS, ...SEVERABLE_MEMBERS]);

function parseSeverableContent(key: number, bytes: Uint8Array, field: string): SeverableMember {
  if (SEQUENCE_MEMBERS.has(key)) return { severed: false, bytes, sequence: parseSequence(bytes, field) };
  const value = embedded(bytes);
  if (key === SUIT_TEXT) asMap(value, field);
  return { severed: false, bytes, value };
}

/** Parses a severed member's bytes once the envelope supplies them (after its digest matched). */
export function parseSeveredMember(key: number, bytes: Uint8Array): SeverableMember {
  return parseSeverableContent(key, bytes, MEMBER_NAMES[key] ?? `member ${key}`);
}

export function decodeManifest(bytes: Uint8Array): { manifest: SuitManifest; tagged: boolean } {
  let v = embedded(bytes);
  let tagged = false;
  if (v instanceof CborTag) {
    if (v.tag !== SUIT_MANIFEST_TAG) fail('suit_bad_tag', `manifest: expected tag 1070 or none, came tag ${v.tag}`);
    tagged = true;
    v = v.value;
  }
  const m = asMap(v, 'manifest');
  const sequences = new Map<number, SuitCommandSequence>();
  const severable = new Map<number, SeverableMember>();
  let version: CborValue | undefined;
  let seq: CborValue | undefined;
  let common: SuitCommon | undefined;
  const out: Partial<SuitManifest> = {};
  for (const [k, val] of m) {
    if (typeof k !== 'number' || !KNOWN_MANIFEST_KEYS.has(k)) {
      fail('suit_unknown_critical_key', `manifest: expected a known member key, came ${typeof k === 'number' ? k : typeName(k)}`);
    }
    const name = MEMBER_NAMES[k] ?? String(k);
    if (k === SUIT_MANIFEST_VERSION) version = val;
    else if (k === SUIT_MANIFEST_SEQUENCE_NUMBER) seq = val;
    else if (k === SUIT_COMMON) common = parseCommon(asBytes(val, 'common'));
    else if (k === SUIT_REFERENCE_URI) {
      expectType(typeof val === 'string', name, 'a text string', val);
      out.referenceUri = val as string;
    } else if (k === SUIT_MANIFEST_COMPONENT_ID) out.manifestComponentId = parseComponentId(val, name);
    else if (k === SUIT_CURRENT_VERSION) out.currentVersion = asBytes(val, name);
    else if (SEVERABLE_MEMBERS.has(k)) {
      if (Array.isArray(val)) severable.set(k, { severed: true, digest: parseDigest(val, name) });
      else severable.set(k, parseSeverableContent(k, asBytes(val, name), name));
    } else sequences.set(k, parseSequence(asBytes(val, name), name));
  }
  if (version === undefined) fail('suit_missing_member', 'manifest: expected manifest-version (1), came none');
  if (version !== 1) fail('suit_unsupported_version', `manifest: expected manifest-version 1, came ${typeof version === 'number' ? version : typeName(version)}`);
  if (seq === undefined) fail('suit_missing_member', 'manifest: expected manifest-sequence-number (2), came none');
  expectType(isUint(seq), 'manifest-sequence-number', 'an unsigned integer', seq);
  if (!common) fail('suit_missing_member', 'manifest: expected common (3), came none');
  // Built without object spread: spreading is several microseconds on this hot path.
  const manifest: SuitManifest = { version: 1, sequenceNumber: seq as number | bigint, common, sequences, severable };
  if (out.referenceUri !== undefined) manifest.referenceUri = out.referenceUri;
  if (out.manifestComponentId) manifest.manifestComponentId = out.manifestComponentId;
  if (out.currentVersion) manifest.currentVersion = out.currentVersion;
  return { manifest, tagged };
}

export function encodeManifest(m: SuitManifest, tagged = false): Uint8Array {
  const entries: [number, CborValue][] = [
    [SUIT_MANIFEST_VERSION, m.version],
    [SUIT_MANIFEST_SEQUENCE_NUMBER, m.sequenceNumber],
    [SUIT_COMMON, encodeCommon(m.common)],
  ];
  if (m.referenceUri !== undefined) entries.push([SUIT_REFERENCE_URI, m.referenceUri]);
  if (m.manifestComponentId) entries.push([SUIT_MANIFEST_COMPONENT_ID, m.manifestComponentId]);
  if (m.currentVersion) entries.push([SUIT_CURRENT_VERSION, m.currentVersion]);
  for (const [k, s] of m.sequences) entries.push([k, encodeSequence(s)]);
  for (const [k, s] of m.severable) {
    if (s.severed) entries.push([k, encodeDigest(s.digest)]);
    else if (s.sequence) entries.push([k, encodeSequence(s.sequence)]);
    else entries.push([k, s.value !== undefined ? encodeCbor(s.value) : s.bytes]);
  }
  entries.sort((a, b) => a[0] - b[0]);
  const map: CborMap = new Map(entries);
  return encodeCbor(tagged ? new CborTag(SUIT_MANIFEST_TAG, map) : map);
}

function parseAuthentication(bytes: Uint8Array): SuitAuthentication {
  const v = embedded(bytes);
  expectType(Array.isArray(v) && v.length >= 1, 'authentication-wrapper', 'an array [digest, * COSE]', v);
  const a = v as CborValue[];
  const digestBytes = asBytes(a[0]!, 'authentication-wrapper.digest');
  const digest = parseDigest(embedded(digestBytes), 'authentication-wrapper.digest');
  const blocks = a.slice(1).map((b, i) => asBytes(b, `authentication-wrapper[${i + 1}]`));
  return { digestBytes, digest, blocks };
}

/** Strictly decodes a SUIT_Envelope (tag 107 or untagged). Throws SuitError. */
export function decodeEnvelope(bytes: Uint8Array): SuitEnvelope {
  let v = decodeCbor(bytes);
  let tagged = false;
  if (v instanceof CborTag) {
    if (v.tag !== SUIT_ENVELOPE_TAG) fail('suit_bad_tag', `envelope: expected tag 107 or none, came tag ${v.tag}`);
    tagged = true;
    v = v.value;
  }
  const m = asMap(v, 'envelope');
  let authentication: SuitAuthentication | undefined;
  let manifestBytes: Uint8Array | undefined;
  let delegation: CborValue | undefined;
  const severed = new Map<number, Uint8Array>();
  const integrated = new Map<string, Uint8Array>();
  for (const [k, val] of m) {
    if (typeof k === 'string') integrated.set(k, asBytes(val, `integrated payload "${k}"`));
    else if (k === SUIT_AUTHENTICATION_WRAPPER) authentication = parseAuthentication(asBytes(val, 'authentication-wrapper'));
    else if (k === SUIT_MANIFEST) manifestBytes = asBytes(val, 'manifest');
    else if (k === SUIT_DELEGATION) {
      asBytes(val, 'delegation');
      delegation = val;
    } else if (typeof k === 'number' && SEVERABLE_MEMBERS.has(k)) severed.set(k, asBytes(val, MEMBER_NAMES[k] ?? String(k)));
    else fail('suit_unknown_critical_key', `envelope: expected keys 1, 2, 3, a severable member or a tstr payload name, came ${typeof k === 'number' ? k : typeName(k)}`);
  }
  if (!manifestBytes) fail('suit_missing_member', 'envelope: expected manifest (3), came none');
  const { manifest, tagged: manifestTagged } = decodeManifest(manifestBytes);
  for (const k of severed.keys()) {
    const member = manifest.severable.get(k);
    if (!member?.severed) fail('suit_severed_mismatch', `envelope: member ${MEMBER_NAMES[k]} (${k}) is carried in the envelope but the manifest does not hold its digest`);
  }
  const env: SuitEnvelope = { tagged, manifestBytes, manifestTagged, manifest, severed, integrated };
  if (authentication) env.authentication = authentication;
  if (delegation !== undefined) env.delegation = delegation;
  return env;
}

/** Encodes an envelope: delegation, authentication wrapper, manifest, severed members, payloads. */
export function encodeEnvelope(env: SuitEnvelope): Uint8Array {
  const m: CborMap = new Map();
  if (env.delegation !== undefined) m.set(SUIT_DELEGATION, env.delegation);
  if (env.authentication) {
    const a = env.authentication;
    m.set(SUIT_AUTHENTICATION_WRAPPER, encodeCbor([a.digestBytes, ...a.blocks]));
  }
  m.set(SUIT_MANIFEST, env.manifestBytes);
  for (const k of [...env.severed.keys()].sort((a, b) => a - b)) m.set(k, env.severed.get(k)!);
  const names = [...env.integrated.keys()].sort((a, b) => Buffer.compare(encodeCbor(a), encodeCbor(b)));
  for (const n of names) m.set(n, env.integrated.get(n)!);
  return encodeCbor(env.tagged ? new CborTag(SUIT_ENVELOPE_TAG, m) : m);
}

/** Hex of the CBOR encoding of a component identifier: the key of per-component state. */
export function componentKey(id: ComponentId): string {
  return Buffer.from(encodeCbor(id)).toString('hex');
}

export function componentIdFromKey(key: string): ComponentId {
  const v = decodeCbor(new Uint8Array(Buffer.from(key, 'hex')));
  return parseComponentId(v, 'component key');
}
