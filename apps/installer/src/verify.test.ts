import { bindGlaze, decodeEnvelope, encodeEnvelope, generateSigningKey } from '@tips/suit';
import { describe, expect, it } from 'vitest';
import { InstallerError } from './errors.ts';
import { verifyGlazeManifest } from './verify.ts';
import type { Work } from './work.ts';

const operator = generateSigningKey('ed25519');
const stranger = generateSigningKey('ed25519');
const SHA = 'ab'.repeat(32);
const SIZE = 4 * 1024 * 1024;

function manifest(o: { sha?: string; size?: number; seq?: number; key?: typeof operator.key; vendor?: string } = {}): Uint8Array {
  return bindGlaze({ payloadSha256: o.sha ?? SHA, payloadSize: o.size ?? SIZE, uri: 'tips:glaze:g', vendorDomain: o.vendor ?? 'tips.local', classInfo: 'base-os', component: 'disk', sequenceNumber: o.seq ?? 7, key: o.key ?? operator.key });
}

function work(env: Uint8Array, patch: Partial<Work> = {}): Work {
  return {
    jobId: 'p1j_1',
    metal: { id: 'mtl_1', name: 'pi', tipsId: 't' },
    glaze: { id: 'glz_1', name: 'os', version: '1', size: SIZE, sha256: SHA },
    manifest: Buffer.from(env).toString('base64'),
    trustedKeys: [{ id: 'key_ops', name: 'ops', alg: 'EdDSA', publicKeyPem: operator.publicPem }],
    minSequence: 0,
    vendorId: null,
    classId: null,
    glazePath: '/phase1/jobs/p1j_1/glaze',
    reportPath: '/phase1/jobs/p1j_1/report',
    enrollment: null,
    ...patch,
  };
}

function refusal(w: Work): string {
  try {
    verifyGlazeManifest(w);
  } catch (e) {
    expect(e).toBeInstanceOf(InstallerError);
    return (e as InstallerError).code;
  }
  return 'accepted';
}

describe('T13 S12 S3 S4 Phase 1: the installer verifies the manifest before it writes (A4 codes)', () => {
  it('accepts the pinned Glaze signed by a registered key, names the key and the sequence', () => {
    expect(verifyGlazeManifest(work(manifest()))).toMatchObject({ sequence: 7, keyId: 'key_ops' });
  });

  it('sequence ≥ minSequence: the same sequence is a reinstall, a lower one is a rollback', () => {
    expect(refusal(work(manifest({ seq: 7 }), { minSequence: 7 }))).toBe('accepted');
    expect(refusal(work(manifest({ seq: 6 }), { minSequence: 7 }))).toBe('suit_rollback');
  });

  it('refuses an unregistered key, a manifest that is not the one signed, garbage, and an unsigned envelope', () => {
    expect(refusal(work(manifest({ key: stranger.key })))).toBe('suit_unknown_key');
    expect(refusal(work(manifest(), { trustedKeys: [] }))).toBe('suit_unknown_key');
    const signed = decodeEnvelope(manifest({ seq: 7 }));
    const other = decodeEnvelope(manifest({ seq: 8 }));
    other.authentication = signed.authentication;
    expect(refusal(work(encodeEnvelope(other)))).toBe('suit_signature_invalid');
    expect(refusal(work(new Uint8Array([0xd8, 0x6b, 0xa0])))).toBe('suit_signature_invalid');
    const unsigned = decodeEnvelope(manifest());
    unsigned.authentication = { ...unsigned.authentication!, blocks: [] };
    expect(refusal(work(encodeEnvelope(unsigned)))).toBe('suit_signature_invalid');
  });

  it('the manifest must describe the job’s pinned Glaze: digest and size', () => {
    expect(refusal(work(manifest({ sha: 'cd'.repeat(32) })))).toBe('suit_digest_mismatch');
    expect(refusal(work(manifest({ size: SIZE + 1 })))).toBe('suit_size_mismatch');
  });

  it('vendor and class, when the work names them', () => {
    expect(refusal(work(manifest({ vendor: 'other.example' }), { vendorId: 'e4f0c7c2-5f1a-5b8e-9d3c-000000000000' }))).toBe('suit_vendor_mismatch');
    expect(refusal(work(manifest(), { classId: '00000000-0000-0000-0000-000000000000' }))).toBe('suit_class_mismatch');
  });
});
