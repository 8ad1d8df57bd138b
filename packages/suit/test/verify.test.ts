import { describe, expect, it } from 'vitest';
import { type CborMap, type CborTag, type CborValue, decodeCbor, encodeCbor, wrapBstr } from '../src/cbor.ts';
import {
  SUIT_DIRECTIVE_OVERRIDE_PARAMETERS,
  SUIT_DIRECTIVE_RUN_SEQUENCE,
  SUIT_DIRECTIVE_SET_PARAMETERS,
  SUIT_DIRECTIVE_TRY_EACH,
  SUIT_INSTALL,
  SUIT_INVOKE,
  SUIT_PARAMETER_CLASS_IDENTIFIER,
  SUIT_PARAMETER_VENDOR_IDENTIFIER,
  SUIT_VALIDATE,
} from '../src/constants.ts';
import { coseMac0Create, coseSign1Sign, createSignature, sigStructure } from '../src/cose.ts';
import { SuitError } from '../src/errors.ts';
import { type CoseKey, generateSigningKey, symmetricKey } from '../src/keys.ts';
import { type ComponentId, decodeEnvelope, encodeDigest, encodeEnvelope, encodeManifest, type SeverableMember, type SuitCommand, type SuitEnvelope, type SuitManifest, sequenceFrom } from '../src/manifest.ts';
import {
  authenticate,
  checkPolicy,
  checkRollback,
  checkRollbackWith,
  decodeStage,
  type DevicePolicy,
  digestMatches,
  digestWith,
  parameterValues,
  verifyEnvelope,
  verifyEnvelopeResult,
  verifyEnvelopeSync,
  type VerifyOptions,
  wrappedView,
} from '../src/verify.ts';
import { signEnvelope } from '../src/builder.ts';

const key = generateSigningKey('es256').key;
const trust = [key];
const VENDOR = new Uint8Array(16).fill(0x11);
const CLASS = new Uint8Array(16).fill(0x22);
const OTHER = new Uint8Array(16).fill(0x33);
const C0: ComponentId = [new Uint8Array([0])];
const C1: ComponentId = [new Uint8Array([1])];

const params = (...e: [number, CborValue][]): SuitCommand => ({ id: SUIT_DIRECTIVE_OVERRIDE_PARAMETERS, arg: { kind: 'parameters', parameters: new Map(e) } });
const setParams = (...e: [number, CborValue][]): SuitCommand => ({ id: SUIT_DIRECTIVE_SET_PARAMETERS, arg: { kind: 'parameters', parameters: new Map(e) } });
const tryEach = (...options: SuitCommand[][]): SuitCommand => ({ id: SUIT_DIRECTIVE_TRY_EACH, arg: { kind: 'try-each', options: options.map(sequenceFrom), otherwiseNil: false } });
const runSeq = (...commands: SuitCommand[]): SuitCommand => ({ id: SUIT_DIRECTIVE_RUN_SEQUENCE, arg: { kind: 'sequence', sequence: sequenceFrom(commands) } });
const vendor = (v: Uint8Array) => params([SUIT_PARAMETER_VENDOR_IDENTIFIER, v]);

interface Shape {
  components?: ComponentId[];
  seq?: number;
  shared?: SuitCommand[];
  validate?: SuitCommand[];
  invoke?: SuitCommand[];
  install?: SuitCommand[];
  /** install as a severed member: carried in the envelope or left out. */
  severInstall?: 'carried' | 'absent';
}

/** An unsigned envelope of the given shape. */
function unsigned(s: Shape): SuitEnvelope {
  const sequences = new Map();
  if (s.validate) sequences.set(SUIT_VALIDATE, sequenceFrom(s.validate));
  if (s.invoke) sequences.set(SUIT_INVOKE, sequenceFrom(s.invoke));
  const severable = new Map<number, SeverableMember>();
  const severed = new Map<number, Uint8Array>();
  if (s.install) {
    const seq = sequenceFrom(s.install);
    if (s.severInstall) {
      severable.set(SUIT_INSTALL, { severed: true, digest: { alg: -16, bytes: digestWith(-16, wrapBstr(seq.bytes)) } });
      if (s.severInstall === 'carried') severed.set(SUIT_INSTALL, seq.bytes);
    } else severable.set(SUIT_INSTALL, { severed: false, bytes: new Uint8Array(0), sequence: seq });
  }
  const manifest: SuitManifest = {
    version: 1,
    sequenceNumber: s.seq ?? 1,
    common: { bytes: new Uint8Array(0), components: s.components ?? [C0], ...(s.shared ? { sharedSequence: sequenceFrom(s.shared) } : {}) },
    sequences,
    severable,
  };
  const manifestBytes = encodeManifest(manifest);
  const digest = { alg: -16, bytes: digestWith(-16, wrapBstr(manifestBytes)) };
  return { tagged: true, manifestBytes, manifestTagged: false, manifest, severed, integrated: new Map(), authentication: { digestBytes: encodeCbor(encodeDigest(digest)), digest, blocks: [] } };
}

const build = (s: Shape, k: CoseKey = key): Uint8Array => signEnvelope(encodeEnvelope(unsigned(s)), k);

async function codeOf(bytes: Uint8Array, options: Partial<VerifyOptions> = {}): Promise<string> {
  try {
    await verifyEnvelope(bytes, { trust, ...options });
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(SuitError);
    return (e as SuitError).code;
  }
}

describe('S1 authenticate: the COSE block must sign this manifest digest', () => {
  it('a block with an attached payload that is another envelope’s digest, signed by the trusted key, is refused', async () => {
    const mine = unsigned({ seq: 2 });
    const theirs = unsigned({ seq: 1, shared: [vendor(VENDOR)] });
    // The trusted key signed the other envelope's digest with the payload attached.
    mine.authentication!.blocks = [coseSign1Sign({ protectedHeaders: new Map([[1, -7]]), payload: theirs.authentication!.digestBytes }, key)];
    expect(await codeOf(encodeEnvelope(mine))).toBe('suit_digest_mismatch');
    // The same, attached but over this envelope's digest, is accepted.
    mine.authentication!.blocks = [coseSign1Sign({ protectedHeaders: new Map([[1, -7]]), payload: mine.authentication!.digestBytes }, key)];
    expect(await codeOf(encodeEnvelope(mine))).toBe('accepted');
    // And a MAC block the same way.
    const mac = symmetricKey(new Uint8Array(32).fill(0x61));
    mine.authentication!.blocks = [coseMac0Create({ protectedHeaders: new Map([[1, 5]]), payload: theirs.authentication!.digestBytes }, mac)];
    expect(await codeOf(encodeEnvelope(mine), { trust: [mac] })).toBe('suit_digest_mismatch');
  });

  it('a block whose alg is only in the unprotected bucket is refused even though its signature is right', async () => {
    const env = unsigned({});
    const tbs = sigStructure('Signature1', new Uint8Array(0), new Uint8Array(0), env.authentication!.digestBytes);
    env.authentication!.blocks = [encodeCbor([new Uint8Array(0), new Map([[1, -7]]) as CborMap, null, createSignature(-7, key.privateKey!, tbs)])];
    expect(await codeOf(encodeEnvelope(env))).toBe('cose_bad_structure');
  });

  it('any one block that verifies suffices; when none does, the first block’s error is the answer', async () => {
    const stranger = generateSigningKey('es256').key;
    const good = decodeEnvelope(build({}));
    const bad = decodeEnvelope(build({}, stranger));
    const env = decodeEnvelope(build({}));
    env.authentication!.blocks = [bad.authentication!.blocks[0]!, good.authentication!.blocks[0]!];
    expect(await codeOf(encodeEnvelope(env))).toBe('accepted');
    // First a block of an unknown key type (untrusted), then one by a stranger (bad signature).
    const ed = decodeEnvelope(build({}, generateSigningKey('ed25519').key));
    env.authentication!.blocks = [ed.authentication!.blocks[0]!, bad.authentication!.blocks[0]!];
    expect(await codeOf(encodeEnvelope(env))).toBe('suit_untrusted_key');
    env.authentication!.blocks = [bad.authentication!.blocks[0]!, ed.authentication!.blocks[0]!];
    expect(await codeOf(encodeEnvelope(env))).toBe('suit_signature_invalid');
    // A block that is not CBOR at all is an error like any other, not a crash.
    env.authentication!.blocks = [new Uint8Array([0xff]), good.authentication!.blocks[0]!];
    expect(await codeOf(encodeEnvelope(env))).toBe('accepted');
  });

  it('the algorithms option reaches the COSE check; the authenticated key is the one that verified', () => {
    const other = generateSigningKey('es256').key;
    const bytes = build({});
    const auth = authenticate(decodeStage(bytes), [other, key]);
    expect(auth.key).toBe(key);
    expect(() => authenticate(decodeStage(bytes), trust, { algorithms: [-8] })).toThrow(expect.objectContaining({ code: 'cose_alg_unsupported' }));
    expect(authenticate(decodeStage(bytes), trust, { algorithms: [-8, -7] }).key).toBe(key);
  });

  it('a severed member must match its digest; one not carried is simply not available', async () => {
    const install = [vendor(VENDOR)];
    const carried = build({ install, severInstall: 'carried' });
    const auth = authenticate(decodeStage(carried), trust);
    expect(auth.members.get(SUIT_INSTALL)).toMatchObject({ severed: false });
    const absent = authenticate(decodeStage(build({ install, severInstall: 'absent' })), trust);
    expect(absent.members.has(SUIT_INSTALL)).toBe(false);
    // Swap the carried member for other bytes: the manifest still verifies, the member does not.
    const env = decodeEnvelope(carried);
    env.severed.set(SUIT_INSTALL, sequenceFrom([vendor(OTHER)]).bytes);
    expect(await codeOf(encodeEnvelope(env))).toBe('suit_severed_mismatch');
  });
});

describe('S4 anti-rollback per component', () => {
  it('every component is checked, not only the first', async () => {
    const bytes = build({ components: [C0, C1], seq: 5 });
    const key0 = Buffer.from(encodeCbor(C0 as CborValue)).toString('hex');
    const key1 = Buffer.from(encodeCbor(C1 as CborValue)).toString('hex');
    expect(await codeOf(bytes, { sequenceStore: { get: (k) => (k === key1 ? 5 : 4) } })).toBe('suit_rollback');
    expect(await codeOf(bytes, { sequenceStore: { get: (k) => (k === key0 ? 5 : 4) } })).toBe('suit_rollback');
    expect(await codeOf(bytes, { sequenceStore: { get: async () => 4 } })).toBe('accepted');
    const auth = authenticate(decodeStage(bytes), trust);
    expect(() => checkRollbackWith(auth, (k) => (k === key1 ? 6n : undefined))).toThrow(expect.objectContaining({ code: 'suit_rollback' }));
    expect(() => checkRollbackWith(auth, { currentSeq: 5n })).toThrow(expect.objectContaining({ code: 'suit_rollback' }));
    expect(checkRollbackWith(auth, { currentSeq: 4 })).toBe(auth);
    await expect(checkRollback(auth, { currentSeq: 5 })).rejects.toMatchObject({ code: 'suit_rollback' });
    await expect(checkRollback(auth, { currentSeq: 4 })).resolves.toBe(auth);
  });

  it('verifyEnvelopeSync runs the same stages', () => {
    const bytes = build({ seq: 3, shared: [vendor(VENDOR)] });
    expect(verifyEnvelopeSync(bytes, { trust, currentSeq: 2, device: { vendorId: VENDOR } }).manifest.sequenceNumber).toBe(3);
    expect(() => verifyEnvelopeSync(bytes, { trust, currentSeq: 3 })).toThrow(expect.objectContaining({ code: 'suit_rollback' }));
    expect(() => verifyEnvelopeSync(bytes, { trust, device: { vendorId: OTHER } })).toThrow(expect.objectContaining({ code: 'suit_vendor_mismatch' }));
    expect(verifyEnvelopeSync(bytes, { trust }).manifest.sequenceNumber).toBe(3);
  });

  it('verifyEnvelopeResult turns a failing store into a typed error', async () => {
    const r = await verifyEnvelopeResult(build({}), {
      trust,
      sequenceStore: {
        get: () => {
          throw new TypeError('store down');
        },
      },
    });
    expect(r).toMatchObject({ ok: false, error: { code: 'suit_operation_failed' } });
    expect(await verifyEnvelopeResult(build({}), { trust })).toMatchObject({ ok: true });
  });
});

describe('S3 policy: a vendor/class ID set anywhere the manifest can set it is checked', () => {
  const device: DevicePolicy = { vendorId: VENDOR, classId: CLASS };
  const where: [string, (v: SuitCommand) => Shape][] = [
    ['the shared sequence', (c) => ({ shared: [c] })],
    ['a try-each option', (c) => ({ shared: [tryEach([params([SUIT_PARAMETER_VENDOR_IDENTIFIER, VENDOR])], [c])] })],
    ['a nested run-sequence', (c) => ({ validate: [runSeq(runSeq(c))] })],
    ['an unseverable sequence (invoke)', (c) => ({ invoke: [c] })],
    ['an unsevered member (install)', (c) => ({ install: [c] })],
    ['a severed member carried in the envelope', (c) => ({ install: [c], severInstall: 'carried' })],
  ];
  for (const [name, shape] of where) {
    it(`a wrong vendor or class in ${name} is refused`, async () => {
      const base = [params([SUIT_PARAMETER_VENDOR_IDENTIFIER, VENDOR], [SUIT_PARAMETER_CLASS_IDENTIFIER, CLASS])];
      const withBase = (s: Shape): Shape => ({ ...s, shared: [...base, ...(s.shared ?? [])] });
      expect(await codeOf(build(withBase(shape(vendor(OTHER)))), { device })).toBe('suit_vendor_mismatch');
      expect(await codeOf(build(withBase(shape(params([SUIT_PARAMETER_CLASS_IDENTIFIER, OTHER])))), { device })).toBe('suit_class_mismatch');
      expect(await codeOf(build(withBase(shape(setParams([SUIT_PARAMETER_VENDOR_IDENTIFIER, OTHER])))), { device })).toBe('suit_vendor_mismatch');
      // The same place holding the right values is accepted.
      expect(await codeOf(build(withBase(shape(vendor(VENDOR)))), { device })).toBe('accepted');
    });
  }

  it('a vendor named only in a severed member that is not carried does not count (the manifest names none)', async () => {
    const bytes = build({ install: [vendor(VENDOR)], severInstall: 'absent' });
    expect(await codeOf(bytes, { device: { vendorId: VENDOR } })).toBe('suit_vendor_mismatch');
    expect(await codeOf(build({ install: [vendor(VENDOR)], severInstall: 'carried' }), { device: { vendorId: VENDOR } })).toBe('accepted');
  });

  it('parameterValues collects every place, in order, and only the parameter asked for', () => {
    const auth = authenticate(
      decodeStage(
        build({
          shared: [vendor(new Uint8Array([1])), params([SUIT_PARAMETER_CLASS_IDENTIFIER, CLASS]), params([3, encodeCbor([-16, new Uint8Array(32)])])],
          validate: [tryEach([vendor(new Uint8Array([2]))], [vendor(new Uint8Array([3]))]), runSeq(vendor(new Uint8Array([4])))],
          install: [vendor(new Uint8Array([5]))],
        }),
      ),
      trust,
    );
    expect(parameterValues(auth, SUIT_PARAMETER_VENDOR_IDENTIFIER).map((v) => v[0])).toEqual([1, 2, 3, 4, 5]);
    expect(parameterValues(auth, SUIT_PARAMETER_CLASS_IDENTIFIER)).toEqual([CLASS]);
    expect(parameterValues(auth, 5)).toEqual([]);
  });

  it('identifiers of another length are refused, not compared by prefix', async () => {
    const bytes = build({ shared: [params([SUIT_PARAMETER_VENDOR_IDENTIFIER, VENDOR], [SUIT_PARAMETER_CLASS_IDENTIFIER, CLASS])] });
    expect(await codeOf(bytes, { device: { vendorId: VENDOR.subarray(0, 8) } })).toBe('suit_vendor_mismatch');
    expect(await codeOf(bytes, { device: { vendorId: new Uint8Array([...VENDOR, 0]) } })).toBe('suit_vendor_mismatch');
    expect(await codeOf(bytes, { device: { classId: CLASS.subarray(0, 15) } })).toBe('suit_class_mismatch');
    expect(await codeOf(bytes, { device: { classId: CLASS } })).toBe('accepted');
    // A class requirement against a manifest naming no class.
    expect(await codeOf(build({ shared: [vendor(VENDOR)] }), { device: { classId: CLASS } })).toBe('suit_class_mismatch');
  });

  it('components: every component must be allowed; ids given as keys or ids', async () => {
    const bytes = build({ components: [C0, C1] });
    expect(await codeOf(bytes, { device: { components: [C0] } })).toBe('suit_component_not_allowed');
    expect(await codeOf(bytes, { device: { components: [C1] } })).toBe('suit_component_not_allowed');
    expect(await codeOf(bytes, { device: { components: [C0, C1] } })).toBe('accepted');
    expect(await codeOf(bytes, { device: { components: [Buffer.from(encodeCbor(C0 as CborValue)).toString('hex'), C1] } })).toBe('accepted');
    const fresh = checkRollbackWith(authenticate(decodeStage(bytes), trust), { currentSeq: undefined });
    expect(checkPolicy(fresh, {})).toBe(fresh);
  });
});

describe('S1 digests', () => {
  it('an unknown digest algorithm is refused; a digest of another length never matches', () => {
    expect(() => digestWith(-17, new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'suit_digest_alg_unsupported' }));
    const d = digestWith(-16, new Uint8Array([1]));
    expect(d.length).toBe(32);
    expect(digestWith(-43, new Uint8Array([1])).length).toBe(48);
    expect(digestWith(-44, new Uint8Array([1])).length).toBe(64);
    expect(digestMatches({ alg: -16, bytes: d }, new Uint8Array([1]))).toBe(true);
    expect(digestMatches({ alg: -16, bytes: d.subarray(0, 31) }, new Uint8Array([1]))).toBe(false);
    expect(digestMatches({ alg: -16, bytes: d }, new Uint8Array([2]))).toBe(false);
  });

  it('wrappedView uses the head in front of the bytes when it is there, and wraps otherwise', () => {
    const content = new Uint8Array(300).fill(7);
    const wrapped = wrapBstr(content);
    const inside = wrapped.subarray(wrapped.length - 300);
    const view = wrappedView(inside);
    expect(view.buffer).toBe(wrapped.buffer);
    expect(Buffer.from(view).equals(Buffer.from(wrapped))).toBe(true);
    // Not preceded by its head (a copy, or other bytes in front): a fresh wrapping.
    for (const c of [new Uint8Array(content), new Uint8Array([0x59, 0x01, 0x2d, ...content]).subarray(3), new Uint8Array([0x00, 0x00, 0x00, ...content]).subarray(3), new Uint8Array([0x59, 0x00, 0x00, ...content]).subarray(3)]) {
      const w = wrappedView(c);
      expect(Buffer.from(w).equals(Buffer.from(wrapped))).toBe(true);
    }
    expect(Buffer.from(wrappedView(new Uint8Array(0))).equals(Buffer.from([0x40]))).toBe(true);
  });
});

describe('S1/S3/S4 each stage refuses with its own code and a message naming what differs', () => {
  const msg = async (bytes: Uint8Array, options: Partial<VerifyOptions> = {}): Promise<string> => {
    try {
      await verifyEnvelope(bytes, { trust, ...options });
      return 'accepted';
    } catch (e) {
      expect(e).toBeInstanceOf(SuitError);
      return `${(e as SuitError).code}: ${(e as SuitError).message}`;
    }
  };

  it('a validly signed digest of another manifest: the manifest digest check', async () => {
    const a = decodeEnvelope(build({ seq: 7 }));
    const b = decodeEnvelope(build({ seq: 8 }));
    a.manifestBytes = b.manifestBytes;
    a.manifest = b.manifest;
    expect(await msg(encodeEnvelope(a))).toBe('suit_digest_mismatch: manifest: expected its SHA digest to equal the signed digest, came a different manifest');
  });

  it('an unsigned envelope, an attached payload of another envelope, a swapped severed member', async () => {
    const env = unsigned({});
    expect(await msg(encodeEnvelope(env))).toBe('suit_unsigned: authentication-wrapper: expected at least one COSE authentication block, came none');
    env.authentication!.blocks = [coseSign1Sign({ protectedHeaders: new Map([[1, -7]]), payload: unsigned({ seq: 9 }).authentication!.digestBytes }, key)];
    expect(await msg(encodeEnvelope(env))).toBe('suit_digest_mismatch: authentication block: expected its payload to be the manifest digest, came other bytes');
    const carried = decodeEnvelope(build({ install: [vendor(VENDOR)], severInstall: 'carried' }));
    carried.severed.set(SUIT_INSTALL, sequenceFrom([vendor(OTHER)]).bytes);
    expect(await msg(encodeEnvelope(carried))).toBe('suit_severed_mismatch: install: expected the severed member to match its digest in the manifest, came different bytes');
  });

  it('a block nested deeper than 16 levels is refused before it is read (its unprotected bucket is not signed)', async () => {
    const env = decodeEnvelope(build({}));
    const c = decodeCbor(env.authentication!.blocks[0]!) as CborTag;
    let deep: CborValue = 0;
    for (let i = 0; i < 20; i++) deep = [deep];
    (c.value as CborValue[])[1] = new Map([[99, deep]]) as CborMap;
    env.authentication!.blocks = [encodeCbor(c)];
    expect(await msg(encodeEnvelope(env))).toMatch(/^cbor_too_deep: /);
  });

  it('rollback against one current number (async and sync) and per component', async () => {
    const bytes = build({ seq: 5 });
    expect(await msg(bytes, { currentSeq: 5 })).toBe('suit_rollback: manifest-sequence-number: expected greater than 5, came 5');
    expect(await msg(bytes, { currentSeq: 4 })).toBe('accepted');
    const comp = Buffer.from(encodeCbor(C0 as CborValue)).toString('hex');
    expect(await msg(bytes, { sequenceStore: { get: () => 6 } })).toBe(`suit_rollback: manifest-sequence-number: expected greater than 6 for component ${comp}, came 5`);
  });

  it('vendor, class and components', async () => {
    const bytes = build({ components: [C0, C1], shared: [params([SUIT_PARAMETER_VENDOR_IDENTIFIER, VENDOR])] });
    const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
    expect(await msg(bytes, { device: { vendorId: OTHER } })).toBe(`suit_vendor_mismatch: vendor-identifier: expected ${hexOf(OTHER)}, came ${hexOf(VENDOR)}`);
    expect(await msg(bytes, { device: { classId: CLASS } })).toBe(`suit_class_mismatch: class-identifier: expected ${hexOf(CLASS)}, came a manifest that names none`);
    const k0 = Buffer.from(encodeCbor(C0 as CborValue)).toString('hex');
    const k1 = Buffer.from(encodeCbor(C1 as CborValue)).toString('hex');
    expect(await msg(bytes, { device: { components: [C0, [new Uint8Array([9])]] } })).toBe(`suit_component_not_allowed: components: expected one of ${k0}, 81410${'9'}, came ${k1}`);
  });

  it('an unknown digest algorithm', () => {
    expect(() => digestWith(-17, new Uint8Array(1))).toThrow('expected digest alg -16 (SHA-256), -43 or -44, came -17');
  });
});
