import { createHash, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { CborTag, coseSign1Sign, decodeCbor, encodeCbor } from '@tips/suit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { armorVoucher, readVoucherFile } from './armor.ts';
import { decodePublicKey, encodePublicKey, rendezvousFromUrls, rendezvousUrls, toFdoPublicKey } from './codec.ts';
import { VoucherError, type VoucherErrorCode, type VoucherLink } from './errors.ts';
import {
  createVoucher,
  credentialMatchesVoucher,
  decodeDeviceCredential,
  decodeVoucher,
  encodeVoucher,
  extendVoucher,
  guidToString,
  headerInfoHash,
  parseGuid,
  verifyVoucher,
  verifyVoucherChain,
} from './voucher.ts';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const GUID = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const SECRET = new Uint8Array(32).fill(7);

function device(mfr = p256(), guid = GUID) {
  const dev = p256();
  const made = createVoucher({
    guid,
    deviceInfo: 'vendor=acme;class=sensor;model=x1',
    rendezvous: rendezvousFromUrls(['https://rv.example.com:8041', 'http://192.0.2.7:8040']),
    manufacturerKey: mfr.privateKey,
    deviceKey: dev.publicKey,
    hmacSecret: SECRET,
  });
  return { mfr, dev, ...made };
}

/** manufacturer → d1 → d2 → owner: three entries. */
function threeHops() {
  const d = device();
  const d1 = p256();
  const d2 = p256();
  const owner = p256();
  const v1 = extendVoucher(d.voucher, d.mfr.privateKey, d1.publicKey);
  const v2 = extendVoucher(v1, d1.privateKey, d2.publicKey);
  const v3 = extendVoucher(v2, d2.privateKey, owner.publicKey);
  return { ...d, d1, d2, owner, v1, v2, v3 };
}

function refusal(fn: () => unknown): { code: VoucherErrorCode; link: VoucherLink; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof VoucherError) return { code: err.code, link: err.link, message: err.message };
    throw err;
  }
  throw new Error('expected a VoucherError, came success');
}

/** Re-encodes a voucher with its entry array replaced (entries given as decoded CBOR values). */
function withEntries(voucher: Uint8Array, f: (entries: unknown[]) => unknown[]): Uint8Array {
  const v = decodeCbor(voucher) as unknown[];
  return encodeCbor([v[0], v[1], v[2], v[3], f(v[4] as unknown[])] as never);
}

/** An entry signed by `signer` over a payload the test chooses (what a forger or a buggy signer makes). */
function forgedEntry(signer: KeyObject, prevHash: Uint8Array, hdrHash: Uint8Array, next: KeyObject): CborTag {
  const pk = toFdoPublicKey(next);
  const payload = encodeCbor([[-16, prevHash], [-16, hdrHash], null, [pk.type, pk.encoding, pk.body]]);
  return decodeCbor(coseSign1Sign({ protectedHeaders: new Map([[1, -7]]), payload }, { privateKey: signer })) as CborTag;
}

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

describe('Z3 ownership vouchers: a chain of 3 hops', () => {
  it('verifies manufacturer → distributor → distributor → owner and names the facts', () => {
    const t = threeHops();
    const v = verifyVoucher(t.v3, [p256().publicKey, t.owner.publicKey]);
    expect(v.ownerKeyIndex).toBe(1);
    expect(v.guid).toBe('01020304-0506-0708-090a-0b0c0d0e0f10');
    expect(v.deviceInfo).toBe('vendor=acme;class=sensor;model=x1');
    expect(v.rendezvousUrls).toEqual(['https://rv.example.com:8041', 'http://192.0.2.7:8040']);
    expect(v.owners.map((k) => k.body)).toEqual([t.d1, t.d2, t.owner].map((k) => toFdoPublicKey(k.publicKey).body));
    expect(v.deviceKey.body).toEqual(toFdoPublicKey(t.dev.publicKey).body);
    expect(v.sha256).toBe(createHash('sha256').update(t.v3).digest('hex'));
    // Decode → encode is the identity; armour round-trips.
    expect(encodeVoucher(decodeVoucher(t.v3))).toEqual(t.v3);
    expect(readVoucherFile(new Uint8Array(Buffer.from(armorVoucher(t.v3))))).toEqual(t.v3);
    expect(readVoucherFile(t.v3)).toEqual(t.v3);
  });

  it('the device credential matches its voucher (header HMAC, GUID, manufacturer key hash) and no other', () => {
    const t = threeHops();
    const cred = decodeDeviceCredential(t.credential);
    expect(cred.active).toBe(true);
    expect(guidToString(cred.guid)).toBe(guidToString(GUID));
    expect(rendezvousUrls(cred.rendezvous)).toEqual(['https://rv.example.com:8041', 'http://192.0.2.7:8040']);
    expect(credentialMatchesVoucher(cred, decodeVoucher(t.v3))).toBe(true);
    const other = device(t.mfr, new Uint8Array(randomBytes(16)));
    expect(credentialMatchesVoucher(cred, decodeVoucher(other.voucher))).toBe(false);
    expect(credentialMatchesVoucher({ ...cred, hmacSecret: new Uint8Array(32) }, decodeVoucher(t.v3))).toBe(false);
  });

  it('only the current owner can extend, and the refusal names who that is', () => {
    const t = threeHops();
    const r = refusal(() => extendVoucher(t.v2, t.d1.privateKey, p256().publicKey));
    expect(r).toMatchObject({ code: 'voucher_not_current_owner', link: 1 });
    expect(refusal(() => extendVoucher(t.voucher, t.d1.privateKey, p256().publicKey))).toMatchObject({ code: 'voucher_not_current_owner', link: 'header' });
    expect(refusal(() => extendVoucher(t.v2, t.d2.publicKey, p256().publicKey)).code).toBe('voucher_bad_input');
  });

  it('GUIDs parse with or without dashes, and nothing else', () => {
    expect(parseGuid('01020304-0506-0708-090a-0b0c0d0e0f10')).toEqual(GUID);
    expect(parseGuid('0102030405060708090a0b0c0d0e0f10')).toEqual(GUID);
    expect(parseGuid('0102')).toBeUndefined();
  });
});

describe('Z3 ownership vouchers: each broken link refused with its index', () => {
  it('a voucher nobody signed over (no entry) is refused', () => {
    const d = device();
    expect(refusal(() => verifyVoucherChain(d.voucher))).toMatchObject({ code: 'voucher_no_entries', link: 'header' });
  });

  it('tampered header (device info changed after the manufacturer signed): entry 0', () => {
    const t = threeHops();
    const v = decodeCbor(t.v3) as unknown[];
    const header = decodeCbor(v[1] as Uint8Array) as unknown[];
    header[3] = 'vendor=acme;class=sensor;model=x1-pro';
    const tampered = encodeCbor([v[0], encodeCbor(header as never), v[2], v[3], v[4]] as never);
    const r = refusal(() => verifyVoucher(tampered, [t.owner.publicKey]));
    expect(r).toMatchObject({ code: 'entry_prev_hash_mismatch', link: 0 });
    expect(r.message).toContain('header was changed');
  });

  it('tampered header HMAC: entry 0', () => {
    const t = threeHops();
    const v = decodeCbor(t.v3) as unknown[];
    const mac = v[2] as [number, Uint8Array];
    const flipped = Uint8Array.from(mac[1]);
    flipped[0]! ^= 1;
    const tampered = encodeCbor([v[0], v[1], [mac[0], flipped], v[3], v[4]] as never);
    expect(refusal(() => verifyVoucher(tampered, [t.owner.publicKey]))).toMatchObject({ code: 'entry_prev_hash_mismatch', link: 0 });
  });

  it('device key swapped for another: the header', () => {
    const t = threeHops();
    const v = decodeCbor(t.v3) as unknown[];
    const tampered = encodeCbor([v[0], v[1], v[2], [toFdoPublicKey(p256().publicKey).body], v[4]] as never);
    expect(refusal(() => verifyVoucher(tampered, [t.owner.publicKey]))).toMatchObject({ code: 'voucher_header_mismatch', link: 'header' });
  });

  it('wrong signer: someone who is not the current owner appends an entry to themselves', () => {
    const t = threeHops();
    const thief = p256();
    const header = decodeVoucher(t.v2).header;
    const prev = sha256(decodeVoucher(t.v2).entries[1]!.bytes);
    const forged = withEntries(t.v2, (es) => [...es, forgedEntry(thief.privateKey, prev, headerInfoHash(header, -16).value, thief.publicKey)]);
    const r = refusal(() => verifyVoucher(forged, [thief.publicKey]));
    expect(r).toMatchObject({ code: 'entry_signature_invalid', link: 2 });
    expect(r.message).toContain('the key entry 1 hands ownership to');
  });

  it('entry signed by the wrong key: entry 2 re-signed by the manufacturer, payload unchanged', () => {
    const t = threeHops();
    const entry2 = decodeVoucher(t.v3).entries[2]!;
    const resigned = decodeCbor(coseSign1Sign({ protectedHeaders: new Map([[1, -7]]), payload: entry2.cose.payload! }, { privateKey: t.mfr.privateKey }));
    const forged = withEntries(t.v3, (es) => [es[0], es[1], resigned]);
    expect(refusal(() => verifyVoucher(forged, [t.owner.publicKey]))).toMatchObject({ code: 'entry_signature_invalid', link: 2 });
    // A signature byte flipped: the same link.
    const flipped = withEntries(t.v3, (es) => {
      const tag = es[2] as CborTag;
      const body = [...(tag.value as unknown[])];
      const sig = Uint8Array.from(body[3] as Uint8Array);
      sig[10]! ^= 0x40;
      body[3] = sig;
      return [es[0], es[1], new CborTag(18, body as never)];
    });
    expect(refusal(() => verifyVoucher(flipped, [t.owner.publicKey]))).toMatchObject({ code: 'entry_signature_invalid', link: 2 });
  });

  it('broken hash link: a middle entry removed, or two entries swapped', () => {
    const t = threeHops();
    const removed = withEntries(t.v3, (es) => [es[0], es[2]]);
    const r = refusal(() => verifyVoucher(removed, [t.owner.publicKey]));
    expect(r).toMatchObject({ code: 'entry_prev_hash_mismatch', link: 1 });
    expect(r.message).toContain('hash of entry 0');
    const swapped = withEntries(t.v3, (es) => [es[1], es[0], es[2]]);
    expect(refusal(() => verifyVoucher(swapped, [t.owner.publicKey]))).toMatchObject({ code: 'entry_prev_hash_mismatch', link: 0 });
  });

  it('truncated chain: the last hop cut off ends at the distributor, not at this owner', () => {
    const t = threeHops();
    const truncated = withEntries(t.v3, (es) => es.slice(0, 2));
    const r = refusal(() => verifyVoucher(truncated, [t.owner.publicKey]));
    expect(r).toMatchObject({ code: 'voucher_wrong_owner', link: 1 });
    // … and the chain itself is sound: the distributor could import it.
    expect(verifyVoucher(truncated, [t.d2.publicKey]).ownerKeyIndex).toBe(0);
    // Truncated bytes are not a voucher at all.
    expect(refusal(() => verifyVoucher(t.v3.subarray(0, t.v3.length - 5), [t.owner.publicKey])).code).toBe('voucher_malformed');
  });

  it("another owner's master refuses a sound chain: wrong owner at the last entry", () => {
    const t = threeHops();
    const r = refusal(() => verifyVoucher(t.v3, [p256().publicKey, p256().publicKey]));
    expect(r).toMatchObject({ code: 'voucher_wrong_owner', link: 2 });
    expect(r.message).toContain('not one of your onboarding keys');
  });

  it('an entry for another device (right signer, wrong GUID and device info hash): its index', () => {
    const t = threeHops();
    const v = decodeVoucher(t.v1);
    const prev = sha256(v.headerBytes, encodeCbor([v.headerHmac.alg, v.headerHmac.value]));
    const other = withEntries(t.v1, () => [forgedEntry(t.mfr.privateKey, prev, sha256(new Uint8Array(16), Buffer.from('x')), t.d1.publicKey)]);
    expect(refusal(() => verifyVoucher(other, [t.d1.publicKey]))).toMatchObject({ code: 'entry_header_info_mismatch', link: 0 });
  });

  it('P-384, Ed25519 and RSA keys: P-384 works with SHA-384, the others are not FDO key types', () => {
    const mfr = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const d = device(mfr);
    const owner = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const v = verifyVoucher(extendVoucher(d.voucher, mfr.privateKey, owner.publicKey), [owner.publicKey]);
    expect(v.manufacturerKey.type).toBe(11);
    expect(refusal(() => extendVoucher(d.voucher, mfr.privateKey, generateKeyPairSync('ed25519').publicKey)).code).toBe('voucher_unsupported');
  });
});

describe('Z3 ownership vouchers: properties', () => {
  it('a chain of any length 1..6 verifies and ends at the last key it was extended to', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (hops, guid) => {
        const d = device(p256(), guid);
        let bytes = d.voucher;
        let holder = d.mfr;
        const keys = [];
        for (let i = 0; i < hops; i++) {
          const next = p256();
          bytes = extendVoucher(bytes, holder.privateKey, next.publicKey);
          keys.push(next);
          holder = next;
        }
        const v = verifyVoucher(bytes, [holder.publicKey]);
        expect(v.owners).toHaveLength(hops);
        expect(v.guid).toBe(guidToString(guid));
        expect(encodeVoucher(decodeVoucher(bytes))).toEqual(bytes);
        // Every earlier holder's key: the chain does not end there.
        for (const k of keys.slice(0, -1)) expect(refusal(() => verifyVoucher(bytes, [k.publicKey])).code).toBe('voucher_wrong_owner');
      }),
      { numRuns: 25 },
    );
  });

  it('every single-byte change anywhere in a voucher is refused', () => {
    const t = threeHops();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: t.v3.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = Uint8Array.from(t.v3);
        bad[at]! ^= x;
        expect(() => verifyVoucher(bad, [t.owner.publicKey])).toThrow(VoucherError);
      }),
      { numRuns: 400 },
    );
  });

  it('random bytes never pass and only ever fail with a VoucherError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        expect(() => verifyVoucher(bytes, [])).toThrow(VoucherError);
        expect(() => decodeDeviceCredential(bytes)).toThrow(VoucherError);
      }),
      { numRuns: 500 },
    );
  });

  it('rendezvous addresses round-trip; bad ones are refused', () => {
    expect(rendezvousUrls(rendezvousFromUrls(['https://rv.example.com', 'http://10.0.0.1:80']))).toEqual(['https://rv.example.com:443', 'http://10.0.0.1:80']);
    for (const bad of ['ftp://x', 'not a url', 'https://rv.example.com/path', 'https://[::1]:8041']) expect(refusal(() => rendezvousFromUrls([bad])).code).toBe('voucher_bad_input');
    expect(refusal(() => rendezvousFromUrls([])).code).toBe('voucher_bad_input');
  });

  it('a GUID of the wrong size or a short HMAC secret is refused at creation', () => {
    const k = p256();
    const base = { deviceInfo: 'x', rendezvous: rendezvousFromUrls(['https://rv']), manufacturerKey: k.privateKey, deviceKey: k.publicKey };
    expect(refusal(() => createVoucher({ ...base, guid: new Uint8Array(15), hmacSecret: SECRET })).code).toBe('voucher_bad_input');
    expect(refusal(() => createVoucher({ ...base, guid: randomBytes(16), hmacSecret: new Uint8Array(16) })).code).toBe('voucher_bad_input');
  });
});

describe('Z3 decoded keys are reused, never trusted more than fresh bytes', () => {
  it('a key decoded before (cached) still refuses a pkType naming another curve, and a non-canonical spelling is refused every time', () => {
    const k = toFdoPublicKey(p256().publicKey);
    expect(decodePublicKey(encodePublicKey(k), 'header', 'k').body).toEqual(k.body);
    const again = decodePublicKey(encodePublicKey(k), 'header', 'k');
    expect(again.key).toBe(decodePublicKey(encodePublicKey(k), 'header', 'k').key);
    expect(() => decodePublicKey([11, 1, k.body], 'header', 'k')).toThrow(/pkType 11 names another curve/);
    const padded = new Uint8Array([...k.body, 0]);
    for (let i = 0; i < 2; i++) expect(() => decodePublicKey([10, 1, padded], 'header', 'k')).toThrow(VoucherError);
  });
});

