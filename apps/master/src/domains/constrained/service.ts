import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { OwnerId } from '@tips/core';
import type { CoapMetrics, DatagramPeer } from '@tips/coap';
import type { Counter } from 'prom-client';
import type { BusHub } from '../../bus/bus.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import type { DiscoveryService } from '../discovery/service.ts';
import type { MetalPrincipal } from '../enrollment/model.ts';
import type { EnrollmentService } from '../enrollment/service.ts';
import type { MetalService } from '../metals/service.ts';
import { ConstrainedError } from './errors.ts';
import { MAX_LIVE_PSKS_PER_METAL, PSK_IDENTITY_RE, PSK_KEY_BYTES, type PskCredential } from './model.ts';
import type { ConstrainedStore } from './store.ts';

export interface ConstrainedMetrics {
  pskLookups: Counter<'result'>;
  transferLookups?: Counter<'result'>;
  coap: CoapMetrics;
}

/** A 32-byte AES key that seals PSKs at rest (`<ca-dir>/psk-wrap.key` in production). */
export type PskWrapKey = () => Promise<Uint8Array>;

const GCM_NONCE = 12;
const GCM_TAG = 16;

/** An in-memory wrapping key for tests and throw-away masters: PSKs do not survive a restart with it. */
export function ephemeralPskWrapKey(): PskWrapKey {
  const key = new Uint8Array(randomBytes(32));
  return async () => key;
}

/**
 * The master's side of constrained metals (S13): their DTLS pre-shared keys, and who a DTLS peer
 * is. `principal` checks revocation, retirement and blocking on every call, like mTLS does for the
 * HTTP metal API.
 */
export class ConstrainedService {
  private metrics: ConstrainedMetrics | undefined;
  private readonly accessListeners: (() => void)[] = [];

  constructor(
    private readonly store: ConstrainedStore,
    private readonly metals: MetalService,
    private readonly enrollment: EnrollmentService,
    private readonly discovery: DiscoveryService,
    events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly wrapKey: PskWrapKey,
  ) {
    events.on('metal.deleted', (e) => this.store.forgetMetal(e.metalId));
  }

  useMetrics(m: ConstrainedMetrics): void {
    this.metrics = m;
  }

  /** Called whenever a PSK is revoked here (the CoAP endpoint's Block2 transfers re-authenticate). */
  onAccessChanged(listener: () => void): void {
    this.accessListeners.push(listener);
  }

  /**
   * The other replicas (issue 13): a PSK revoked here is published, and what another replica revokes
   * that the constrained path checks (a PSK, a metal's certificates/access — revoked, retired,
   * blocked, deleted —, its eligibility) calls the same listeners as a local revocation, so its
   * Block2 transfers here re-authenticate at their next block. While the bus is down the transfers'
   * own re-check (1 s) is the bound (BusHub logs bus_down and /readyz says degraded); when it comes
   * back, every transfer re-checks once (messages may have been missed).
   */
  useBus(bus: BusHub): void {
    this.bus = bus;
    const changed = () => {
      for (const l of this.accessListeners) l();
    };
    bus.on('tips.psk.revoked', changed);
    bus.on('tips.cert.revoked', changed);
    bus.on('tips.metal.block', (m) => {
      if (m.blocked) changed();
    });
    bus.on('tips.metal.eligibility', changed);
    bus.onResync(changed);
  }
  private bus: BusHub | undefined;

  /** Counts how a Block2 request found its transfer: hit (no re-check), miss (new), recheck. */
  transferLookup(result: 'hit' | 'miss' | 'recheck'): void {
    const counter = this.metrics?.transferLookups;
    if (!counter) return;
    // Counted per Block2 block: the labelled child is resolved once per result, not per call.
    if (this.lookupChildren?.counter !== counter) this.lookupChildren = { counter, children: new Map() };
    let child = this.lookupChildren.children.get(result);
    if (!child) {
      child = counter.labels({ result });
      this.lookupChildren.children.set(result, child);
    }
    child.inc();
  }
  private lookupChildren: { counter: Counter<'result'>; children: Map<string, { inc(): void }> } | undefined;

  /** What the CoapServer reports to (no-ops until metrics are installed). */
  coapMetrics(): CoapMetrics {
    return {
      request: (method, code) => this.metrics?.coap.request?.(method, code),
      blockTransfer: (d) => this.metrics?.coap.blockTransfer?.(d),
      observers: (n) => this.metrics?.coap.observers?.(n),
    };
  }

  // --- owner API ---------------------------------------------------------------------------------

  /** A new PSK for the metal: the key is returned here once and never again. */
  async issuePsk(ownerId: OwnerId, metalRef: string): Promise<{ credential: PskCredential; key: string }> {
    const metal = await this.metals.get(ownerId, metalRef);
    if ((await this.enrollment.retiredAt(metal.id)) !== null) throw new ConstrainedError('metal_retired', `metal "${metal.name}" is retired`, 'metal');
    const all = await this.store.listPsks(metal.id);
    if (all.filter((c) => c.revokedAt === null).length >= MAX_LIVE_PSKS_PER_METAL) {
      throw new ConstrainedError('psk_limit_reached', `metal "${metal.name}" already has ${MAX_LIVE_PSKS_PER_METAL} live PSKs: revoke one first`, 'metal');
    }
    const n = all.reduce((max, c) => Math.max(max, Number(c.identity.slice(c.identity.lastIndexOf('.') + 1))), 0) + 1;
    const key = this.random.bytes(PSK_KEY_BYTES);
    const credential: PskCredential = { identity: `${metal.id}.${n}`, ownerId, metalId: metal.id, createdAt: this.clock.now().toISOString(), revokedAt: null };
    await this.store.insertPsk(credential, await this.seal(credential.identity, key));
    return { credential, key: Buffer.from(key).toString('hex') };
  }

  async listPsks(ownerId: OwnerId, metalRef: string): Promise<PskCredential[]> {
    const metal = await this.metals.get(ownerId, metalRef);
    return this.store.listPsks(metal.id);
  }

  async revokePsk(ownerId: OwnerId, metalRef: string, identity: string): Promise<void> {
    const metal = await this.metals.get(ownerId, metalRef);
    if (!(await this.store.revokePsk(metal.id, identity, this.clock.now().toISOString()))) {
      throw new ConstrainedError('psk_not_found', `metal "${metal.name}" has no live PSK "${identity.slice(0, 80)}"`, 'identity');
    }
    for (const l of this.accessListeners) l();
    await this.bus?.publish('tips.psk.revoked', { metalId: metal.id });
  }

  // --- the DTLS transport and the CoAP routes ----------------------------------------------------

  /** The key for a DTLS PSK handshake; undefined (handshake refused) for unknown, revoked or retired. */
  async pskLookup(identity: string): Promise<Uint8Array | undefined> {
    const found = PSK_IDENTITY_RE.test(identity) ? await this.store.findPsk(identity) : undefined;
    let result = 'ok';
    if (!found) result = 'unknown';
    else if (found.credential.revokedAt !== null) result = 'revoked';
    else if ((await this.enrollment.retiredAt(found.credential.metalId)) !== null) result = 'retired';
    this.metrics?.pskLookups.inc({ result });
    if (result !== 'ok' || !found) return undefined;
    return this.unseal(identity, found.sealedKey);
  }

  /**
   * The metal at the other end of a DTLS session, checked now: a certificate goes through
   * enrollment exactly as on mTLS (issued by us, active, in validity, not retired, not blocked); a
   * PSK must be live, its metal not retired and not blocked. A plain-UDP peer is nobody.
   */
  async principal(peer: DatagramPeer): Promise<MetalPrincipal> {
    const id = peer.identity;
    if (id.kind === 'certificate') {
      const leaf = id.chain[0];
      // The transport verified the chain against our CA before the session existed.
      return this.enrollment.authenticateMetal(leaf ? { authorized: true, der: leaf } : undefined);
    }
    if (id.kind !== 'psk') throw new ConstrainedError('peer_unauthenticated', 'a DTLS identity is required');
    const found = PSK_IDENTITY_RE.test(id.identity) ? await this.store.findPsk(id.identity) : undefined;
    if (!found || found.credential.revokedAt !== null) throw new ConstrainedError('peer_unauthenticated', 'the PSK identity is not a live credential');
    const { metalId, ownerId } = found.credential;
    if ((await this.enrollment.retiredAt(metalId)) !== null) throw new ConstrainedError('metal_retired', 'this metal has been retired by its owner');
    if (await this.discovery.isBlocked(metalId)) throw new ConstrainedError('metal_blocked', 'this metal is blocked by its owner');
    // Signed reports are checked against the metal's certificate key, if it has one; a PSK-only
    // metal has none, and its reports are refused as unsigned by this metal.
    const spki = await this.enrollment.activeKeyOfMetal(ownerId, metalId).catch(() => new Uint8Array(0));
    return { metalId, ownerId, serial: `psk:${id.identity}`, fingerprint: '', notAfter: '', spki };
  }

  private async seal(identity: string, key: Uint8Array): Promise<Uint8Array> {
    const nonce = this.random.bytes(GCM_NONCE);
    const c = createCipheriv('aes-256-gcm', await this.wrapKey(), nonce);
    c.setAAD(Buffer.from(identity, 'utf8'));
    const ct = Buffer.concat([c.update(key), c.final()]);
    return new Uint8Array(Buffer.concat([nonce, ct, c.getAuthTag()]));
  }

  private async unseal(identity: string, sealed: Uint8Array): Promise<Uint8Array | undefined> {
    try {
      const d = createDecipheriv('aes-256-gcm', await this.wrapKey(), sealed.subarray(0, GCM_NONCE));
      d.setAAD(Buffer.from(identity, 'utf8'));
      d.setAuthTag(sealed.subarray(sealed.length - GCM_TAG));
      return new Uint8Array(Buffer.concat([d.update(sealed.subarray(GCM_NONCE, sealed.length - GCM_TAG)), d.final()]));
    } catch {
      // A row sealed under another wrapping key (or tampered with) authenticates nobody.
      return undefined;
    }
  }
}

