import { describe, expect, it } from 'vitest';
import {
  type CborValue,
  componentKey,
  encodeCbor,
  importKey,
  MemoryDevice,
  reportReason,
  runManifest,
  SUIT_REPORT_REASON,
  symmetricKey,
  verifyEnvelope,
  type SuitErrorCode,
} from '../src/index.ts';
import { HMAC_KEY, specExampleHex, TRUST_ANCHOR_PEM, vector } from './helpers.ts';

const trust = [importKey(TRUST_ANCHOR_PEM), symmetricKey(HMAC_KEY)];
const VENDOR = new Uint8Array(Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex'));
const CLASS = new Uint8Array(Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex'));
const RAW = vector('libcsuit', 'raw_image.bin');
const DEPENDENT = vector('libcsuit', 'suit_manifest_expS0.suit');

/** Every URI serves raw_image.bin, except the dependency manifest of expS2. */
class Remote extends Map<string, Uint8Array> {
  override get(uri: string): Uint8Array {
    return uri.endsWith('dependent.suit') ? DEPENDENT : RAW;
  }
}

async function run(bytes: Uint8Array, setup: (d: MemoryDevice) => void = () => {}) {
  const v = await verifyEnvelope(bytes, { trust });
  const dev = new MemoryDevice(v.manifest.common.components, { vendorId: VENDOR, classId: CLASS }, new Remote());
  setup(dev);
  return { result: await runManifest(v, dev), dev, v };
}

describe('S1/S12 interpreter runs real manifests against a device', () => {
  // What each vector does on a device holding nothing, whose vendor/class are the spec's, and whose
  // network serves raw_image.bin. The spec examples carry sample digests that match no image.
  const table: [string, Uint8Array, boolean, string | undefined][] = [
    ['expAW (write encrypted content)', vector('libcsuit', 'suit_manifest_expAW.suit'), true, undefined],
    ['expAF (fetch encrypted payload)', vector('libcsuit', 'suit_manifest_expAF.suit'), true, undefined],
    ['expAFS', vector('libcsuit', 'suit_manifest_expAFS.suit'), true, undefined],
    ['expEW', vector('libcsuit', 'suit_manifest_expEW.suit'), true, undefined],
    ['expS0 (write + invoke)', vector('libcsuit', 'suit_manifest_expS0.suit'), true, undefined],
    ['expU3 (fetch + image-match on a real digest)', vector('libcsuit', 'suit_manifest_expU3.suit'), true, undefined],
    ['spec example 0 (sample digest)', specExampleHex(0).at(-1)!, false, 'suit_condition_failed'],
    ['spec example 1 (sample digest after fetch)', specExampleHex(1).at(-1)!, false, 'suit_condition_failed'],
    ['exp2A (install severed, not supplied)', vector('libcsuit', 'suit_manifest_exp2A.suit'), false, 'suit_severed_missing'],
    ['expS3 (dependency checked, then process-dependency)', vector('libcsuit', 'suit_manifest_expS3.suit'), false, 'suit_command_unsupported'],
    ['expS2 (dependency fetched, then process-dependency)', vector('libcsuit', 'suit_manifest_expS2.suit'), false, 'suit_command_unsupported'],
    ['expU0 (command 35)', vector('libcsuit', 'suit_manifest_expU0.suit'), false, 'suit_command_unsupported'],
    ['expU1 (command 34)', vector('libcsuit', 'suit_manifest_expU1.suit'), false, 'suit_command_unsupported'],
    ['expU2 (condition-version)', vector('libcsuit', 'suit_manifest_expU2.suit'), false, 'suit_command_unsupported'],
    ['expI (TEEP vendor)', vector('libcsuit', 'suit_manifest_expI.suit'), false, 'suit_condition_failed'],
  ];
  for (const [name, bytes, ok, code] of table) {
    it(name, async () => {
      const { result } = await run(bytes);
      expect(result.ok).toBe(ok);
      expect(result.failure?.code).toBe(code);
      if (code) expect(result.failure!.reason).toBe(reportReason(code as SuitErrorCode));
    });
  }

  it('unsupported commands give the SUIT report reason command-unsupported (5)', async () => {
    const { result } = await run(vector('libcsuit', 'suit_manifest_expU0.suit'));
    expect(result.failure).toMatchObject({ reason: SUIT_REPORT_REASON['command-unsupported'], section: 20 });
  });

  it('expS0 writes its content and invokes the component', async () => {
    const { dev, v } = await run(vector('libcsuit', 'suit_manifest_expS0.suit'));
    const c = v.manifest.common.components[0]!;
    expect(dev.read(c)).toBeDefined();
    expect(dev.invoked).toEqual([componentKey(c)]);
  });

  it('example 3 (A/B): try-each picks the option for the slot the device reports', async () => {
    const bytes = vector('libcsuit', 'suit_manifest_exp3.suit');
    for (const [slot, file] of [
      [0, 'http://example.com/file1.bin'],
      [1, 'http://example.com/file2.bin'],
    ] as const) {
      const { result, dev } = await run(bytes, (d) => d.slots.set(componentKey([new Uint8Array([0])]), slot));
      expect(dev.fetched).toEqual([file]);
      // The sample digests match nothing: the run stops at image-match after the right fetch.
      expect(result.failure?.code).toBe('suit_condition_failed');
    }
    const none = await run(bytes);
    expect(none.result.failure).toMatchObject({ code: 'suit_condition_failed', section: 4 });
  });

  it('a device of another vendor fails the condition in the shared sequence', async () => {
    const v = await verifyEnvelope(vector('libcsuit', 'suit_manifest_exp1.suit'), { trust });
    const dev = new MemoryDevice(v.manifest.common.components, { vendorId: new Uint8Array(16), classId: CLASS }, new Remote());
    const r = await runManifest(v, dev);
    expect(r.failure).toMatchObject({ code: 'suit_condition_failed', section: 4, reason: 10 });
    expect(dev.fetched).toEqual([]);
  });

  it('a device without the component: component-unsupported (6)', async () => {
    const v = await verifyEnvelope(vector('libcsuit', 'suit_manifest_expU3.suit'), { trust });
    const dev = new MemoryDevice([[new Uint8Array(Buffer.from('other'))]], { vendorId: VENDOR, classId: CLASS }, new Remote());
    const r = await runManifest(v, dev);
    expect(r.failure).toMatchObject({ code: 'suit_component_unsupported', reason: 6 });
  });

  it('records carry the section, offset and parameters when the policy asks for them', async () => {
    const { result } = await run(vector('libcsuit', 'suit_manifest_exp1.suit'));
    expect(result.records.length).toBeGreaterThan(0);
    const r = result.records[0]!;
    expect(r.componentIndex).toBe(0);
    expect(r.offset).toBeGreaterThan(0);
    expect(encodeCbor(r.properties).length).toBeGreaterThan(1);
  });
});

describe('S1 interpreter fuzz: random command sequences never crash it (fast-check)', () => {
  it('any verified manifest runs to ok or to a typed failure with its report reason', async () => {
    const { buildEnvelope, decodeEnvelope, encodeEnvelope, encodeManifest, generateSigningKey, signEnvelope } = await import('../src/index.ts');
    const fc = (await import('fast-check')).default;
    const { key } = generateSigningKey('ed25519');
    const base = decodeEnvelope(buildEnvelope({ vendorId: VENDOR, classId: CLASS, component: 'c', sequenceNumber: 1, payload: RAW, delivery: { mode: 'integrated' } }));
    const param = fc.oneof(
      fc.tuple(fc.constant(1), fc.constantFrom(VENDOR, new Uint8Array(16))),
      fc.tuple(fc.constant(3), fc.constant(encodeCbor([-16, new Uint8Array(32)]))),
      fc.tuple(fc.constantFrom(5, 14, 22), fc.nat(3)),
      fc.tuple(fc.constant(13), fc.boolean()),
      fc.tuple(fc.constant(18), fc.uint8Array({ maxLength: 4 })),
      fc.tuple(fc.constant(21), fc.constantFrom('#payload', '#nope', 'https://x/y')),
    );
    const command = fc.letrec<{ cmd: { id: number; arg: import('../src/index.ts').SuitCommandArg } }>((tie) => ({
      cmd: fc.oneof(
        { depthSize: 'small' },
        fc.record({ id: fc.constantFrom(1, 2, 3, 5, 6, 14, 18, 21, 22, 23, 24, 25, 31, 26, 99), arg: fc.constant({ kind: 'policy' as const, policy: 15 }) }),
        fc.record({ id: fc.constant(12), arg: fc.constantFrom<number | true>(0, 1, 2, true).map((index) => ({ kind: 'index' as const, index })) }),
        fc.record({ id: fc.constantFrom(19, 20), arg: fc.array(param, { maxLength: 4 }).map((ps) => ({ kind: 'parameters' as const, parameters: new Map<number, CborValue>(ps as [number, CborValue][]) })) }),
        fc.record({
          id: fc.constant(15),
          arg: fc.tuple(fc.array(fc.array(tie('cmd'), { maxLength: 3 }), { minLength: 1, maxLength: 2 }), fc.boolean()).map(([opts, nil]) => ({
            kind: 'try-each' as const,
            otherwiseNil: nil,
            options: opts.map((commands) => ({ bytes: new Uint8Array(0), commands })),
          })),
        }),
      ),
    })).cmd;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 8 }), async (commands) => {
        const m = structuredClone(base.manifest);
        const seq = { bytes: new Uint8Array(0), commands };
        m.sequences.set(7, seq);
        const env = { ...base, manifest: m, manifestBytes: encodeManifest(m), authentication: undefined };
        delete env.authentication;
        const signed = signEnvelope(encodeEnvelope(env), key);
        const v = await verifyEnvelope(signed, { trust: [key] });
        const dev = new MemoryDevice([[new Uint8Array(Buffer.from('c'))]], { vendorId: VENDOR, classId: CLASS }, new Map([['https://x/y', RAW]]));
        const r = await runManifest(v, dev);
        if (!r.ok) {
          expect(SUIT_REPORT_REASON).toBeDefined();
          // operation-failed is legitimate only for a missing integrated payload.
          if (r.failure!.code === 'suit_operation_failed') expect(r.failure!.message).toMatch(/^fetch: /);
          expect(r.failure!.reason).toBe(reportReason(r.failure!.code));
        }
      }),
      { numRuns: 400 },
    );
  });
});
