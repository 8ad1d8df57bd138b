import { createPublicKey } from 'node:crypto';
import {
  guidToString,
  keyFingerprint,
  nonceDigest,
  nonceFrom,
  parseGuid,
  ProofError,
  readVoucherFile,
  sameBytes,
  VoucherError,
  verifyProof,
  verifyTo1d,
  verifyVoucherChain,
} from '@tips/onboarding';
import type { Clock, Random } from '../../ports.ts';
import { RendezvousError } from './errors.ts';
import type { RendezvousStore } from './store.ts';

const NONCE_TTL_MS = 2 * 60_000;
/** A registration lives at most this long, whatever its to1d says. */
const MAX_REGISTRATION_S = 30 * 86_400;

/**
 * The rendezvous server (FDO RV, issue 11 Z1): an owner's master registers where its devices
 * should go (TO0: the voucher and a to1d signed by the voucher's current owner); a device proves
 * it holds the key its voucher binds and gets the to1d back (TO1). It learns nothing it could be
 * tricked with: every registration is checked against the voucher chain, and a registration can
 * be replaced only by the same owner or a later one in that chain.
 */
export type RendezvousStep = 'to0_register' | 'to1_hello' | 'to1_prove';

export class RendezvousService {
  private counter: { inc(labels: { step: RendezvousStep; result: string }): void } | undefined;

  useMetrics(counter: { inc(labels: { step: RendezvousStep; result: string }): void }): void {
    this.counter = counter;
  }

  /** Runs one step and counts its result: `ok`, or the error code. */
  private async counted<T>(step: RendezvousStep, fn: () => Promise<T>): Promise<T> {
    try {
      const out = await fn();
      this.counter?.inc({ step, result: 'ok' });
      return out;
    } catch (e) {
      this.counter?.inc({ step, result: e instanceof RendezvousError ? e.code : 'error' });
      throw e;
    }
  }

  constructor(
    private readonly store: RendezvousStore,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  register(voucherBytes: Uint8Array, to1d: Uint8Array): Promise<{ guid: string; expiresAt: string }> {
    return this.counted('to0_register', () => this.registerOnce(voucherBytes, to1d));
  }

  private async registerOnce(voucherBytes: Uint8Array, to1d: Uint8Array): Promise<{ guid: string; expiresAt: string }> {
    let chain: ReturnType<typeof verifyVoucherChain>;
    try {
      chain = verifyVoucherChain(readVoucherFile(voucherBytes));
    } catch (e) {
      if (e instanceof VoucherError) throw new RendezvousError('voucher_invalid', `voucher: ${e.code}: ${e.message}`, 'voucher');
      throw e;
    }
    const now = this.clock.now();
    let d: ReturnType<typeof verifyTo1d>;
    try {
      d = verifyTo1d(to1d, chain.currentOwner, Math.floor(now.getTime() / 1000));
    } catch (e) {
      if (e instanceof ProofError) throw new RendezvousError('to1d_invalid', `${e.message} (it must be signed by the voucher's current owner)`, 'to1d');
      throw e;
    }
    if (!sameBytes(d.guid, chain.voucher.header.guid)) throw new RendezvousError('to1d_invalid', 'to1d names another device than the voucher', 'to1d');
    const chainPrints = chain.owners.map((k) => keyFingerprint(k));
    const expiresAt = new Date(Math.min(d.expiresAt * 1000, now.getTime() + MAX_REGISTRATION_S * 1000)).toISOString();
    await this.store.upsert(
      {
        guid: chain.guid,
        deviceKeyPem: chain.deviceKey.key.export({ type: 'spki', format: 'pem' }).toString(),
        ownerChain: chainPrints,
        to1d,
        expiresAt,
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
      },
      (existing) => {
        // Only the owner registered now, or one the device was signed over to after it, may replace it:
        // a distributor that kept a copy of the voucher cannot redirect the device back to itself.
        if (existing && existing.expiresAt > now.toISOString()) {
          const extends_ = existing.ownerChain.length <= chainPrints.length && existing.ownerChain.every((k, i) => chainPrints[i] === k);
          if (!extends_) throw new RendezvousError('registration_superseded', 'this device is registered by a later owner in its voucher chain; an earlier owner cannot replace that registration', 'voucher');
        }
      },
    );
    return { guid: chain.guid, expiresAt };
  }

  private guidOf(text: string): string {
    const g = parseGuid(text);
    if (!g) throw new RendezvousError('malformed', 'guid: expected a device GUID (32 hex digits, dashes optional)', 'guid');
    return guidToString(g);
  }

  /** TO1 step 1: a fresh challenge for a GUID we hold a live registration for. */
  hello(guidText: string): Promise<Uint8Array> {
    return this.counted('to1_hello', () => this.helloOnce(guidText));
  }

  private async helloOnce(guidText: string): Promise<Uint8Array> {
    const guid = this.guidOf(guidText);
    const now = this.clock.now();
    const reg = await this.store.find(guid);
    if (!reg || reg.expiresAt <= now.toISOString()) throw new RendezvousError('guid_unknown', 'rendezvous holds no registration for this device', 'guid');
    const nonce = this.random.bytes(16);
    await this.store.putNonce(nonceDigest(nonce), guid, new Date(now.getTime() + NONCE_TTL_MS).toISOString());
    return nonce;
  }

  /** TO1 step 2: the device's proof over [guid, nonce] with its voucher's key → the owner's signed redirect. */
  prove(guidText: string, proof: Uint8Array): Promise<Uint8Array> {
    return this.counted('to1_prove', () => this.proveOnce(guidText, proof));
  }

  private async proveOnce(guidText: string, proof: Uint8Array): Promise<Uint8Array> {
    const guid = this.guidOf(guidText);
    const now = this.clock.now();
    const reg = await this.store.find(guid);
    if (!reg || reg.expiresAt <= now.toISOString()) throw new RendezvousError('guid_unknown', 'rendezvous holds no registration for this device', 'guid');
    let fields: ReturnType<typeof verifyProof>;
    try {
      fields = verifyProof(proof, createPublicKey(reg.deviceKeyPem), 'tips-to1-device');
    } catch (e) {
      if (e instanceof ProofError) throw new RendezvousError('proof_invalid', `${e.message}: the device did not prove possession of the key its voucher binds`, 'proof');
      throw e;
    }
    const [g, n] = fields;
    let nonce: Uint8Array;
    try {
      nonce = nonceFrom(n, 'proof');
    } catch (e) {
      throw new RendezvousError('proof_invalid', (e as Error).message, 'proof');
    }
    if (!(g instanceof Uint8Array) || guidToString(g) !== guid) throw new RendezvousError('proof_invalid', 'the proof names another device', 'proof');
    if (!(await this.store.takeNonce(nonceDigest(nonce), guid, now.toISOString()))) throw new RendezvousError('proof_invalid', 'the proof is over a nonce rendezvous did not give this device, or one already used or expired', 'proof');
    return reg.to1d;
  }
}
