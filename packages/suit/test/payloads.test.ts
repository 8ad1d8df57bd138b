import { describe, expect, it } from 'vitest';
import { signEnvelope } from '../src/builder.ts';
import { type CborValue, encodeCbor, wrapBstr } from '../src/cbor.ts';
import {
  SUIT_CONDITION_IMAGE_MATCH,
  SUIT_DIRECTIVE_FETCH,
  SUIT_DIRECTIVE_OVERRIDE_PARAMETERS,
  SUIT_DIRECTIVE_RUN_SEQUENCE,
  SUIT_DIRECTIVE_SET_COMPONENT_INDEX,
  SUIT_DIRECTIVE_SET_PARAMETERS,
  SUIT_DIRECTIVE_TRY_EACH,
  SUIT_INSTALL,
  SUIT_INVOKE,
  SUIT_PARAMETER_IMAGE_DIGEST,
  SUIT_PARAMETER_IMAGE_SIZE,
  SUIT_PARAMETER_URI,
  SUIT_PAYLOAD_FETCH,
  SUIT_UNINSTALL,
} from '../src/constants.ts';
import { SuitError } from '../src/errors.ts';
import { buildEnvelope, checkIntegratedPayloads, decodeEnvelope, encodeEnvelope, generateSigningKey, importKey, type SuitCommand } from '../src/index.ts';
import { type ComponentId, encodeDigest, encodeManifest, type SuitEnvelope, type SuitManifest, sequenceFrom } from '../src/manifest.ts';
import { authenticate, decodeStage, digestWith } from '../src/verify.ts';
import { TRUST_ANCHOR_PEM, vector } from './helpers.ts';

const key = generateSigningKey('es256').key;
const payload = new Uint8Array(Buffer.from('an integrated payload '.repeat(20)));
const other = new Uint8Array(payload).fill(0x78);
const digestOf = (b: Uint8Array) => encodeCbor(encodeDigest({ alg: -16, bytes: digestWith(-16, b) }));
const C: ComponentId[] = [[new Uint8Array([0])], [new Uint8Array([1])]];

const params = (...e: [number, CborValue][]): SuitCommand => ({ id: SUIT_DIRECTIVE_OVERRIDE_PARAMETERS, arg: { kind: 'parameters', parameters: new Map(e) } });
const setParams = (...e: [number, CborValue][]): SuitCommand => ({ id: SUIT_DIRECTIVE_SET_PARAMETERS, arg: { kind: 'parameters', parameters: new Map(e) } });
const fetch: SuitCommand = { id: SUIT_DIRECTIVE_FETCH, arg: { kind: 'policy', policy: 15 } };
const index = (i: number | true | number[]): SuitCommand => ({ id: SUIT_DIRECTIVE_SET_COMPONENT_INDEX, arg: { kind: 'index', index: i } });
const tryEach = (options: SuitCommand[][], otherwiseNil = false): SuitCommand => ({ id: SUIT_DIRECTIVE_TRY_EACH, arg: { kind: 'try-each', options: options.map(sequenceFrom), otherwiseNil } });
const runSeq = (...c: SuitCommand[]): SuitCommand => ({ id: SUIT_DIRECTIVE_RUN_SEQUENCE, arg: { kind: 'sequence', sequence: sequenceFrom(c) } });
const bind = (data: Uint8Array, uri = '#p', size = data.length) => params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(data)], [SUIT_PARAMETER_IMAGE_SIZE, size], [SUIT_PARAMETER_URI, uri]);

/** A signed envelope with the given sequences and integrated payloads. */
function envelope(s: {
  shared?: SuitCommand[];
  install?: SuitCommand[];
  fetchSection?: SuitCommand[];
  invoke?: SuitCommand[];
  uninstall?: SuitCommand[];
  integrated?: [string, Uint8Array][];
  components?: number;
  dependencies?: number[];
}): Uint8Array {
  const severable = new Map();
  if (s.install) severable.set(SUIT_INSTALL, { severed: false, bytes: new Uint8Array(0), sequence: sequenceFrom(s.install) });
  if (s.fetchSection) severable.set(SUIT_PAYLOAD_FETCH, { severed: false, bytes: new Uint8Array(0), sequence: sequenceFrom(s.fetchSection) });
  const sequences = new Map();
  if (s.invoke) sequences.set(SUIT_INVOKE, sequenceFrom(s.invoke));
  if (s.uninstall) sequences.set(SUIT_UNINSTALL, sequenceFrom(s.uninstall));
  const manifest: SuitManifest = {
    version: 1,
    sequenceNumber: 1,
    common: {
      bytes: new Uint8Array(0),
      components: C.slice(0, s.components ?? 1),
      ...(s.shared ? { sharedSequence: sequenceFrom(s.shared) } : {}),
      ...(s.dependencies ? { dependencies: new Map(s.dependencies.map((d) => [d, new Map()])) } : {}),
    },
    sequences,
    severable,
  };
  const manifestBytes = encodeManifest(manifest);
  const env: SuitEnvelope = { tagged: true, manifestBytes, manifestTagged: false, manifest, severed: new Map(), integrated: new Map(s.integrated ?? [['#p', payload]]) };
  return signEnvelope(encodeEnvelope(env), key);
}

function check(bytes: Uint8Array, trust = [key]): string | { name: string; component: number; size: number }[] {
  try {
    return checkIntegratedPayloads(authenticate(decodeStage(bytes), trust));
  } catch (e) {
    expect(e).toBeInstanceOf(SuitError);
    expect((e as SuitError).code).toBe('suit_payload_mismatch');
    return (e as SuitError).message;
  }
}

/** Replaces an integrated payload (unsigned bytes: the signature stays valid). */
function swap(bytes: Uint8Array, name: string, data: Uint8Array): Uint8Array {
  const env = decodeEnvelope(bytes);
  env.integrated.set(name, data);
  return encodeEnvelope(env);
}

describe('S1/S2 integrated payloads are checked against their image digest', () => {
  it('a built envelope passes; the same envelope with another payload of the same size does not', () => {
    const env = buildEnvelope({ vendorDomain: 'tips.example', classInfo: 'pi4', component: 'rootfs', sequenceNumber: 1, payload, delivery: { mode: 'integrated' }, key });
    expect(check(env)).toEqual([{ name: '#payload', component: 0, size: payload.length }]);
    expect(check(swap(env, '#payload', other))).toMatch(/^integrated payload "#payload" \(component 0\): expected it to match its image-digest/);
    // URI delivery has nothing to check.
    expect(check(buildEnvelope({ vendorDomain: 'tips.example', classInfo: 'pi4', component: 'rootfs', sequenceNumber: 1, payload, delivery: { mode: 'uri', uri: 'https://m/p' }, key }))).toEqual([]);
  });

  it('the image size is checked too', () => {
    expect(check(envelope({ shared: [bind(payload, '#p', payload.length + 1)], install: [fetch] }))).toMatch(/expected image-size \d+ bytes, came \d+/);
    expect(check(envelope({ shared: [bind(payload)], install: [fetch] }))).toEqual([{ name: '#p', component: 0, size: payload.length }]);
    // Without an image-size the digest alone decides.
    expect(check(envelope({ shared: [params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(payload)], [SUIT_PARAMETER_URI, '#p'])], install: [fetch] }))).toHaveLength(1);
  });

  it('a payload fetched with no image-digest, or named by no fetch, is refused (nothing binds it)', () => {
    expect(check(envelope({ install: [params([SUIT_PARAMETER_URI, '#p']), fetch] }))).toMatch(/expected an image-digest to check it against/);
    expect(check(envelope({ shared: [bind(payload)], install: [fetch], integrated: [['#p', payload], ['#extra', other]] }))).toMatch(/^integrated payload "#extra": expected a directive-fetch/);
    // A uri set but never fetched binds nothing either.
    expect(check(envelope({ shared: [bind(payload)], install: [] }))).toMatch(/expected a directive-fetch/);
  });

  it('override-parameters replaces an earlier digest, set-parameters does not', () => {
    expect(check(envelope({ shared: [bind(payload)], install: [params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(other)]), fetch] }))).toMatch(/expected it to match/);
    expect(check(envelope({ shared: [bind(payload)], install: [setParams([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(other)]), fetch] }))).toHaveLength(1);
    expect(check(envelope({ install: [setParams([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(payload)], [SUIT_PARAMETER_URI, '#p']), fetch] }))).toHaveLength(1);
  });

  it('parameters follow set-component-index (a number, a list, true)', () => {
    const two = { components: 2 };
    // Digest set for component 1, payload fetched into component 0 (no digest there).
    expect(check(envelope({ ...two, install: [index(1), bind(payload), index(0), params([SUIT_PARAMETER_URI, '#p']), fetch] }))).toMatch(/\(component 0\): expected an image-digest/);
    expect(check(envelope({ ...two, install: [index(1), bind(payload), fetch] }))).toEqual([{ name: '#p', component: 1, size: payload.length }]);
    expect(check(envelope({ ...two, install: [index([0, 1]), bind(payload), fetch] }))).toHaveLength(2);
    expect(check(envelope({ ...two, install: [index(true), bind(payload), fetch] }))).toHaveLength(2);
    // Fetched into both, bound right in one only.
    expect(check(envelope({ ...two, install: [index(true), bind(payload), index(1), params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(other)]), index(true), fetch] }))).toMatch(/\(component 1\): expected it to match/);
  });

  it('every try-each branch is followed: one branch binding the payload suffices, none is refused', () => {
    expect(check(envelope({ install: [tryEach([[bind(other)], [bind(payload)]]), fetch] }))).toHaveLength(1);
    expect(check(envelope({ install: [tryEach([[bind(other)], [bind(other, '#p', payload.length)]]), fetch] }))).toMatch(/expected it to match/);
    // otherwise-nil keeps the path on which no option ran.
    expect(check(envelope({ shared: [bind(payload)], install: [tryEach([[params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(other)])]], true), fetch] }))).toHaveLength(1);
    expect(check(envelope({ shared: [bind(other)], install: [tryEach([[params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(other)])]], true), fetch] }))).toMatch(/expected it to match/);
    // Options do not leak into each other: the second option starts from the state before the first.
    expect(check(envelope({ install: [tryEach([[bind(payload)], [params([SUIT_PARAMETER_URI, '#p'])]]), fetch] }))).toHaveLength(1);
    expect(check(envelope({ install: [tryEach([[bind(other)], [params([SUIT_PARAMETER_URI, '#p'])]]), fetch] }))).toMatch(/expected (it to match|an image-digest)/);
  });

  it('more try-each paths than can be checked are refused, not skipped', () => {
    const nine = Array.from({ length: 9 }, () => tryEach([[bind(payload)], [bind(payload)]]));
    expect(check(envelope({ install: [...nine, fetch] }))).toMatch(/try-each paths/);
    expect(check(envelope({ install: [...nine.slice(0, 8), fetch] }))).toHaveLength(1);
  });

  it('run-sequence runs its commands on each current component, then restores the index list', () => {
    const two = { components: 2 };
    expect(check(envelope({ ...two, install: [index([0, 1]), runSeq(bind(payload), fetch)] }))).toHaveLength(2);
    expect(check(envelope({ ...two, install: [index([0, 1]), runSeq(bind(payload)), index(1), fetch] }))).toEqual([{ name: '#p', component: 1, size: payload.length }]);
    expect(check(envelope({ ...two, install: [index(1), runSeq(bind(payload)), fetch] }))).toEqual([{ name: '#p', component: 1, size: payload.length }]);
    expect(check(envelope({ ...two, install: [index(1), runSeq(runSeq(bind(other))), fetch] }))).toMatch(/\(component 1\): expected it to match/);
  });

  it('every section is walked with the shared sequence before it; parameters persist across sections', () => {
    expect(check(envelope({ shared: [bind(payload)], fetchSection: [fetch] }))).toHaveLength(1);
    expect(check(envelope({ shared: [bind(other)], invoke: [fetch] }))).toMatch(/expected it to match/);
    expect(check(envelope({ fetchSection: [bind(payload)], install: [fetch] }))).toHaveLength(1);
    // The shared sequence runs again before each section, with component index 0.
    expect(check(envelope({ components: 2, shared: [bind(payload)], fetchSection: [index(1)], install: [fetch] }))).toEqual([{ name: '#p', component: 0, size: payload.length }]);
  });

  it('the published vectors with integrated payloads pass, and fail once the payload is swapped (a dependency is checked by its manifest digest)', () => {
    const trust = [importKey(TRUST_ANCHOR_PEM)];
    for (const [file, name, component] of [
      ['suit_manifest_expI.suit', '#tc', 0],
      ['suit_manifest_expS3.suit', '#dependent.suit', 1],
      ['suit_manifest_expED.suit', '#dependency-manifest', 1],
    ] as const) {
      const bytes = vector('libcsuit', file);
      const size = decodeEnvelope(bytes).integrated.get(name)!.length;
      expect(check(bytes, trust), file).toEqual([{ name, component, size }]);
      const same = new Uint8Array(decodeEnvelope(bytes).integrated.get(name)!);
      same[same.length - 1] = same[same.length - 1]! ^ 1;
      expect(check(swap(bytes, name, same), trust), file).toMatch(new RegExp(`^integrated payload "${name}" \\(component ${component}\\): expected it to match`));
    }
    // A dependency whose envelope is intact but whose manifest digest is not the one named.
    const s3 = vector('libcsuit', 'suit_manifest_expS3.suit');
    expect(check(swap(s3, '#dependent.suit', vector('libcsuit', 'suit_manifest_exp0.suit')), trust)).toMatch(/expected it to match/);
    expect(check(swap(s3, '#dependent.suit', new Uint8Array([0xff])), trust)).toMatch(/expected it to match/);
  });

  it('a wrapped payload digest is not confused with the raw one', () => {
    expect(check(envelope({ shared: [params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(wrapBstr(payload))], [SUIT_PARAMETER_URI, '#p'])], install: [fetch] }))).toMatch(/expected it to match/);
  });

  it('try-each branches start from copies: parameters one option sets are not seen by the next', () => {
    // Component 0 has parameters before the try-each, so both options write into one existing map.
    const before = [params([SUIT_PARAMETER_IMAGE_SIZE, payload.length])];
    expect(check(envelope({ install: [...before, tryEach([[params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(payload)])], [params([SUIT_PARAMETER_URI, '#p'])]]), fetch] }))).toMatch(
      /\(component 0\): expected an image-digest/,
    );
    // The index list is copied too: an option that moves it does not move the other option's.
    const two = { components: 2 };
    expect(check(envelope({ ...two, install: [bind(payload), tryEach([[index(1)], [params([SUIT_PARAMETER_URI, '#p'])]]), fetch] }))).toEqual([{ name: '#p', component: 0, size: payload.length }]);
    // A fetch inside an option is followed on that option's path.
    expect(check(envelope({ install: [tryEach([[bind(other), fetch], [bind(payload), fetch]])] }))).toEqual([{ name: '#p', component: 0, size: payload.length }]);
  });

  it('a fetch into a component that has no parameters binds nothing, and is no error of the walk', () => {
    expect(check(envelope({ components: 2, install: [bind(payload), fetch, index(1), fetch] }))).toEqual([{ name: '#p', component: 0, size: payload.length }]);
  });

  it('sections run in the interpreter order (install before invoke), then the others (uninstall)', () => {
    // Invoke (9) runs after install (20): a digest set in invoke binds no fetch of install.
    expect(check(envelope({ invoke: [bind(payload)], install: [fetch] }))).toMatch(/expected a directive-fetch/);
    expect(check(envelope({ install: [bind(payload)], invoke: [fetch] }))).toHaveLength(1);
    // Uninstall is not a default section; it is walked too, after them.
    expect(check(envelope({ shared: [bind(payload)], uninstall: [fetch] }))).toHaveLength(1);
    expect(check(envelope({ install: [bind(other)], uninstall: [params([SUIT_PARAMETER_IMAGE_DIGEST, digestOf(payload)]), fetch] }))).toHaveLength(1);
    expect(check(envelope({ uninstall: [bind(other)], install: [bind(payload), fetch] }))).toHaveLength(1);
  });

  it('a dependency index beyond the component list counts as a component (set-component-index true reaches it)', () => {
    expect(check(envelope({ components: 1, dependencies: [1], install: [index(true), bind(payload), fetch] }))).toMatch(/^integrated payload "#p" \(component 1\): expected it to match/);
    expect(check(envelope({ components: 1, install: [index(true), bind(payload), fetch] }))).toEqual([{ name: '#p', component: 0, size: payload.length }]);
  });

  it('an envelope without integrated payloads has nothing to check, however many paths it has', () => {
    const many = Array.from({ length: 9 }, () => tryEach([[bind(payload)], [bind(payload)]]));
    expect(check(envelope({ install: [...many, fetch], integrated: [] }))).toEqual([]);
  });

  it('only directive-fetch fetches, and only a payload the envelope carries: a condition or a remote URI binds nothing', () => {
    const imageMatch: SuitCommand = { id: SUIT_CONDITION_IMAGE_MATCH, arg: { kind: 'policy', policy: 15 } };
    expect(check(envelope({ shared: [bind(payload)], install: [imageMatch] }))).toMatch(/expected a directive-fetch/);
    // A fetch of a remote URI (component 1, no digest) is not an integrated payload's and is not checked here.
    expect(check(envelope({ components: 2, install: [bind(payload), fetch, index(1), params([SUIT_PARAMETER_URI, 'https://m/x']), fetch, index(1), imageMatch] }))).toEqual([
      { name: '#p', component: 0, size: payload.length },
    ]);
    expect(check(envelope({ components: 2, install: [bind(payload), fetch, index(1), params([SUIT_PARAMETER_IMAGE_SIZE, 1]), fetch] }))).toHaveLength(1);
  });
});
