/**
 * TO2's last message: what the owner's master sends the device once it has proven its key (the
 * Metal Object it became, an enrollment credential, the agent configuration). FDO encrypts TO2
 * after a key exchange (TO2.ProveDevice carries the device's half); TIPS does the same with less:
 *
 * - the device makes a fresh P-256 ECDH key and puts its public half in the proof it signs with
 *   its voucher's key (`tips-to2-device`), so the key is bound to the device and to this nonce;
 * - the master makes its own fresh ECDH key, derives an AES-256-GCM key with HKDF-SHA256 (salt =
 *   the owner's nonce, info = `tips-to2-setup` and the GUID) and encrypts the setup (AAD = GUID ‖
 *   nonce); it signs `[tips-to2-setup, guid, nonce, master ECDH key, iv, ciphertext]` with the
 *   onboarding key the voucher ends at — the device checks it with the key the chain names.
 *
 * A passive listener learns nothing (the enrollment secret inside stays secret over plain HTTP);
 * an active one cannot swap the setup (owner signature) nor re-use one (nonce, single use).
 */
import { createCipheriv, createDecipheriv, createECDH, createHash, hkdfSync, type KeyObject, randomBytes } from 'node:crypto';
import type { FdoPublicKey } from './codec.ts';
import { ProofError, sameBytes, signProof, verifyProof } from './protocol.ts';

const INFO = 'tips-to2-setup';

export interface SetupKey {
  /** Uncompressed P-256 point (65 bytes): what goes into the device's proof. */
  publicRaw: Uint8Array;
  /** ECDH with the other side's raw public point. */
  agree(otherRaw: Uint8Array): Uint8Array;
}

/** A fresh ECDH key pair, for one TO2 only. */
export function makeSetupKey(): SetupKey {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return {
    publicRaw: new Uint8Array(ecdh.getPublicKey()),
    agree(otherRaw) {
      if (!(otherRaw instanceof Uint8Array) || otherRaw.length !== 65 || otherRaw[0] !== 4) throw new ProofError('proof_malformed', 'setup key: expected an uncompressed P-256 point (65 bytes)');
      try {
        return new Uint8Array(ecdh.computeSecret(otherRaw));
      } catch {
        throw new ProofError('proof_malformed', 'setup key: not a point on P-256');
      }
    },
  };
}

function aesKey(shared: Uint8Array, guid: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, nonce, Buffer.concat([Buffer.from(INFO), guid]), 32));
}

/** The master's side: encrypts `plaintext` to the device's setup key and signs it with the owner key. */
export function sealSetup(ownerKey: KeyObject, guid: Uint8Array, nonce: Uint8Array, deviceSetupKey: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const mine = makeSetupKey();
  const key = aesKey(mine.agree(deviceSetupKey), guid, nonce);
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.concat([guid, nonce]));
  const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return signProof(ownerKey, 'tips-to2-setup', [guid, nonce, mine.publicRaw, new Uint8Array(iv), new Uint8Array(ct)]);
}

/** The device's side: checks the owner's signature, this GUID and nonce, then decrypts. */
export function openSetup(bytes: Uint8Array, owner: KeyObject | FdoPublicKey, guid: Uint8Array, nonce: Uint8Array, mine: SetupKey): Uint8Array {
  const [g, n, theirs, iv, ct] = verifyProof(bytes, owner, 'tips-to2-setup');
  if (!(g instanceof Uint8Array) || !sameBytes(g, guid) || !(n instanceof Uint8Array) || !sameBytes(n, nonce)) throw new ProofError('proof_invalid', 'tips-to2-setup: made for another device or another nonce');
  if (!(theirs instanceof Uint8Array) || !(iv instanceof Uint8Array) || iv.length !== 12 || !(ct instanceof Uint8Array) || ct.length < 16) throw new ProofError('proof_malformed', 'tips-to2-setup: expected [guid, nonce, key, iv(12), ciphertext]');
  const d = createDecipheriv('aes-256-gcm', aesKey(mine.agree(theirs), guid, nonce), iv);
  d.setAAD(Buffer.concat([guid, nonce]));
  d.setAuthTag(ct.subarray(ct.length - 16));
  try {
    return new Uint8Array(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]));
  } catch {
    throw new ProofError('proof_invalid', 'tips-to2-setup: does not decrypt with this device\'s setup key');
  }
}

// ---------------------------------------------------------------------------- what TO2 carries

/** One interface as the device reports it: nobody declares a MAC for it. */
export interface ReportedInterface {
  name: string;
  mac: string;
  type: 'ethernet' | 'wifi' | 'other';
  /** The interface the device boots from (Phase 1 runs over it). */
  pxe?: boolean;
}

/** What the device says about itself at TO2 hello (the profile is chosen on it); its proof signs `deviceFactsDigest`. */
export interface DeviceFacts {
  interfaces: ReportedInterface[];
  ramMb?: number;
  storageMb?: number;
  arch?: string;
  purpose?: string;
}

/** SHA-256 of the facts' JSON as sent (both sides serialise the same object the same way). */
export function deviceFactsDigest(facts: DeviceFacts): Uint8Array {
  return new Uint8Array(createHash('sha256').update(JSON.stringify(facts)).digest());
}

/** The setup the owner's master seals for the device: what it became and how it enrolls. */
export interface DeviceSetup {
  tipsId: string;
  metalId: string;
  /** The master's HTTPS base URL. */
  masterUrl: string;
  estUrl: string;
  /** The root the device pins for the master's TLS (its config.json caFile). */
  caPem: string;
  /** One-use EST enrollment secret for this metal. */
  enrollment: { secretId: string; secret: string };
  profile: string;
  phase1Glaze: string | null;
  protocols: ('http' | 'coap')[];
  agent: { vendorId?: string | null; classId?: string | null; managedPaths?: string[]; pollIntervalSeconds?: number; push?: boolean };
}

/** Parses a decrypted setup strictly enough that nothing half-formed is written to the device's disk. */
export function parseDeviceSetup(bytes: Uint8Array): DeviceSetup {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new ProofError('proof_malformed', 'setup: not JSON');
  }
  const str = (k: string, re: RegExp) => {
    if (typeof o[k] !== 'string' || !re.test(o[k] as string)) throw new ProofError('proof_malformed', `setup.${k}: missing or malformed`);
    return o[k] as string;
  };
  str('tipsId', /^mtl_[0-9a-z]{26}$/);
  str('masterUrl', /^https:\/\/\S+$/);
  str('estUrl', /^https:\/\/\S+$/);
  str('caPem', /-----BEGIN CERTIFICATE-----/);
  const e = o.enrollment as Record<string, unknown> | undefined;
  if (typeof e?.secretId !== 'string' || typeof e.secret !== 'string' || e.secretId.includes(':')) throw new ProofError('proof_malformed', 'setup.enrollment: missing or malformed');
  return o as unknown as DeviceSetup;
}
