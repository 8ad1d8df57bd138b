import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coseKid, decodeCoseSingle, decodeEnvelope, sigStructure } from '@tips/suit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const BIN = join(ROOT, 'apps', 'cli', 'bin', 'tips.js');
const VECTORS = join(ROOT, 'packages', 'suit', 'test', 'vectors');
let dir: string;

function tips(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'suit', ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, TIPS_CONFIG: join(dir, 'config.json') } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function openssl(...args: string[]): string {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A failure is exactly one line on stderr, "error: <code>: ...", and no stack trace. */
function expectOneLineError(r: { err: string }, code: string): void {
  const lines = r.err.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^error: ${code}: `));
  expect(r.err).not.toMatch(/\n\s+at /);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-suit-cli-'));
  writeFileSync(join(dir, 'payload.bin'), Buffer.from('a Glaze payload '.repeat(64)));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('S8 tips suit: create, sign, inspect, verify', { timeout: 120_000 }, () => {
  it('every command has --help and exits 0; the exit codes it states are the ones used', () => {
    for (const c of [[], ['inspect'], ['create'], ['sign'], ['verify'], ['keygen']]) {
      const r = tips(...c, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Usage: tips suit/);
    }
    // Verification failures exit 8 (asserted below), usage errors 2.
    const help = tips('--help').out;
    expect(help).toMatch(/verification failures exit 8, usage errors 2/);
    expect(help).not.toMatch(/verification failures exit 1/);
  });

  it('keygen → create (integrated) → verify with every check → inspect', () => {
    expect(tips('keygen', '--alg', 'es256', '--out', 'author').code).toBe(0);
    expect(statSync(join(dir, 'author.key')).mode & 0o777).toBe(0o600);
    const c = tips('create', '--vendor-domain', 'tips.example', '--class', 'pi4', '--component', 'rootfs', '--seq', '5', '--payload', 'payload.bin', '--integrated', '--text', 'phase 1', '--key', 'author.key', '--out', 'env.suit', '--json');
    expect(c.code, c.err).toBe(0);
    expect(JSON.parse(c.out)).toMatchObject({ signed: true, classId: expect.any(String) });

    const v = tips('verify', '--key', 'author.pub', 'env.suit', '--seq', '4', '--vendor', 'tips.example', '--class', 'pi4', '--component', 'rootfs', '--json');
    expect(v.code, v.err).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({
      ok: true,
      sequenceNumber: '5',
      checks: expect.arrayContaining(['vendor', 'class', 'sequence > 4', 'integrated payloads']),
      payloads: [{ name: '#payload', component: 0, size: 1024 }],
    });
    const human = tips('verify', '--key', 'author.pub', 'env.suit');
    expect(human.code, human.err).toBe(0);
    expect(human.out).toMatch(/payload #payload \(1024 bytes\) matches the image digest of component 0/);
    // UUIDs work as well as domain/class info.
    const ids = JSON.parse(c.out) as { vendorId: string; classId: string };
    expect(tips('verify', '--key', 'author.pub', 'env.suit', '--vendor', ids.vendorId, '--class', ids.classId).code).toBe(0);

    const j = tips('inspect', 'env.suit', '--json');
    expect(j.code).toBe(0);
    const parsed = JSON.parse(j.out);
    expect(parsed.manifest['manifest-sequence-number']).toBe(5);
    expect(parsed.manifest.common['shared-sequence'][0]['directive-override-parameters']['vendor-identifier']).toBe(ids.vendorId);
    const d = tips('inspect', 'env.suit');
    expect(d.out).toMatch(/^107\(\{/);
    expect(d.out).toContain('<< 18([');
  });

  it('verification failures exit 8 with a one-line reason', () => {
    const rollback = tips('verify', '--key', 'author.pub', 'env.suit', '--seq', '5');
    expect(rollback.code).toBe(8);
    expectOneLineError(rollback, 'suit_rollback');

    const vendor = tips('verify', '--key', 'author.pub', 'env.suit', '--vendor', 'other.example');
    expect(vendor.code).toBe(8);
    expectOneLineError(vendor, 'suit_vendor_mismatch');

    const cls = tips('verify', '--key', 'author.pub', 'env.suit', '--vendor', 'tips.example', '--class', 'pi5');
    expect(cls.code).toBe(8);
    expectOneLineError(cls, 'suit_class_mismatch');

    expect(tips('keygen', '--alg', 'es256', '--out', 'stranger').code).toBe(0);
    const wrong = tips('verify', '--key', 'stranger.pub', 'env.suit');
    expect(wrong.code).toBe(8);
    expectOneLineError(wrong, 'suit_signature_invalid');

    // A flipped bit in the integrated payload (the envelope's last bytes) leaves the signature valid,
    // but the payload no longer matches the image digest the signed manifest gives it.
    const bytes = readFileSync(join(dir, 'env.suit'));
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 0x01;
    writeFileSync(join(dir, 'tampered-payload.suit'), bytes);
    expect(decodeEnvelope(new Uint8Array(bytes)).integrated.size).toBe(1);
    const tp = tips('verify', '--key', 'author.pub', 'tampered-payload.suit');
    expect(tp.code).toBe(8);
    expectOneLineError(tp, 'suit_payload_mismatch');
    expect(tp.err).toContain('integrated payload "#payload" (component 0)');
    expect(tp.out).toBe('');
    // A flipped bit inside the signed manifest does not.
    const m = Buffer.from(readFileSync(join(dir, 'env.suit')));
    const at = m.indexOf(Buffer.from(decodeEnvelope(new Uint8Array(m)).manifestBytes)) + 3;
    m[at] = m[at]! ^ 0x01;
    writeFileSync(join(dir, 'tampered-manifest.suit'), m);
    const t2 = tips('verify', '--key', 'author.pub', 'tampered-manifest.suit');
    expect(t2.code).toBe(8);
    expect(t2.err).toMatch(/^error: (suit_digest_mismatch|suit_bad_type|cbor_[a-z_]+): /);
  });

  it('usage errors exit 2 with one line', () => {
    const noKey = tips('verify', 'env.suit');
    expect(noKey.code).toBe(2);
    expectOneLineError(noKey, 'usage');
    const badSeq = tips('verify', '--key', 'author.pub', 'env.suit', '--seq', '-1');
    expect(badSeq.code).toBe(2);
    expectOneLineError(badSeq, 'bad_sequence_number');
    const both = tips('create', '--vendor-domain', 'a.b', '--class', 'c', '--component', 'x', '--seq', '1', '--payload', 'payload.bin', '--out', 'x.suit');
    expect(both.code).toBe(2);
    expectOneLineError(both, 'bad_delivery');
    const unwritable = tips('keygen', '--alg', 'ed25519', '--out', join('no', 'such', 'dir', 'k'));
    expect(unwritable.code).toBe(1);
    expectOneLineError(unwritable, 'write_failed');
    const badAlg = tips('keygen', '--alg', 'rsa', '--out', 'k');
    expect(badAlg.code).toBe(2);
    expectOneLineError(badAlg, 'bad_alg');
    const missing = tips('inspect', 'nope.suit');
    expect(missing.code).toBe(2);
    expectOneLineError(missing, 'file_unreadable');
  });

  it('URI delivery: create unsigned, then sign; the envelope has no payload inside', () => {
    const c = tips('create', '--vendor-domain', 'tips.example', '--class', 'pi4', '--component', 'app', '--seq', '9', '--payload', 'payload.bin', '--uri', 'https://m.example/g/1', '--out', 'unsigned.suit');
    expect(c.code, c.err).toBe(0);
    const u = tips('verify', '--key', 'author.pub', 'unsigned.suit');
    expect(u.code).toBe(8);
    expectOneLineError(u, 'suit_unsigned');
    expect(tips('sign', '--key', 'author.key', '--in', 'unsigned.suit', '--out', 'signed.suit').code).toBe(0);
    expect(tips('verify', '--key', 'author.pub', 'signed.suit', '--seq', '8').code).toBe(0);
    expect(decodeEnvelope(new Uint8Array(readFileSync(join(dir, 'signed.suit')))).integrated.size).toBe(0);
    const pubAsSigner = tips('sign', '--key', 'author.pub', '--in', 'unsigned.suit', '--out', 'x.suit');
    expect(pubAsSigner.code).toBe(2);
    expectOneLineError(pubAsSigner, 'not_a_private_key');
  });
});

describe('S8 tips suit cross-checked with openssl', { timeout: 120_000 }, () => {
  it('a P-256 key made by openssl genpkey signs an envelope the verifier accepts', () => {
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ossl-ec.pem');
    openssl('pkey', '-in', 'ossl-ec.pem', '-pubout', '-out', 'ossl-ec.pub');
    const c = tips('create', '--vendor-domain', 'tips.example', '--class', 'pi4', '--component', 'rootfs', '--seq', '1', '--payload', 'payload.bin', '--integrated', '--key', 'ossl-ec.pem', '--out', 'ossl-ec.suit');
    expect(c.code, c.err).toBe(0);
    const v = tips('verify', '--key', 'ossl-ec.pub', 'ossl-ec.suit', '--vendor', 'tips.example', '--class', 'pi4');
    expect(v.code, v.err).toBe(0);
  });

  it('an Ed25519 signature made by tips verifies with openssl pkeyutl over the COSE Sig_structure', () => {
    openssl('genpkey', '-algorithm', 'ed25519', '-out', 'ossl-ed.pem');
    openssl('pkey', '-in', 'ossl-ed.pem', '-pubout', '-out', 'ossl-ed.pub');
    expect(tips('create', '--vendor-domain', 'tips.example', '--class', 'pi4', '--component', 'rootfs', '--seq', '2', '--payload', 'payload.bin', '--uri', 'https://m/g', '--out', 'ed-unsigned.suit').code).toBe(0);
    expect(tips('sign', '--key', 'ossl-ed.pem', '--in', 'ed-unsigned.suit', '--out', 'ed.suit').code).toBe(0);
    expect(tips('verify', '--key', 'ossl-ed.pub', 'ed.suit').code).toBe(0);

    const env = decodeEnvelope(new Uint8Array(readFileSync(join(dir, 'ed.suit'))));
    const cose = decodeCoseSingle(env.authentication!.blocks[0]!);
    expect(cose.protectedHeaders.get(1)).toBe(-8);
    expect(coseKid(cose)).toBeUndefined();
    writeFileSync(join(dir, 'tbs.bin'), sigStructure('Signature1', cose.protectedBytes, new Uint8Array(0), env.authentication!.digestBytes));
    writeFileSync(join(dir, 'sig.bin'), cose.tag);
    expect(openssl('pkeyutl', '-verify', '-pubin', '-inkey', 'ossl-ed.pub', '-rawin', '-in', 'tbs.bin', '-sigfile', 'sig.bin')).toMatch(/Signature Verified Successfully/);
  });

  it('the public libcsuit vector verifies with the published trust anchor', () => {
    const r = spawnSync(process.execPath, [BIN, 'suit', 'verify', '--key', join(VECTORS, 'libcsuit', 'trust_anchor_secp256r1_pub.pem'), join(VECTORS, 'libcsuit', 'suit_manifest_exp1.suit'), '--vendor', 'fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});
