import { encodeBase32, type OwnerId } from '@tips/core';
import { authenticate, componentKey, decodeStage, manifestComponents, SuitError, type TrustedKey, importKey } from '@tips/suit';
import { decodeReenrollment, decodeTrustList, ENROLLMENT_COMPONENT, TRUST_LIST_COMPONENT } from '@tips/trust';
import type { Clock, Random } from '../../ports.ts';
import type { KeyService } from '../keys/service.ts';
import type { MetalService } from '../metals/service.ts';
import { DirectiveError } from './errors.ts';
import { type Directive, type DirectiveKind, MAX_DIRECTIVE_BYTES } from './model.ts';
import type { DirectiveStore } from './store.ts';

const KINDS: [string, DirectiveKind][] = [
  [componentKey(TRUST_LIST_COMPONENT), 'trust-list'],
  [componentKey(ENROLLMENT_COMPONENT), 'reenroll'],
];

/**
 * Signed orders to metals (S5, S6, S14). The master checks at upload what it can — the envelope is
 * signed by one of the owner's active operator keys, names one known component and carries a
 * well-formed payload — so an operator's mistake is a 4xx now rather than a refusal on every metal;
 * the metal checks everything again against its own trust list, since the master is not trusted to.
 */
export class DirectiveService {
  constructor(
    private readonly store: DirectiveStore,
    private readonly metals: MetalService,
    private readonly keys: KeyService,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  private metrics: { published: { inc(labels: { kind: string }): void } } | undefined;
  useMetrics(m: { published: { inc(labels: { kind: string }): void } }): void {
    this.metrics = m;
  }

  async upload(ownerId: OwnerId, envelope: Uint8Array, metalRef: string | undefined): Promise<Directive> {
    if (envelope.length === 0 || envelope.length > MAX_DIRECTIVE_BYTES) throw new DirectiveError('directive_malformed', `a SUIT envelope of 1 to ${MAX_DIRECTIVE_BYTES} bytes is expected`, 'body');
    const trust: TrustedKey[] = (await this.keys.activeKeys(ownerId)).map((k) => ({ ...importKey(k.publicKeyPem), name: k.id }));
    let keyId: string;
    let sequenceNumber: string;
    let kind: DirectiveKind | undefined;
    let payloads: Uint8Array[];
    try {
      const auth = authenticate(decodeStage(envelope), trust);
      keyId = (auth.key as TrustedKey).name!;
      sequenceNumber = String(auth.manifest.sequenceNumber);
      const components = manifestComponents(auth.manifest);
      kind = components.length === 1 ? KINDS.find(([k]) => k === componentKey(components[0]!))?.[1] : undefined;
      payloads = [...auth.envelope.integrated.values()];
    } catch (e) {
      if (!(e instanceof SuitError)) throw e;
      if (e.code === 'suit_signature_invalid' || e.code === 'suit_untrusted_key' || e.code === 'suit_unsigned') {
        throw new DirectiveError('directive_untrusted', `the envelope is not signed by one of your active keys (${e.code})`, 'body');
      }
      throw new DirectiveError('directive_malformed', e.message, 'body');
    }
    if (!kind) throw new DirectiveError('directive_component_unknown', 'components: expected exactly ["tips","trust-list"] or ["tips","enrollment"]', 'body');
    if (payloads.length !== 1) throw new DirectiveError('directive_malformed', `integrated payloads: expected exactly one, came ${payloads.length}`, 'body');
    try {
      if (kind === 'trust-list') decodeTrustList(payloads[0]!);
      else decodeReenrollment(payloads[0]!);
    } catch (e) {
      throw new DirectiveError('directive_malformed', `payload: ${(e as Error).message}`, 'body');
    }
    let metalId: string | null = null;
    if (kind === 'reenroll') {
      if (metalRef === undefined) throw new DirectiveError('directive_metal_required', 'a re-enrollment order is for one metal: give metal', 'metal');
      metalId = (await this.metals.get(ownerId, metalRef)).id;
    } else if (metalRef !== undefined) {
      throw new DirectiveError('directive_metal_unexpected', 'a trust-list update is for every metal of the owner: give no metal', 'metal');
    }
    const d: Directive = {
      id: `dir_${encodeBase32(this.random.bytes(16))}`,
      ownerId,
      kind,
      metalId,
      keyId,
      sequenceNumber,
      envelope,
      createdAt: this.clock.now().toISOString(),
    };
    await this.store.insert(d);
    this.metrics?.published.inc({ kind: d.kind });
    return d;
  }

  list(ownerId: OwnerId): Promise<Directive[]> {
    return this.store.list(ownerId, 200);
  }

  /** What a metal is to consider: the owner's newest trust-list update and its own newest re-enrollment order. */
  async forMetal(ownerId: OwnerId, metalId: string): Promise<Directive[]> {
    const found = await Promise.all([this.store.newest(ownerId, 'trust-list', null), this.store.newest(ownerId, 'reenroll', metalId)]);
    return found.filter((d): d is Directive => d !== undefined);
  }
}
