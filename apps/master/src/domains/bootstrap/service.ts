import { encodeBase32, InvalidValueError, type OwnerId, parseMac, parseName, type TipsId } from '@tips/core';
import { type DeviceSetup, deviceFactsDigest, guidToString, parseGuid } from '@tips/onboarding';
import { isUniqueViolation } from '../../db/database.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import type { AttestationVerifier, VerifierName } from '../attestation/verifier.ts';
import type { EnrollmentService } from '../enrollment/service.ts';
import type { GlazeService } from '../glazes/service.ts';
import type { MetalService } from '../metals/service.ts';
import type { Space } from '../spaces/model.ts';
import type { SpaceService } from '../spaces/service.ts';
import type { ImportedVoucher } from '../vouchers/model.ts';
import type { VoucherService } from '../vouchers/service.ts';
import { VoucherDomainError } from '../vouchers/errors.ts';
import { BootstrapError, type BootstrapErrorCode } from './errors.ts';
import {
  type AgentSettings,
  ATTESTATIONS,
  type Attestation,
  type BootstrapProfile,
  type DeviceFacts,
  LWM2M_BINDINGS,
  type Lwm2mSettings,
  MAX_EVENTS,
  type OnboardingRecord,
  type OnboardingState,
  PROTOCOLS,
  type Protocol,
  type ProfileMatch,
} from './model.ts';
import type { BootstrapStore } from './store.ts';

export interface CreateProfileInput {
  name: string;
  priority?: number;
  match?: ProfileMatch;
  phase1Glaze?: string | null;
  spaces?: string[];
  protocols?: Protocol[];
  agent?: AgentSettings;
  attestation?: Attestation;
  pcrs?: number[];
  pcrDigest?: string | null;
  /** The LwM2M part (contract K); absent or null: the master's defaults. */
  lwm2m?: Lwm2mSettings | null;
}

/** Where devices reach this master after onboarding (its HTTPS listener: EST needs it). */
export interface BootstrapUrls {
  tlsUrl: () => string | null;
}

/** A verifier that needs a round before the evidence (tpm2: the credential only the device's TPM can activate). */
export type ChallengingVerifier = AttestationVerifier & { challenge?(identity: Uint8Array, nonce: Uint8Array): Uint8Array };

/** Stages the benchmark breaks an onboarding into. */
export type OnboardingStage = 'signatures' | 'database';

export interface OnboardingMetrics {
  onboardings: { inc(labels: { result: string }): void };
}

const PCR_DIGEST = /^[0-9a-f]{64}$/;
const ARCH = /^[A-Za-z0-9_.-]{1,32}$/;
const LABEL_VALUE = /^[^\s;=][^;=]{0,127}$/;
const MAX_PROFILE_SPACES = 16;

/** device-info "k=v;k=v" → map (only what parses). */
export function deviceInfoLabels(info: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of info.split(';')) {
    const i = pair.indexOf('=');
    if (i <= 0) continue;
    const k = pair.slice(0, i);
    const v = pair.slice(i + 1);
    if (/^[a-z0-9][a-z0-9._-]{0,62}$/.test(k) && LABEL_VALUE.test(v)) out[k] = v;
  }
  return out;
}

/**
 * Bootstrapping (issue 11, Z1 Z2 Z4): profiles say what a device becomes; the onboarding flow runs
 * TO2 with the vouchers domain, asks the profile's verifier (attestation port), then — with no
 * human step — creates the Metal Object in the profile's Spaces and an enrollment secret, and hands
 * both to the device encrypted to the key its proof bound. Every attempt lands in the owner's
 * onboarding record; a refusal creates nothing else.
 */
export class BootstrapService {
  private metrics: OnboardingMetrics | undefined;
  private timing: ((stage: OnboardingStage, ms: number) => void) | undefined;
  private log: ((obj: Record<string, unknown>, msg: string) => void) | undefined;

  constructor(
    private readonly store: BootstrapStore,
    private readonly vouchers: VoucherService,
    private readonly metals: MetalService,
    private readonly spaces: SpaceService,
    private readonly glazes: GlazeService,
    private readonly enrollment: EnrollmentService,
    private readonly verifiers: ReadonlyMap<VerifierName, ChallengingVerifier>,
    private readonly urls: BootstrapUrls,
    events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {
    events.on('enrollment.enrolled', async (e) => {
      const r = await this.store.findRecordBySecret(e.secretId);
      if (r && r.status === 'registered') {
        await this.store.putRecord(this.moved(r, 'enrolled', null));
        this.metrics?.onboardings.inc({ result: 'enrolled' });
        this.log?.({ guid: r.guid, metalId: e.metalId }, 'onboarded device enrolled');
      }
    });
  }

  useMetrics(m: OnboardingMetrics): void {
    this.metrics = m;
  }

  useLog(log: (obj: Record<string, unknown>, msg: string) => void): void {
    this.log = log;
  }

  /** Benchmarks: time spent per stage of each onboarding. */
  useTiming(t: (stage: OnboardingStage, ms: number) => void): void {
    this.timing = t;
  }

  private async timed<T>(stage: OnboardingStage, fn: () => Promise<T> | T): Promise<T> {
    if (!this.timing) return fn();
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.timing(stage, performance.now() - t0);
    }
  }

  // ------------------------------------------------------------------------------ profiles

  async createProfile(ownerId: OwnerId, input: CreateProfileInput): Promise<BootstrapProfile> {
    const profile: BootstrapProfile = { id: `bpr_${encodeBase32(this.random.bytes(16))}`, ownerId, ...(await this.parseProfile(ownerId, input)), createdAt: this.clock.now().toISOString() };
    const name = profile.name;
    if (await this.store.findProfile(ownerId, name)) throw new BootstrapError('profile_name_taken', `you already have a bootstrapping profile named "${name}"`, 'name');
    try {
      await this.store.insertProfile(profile);
    } catch (e) {
      if (isUniqueViolation(e)) throw new BootstrapError('profile_name_taken', `you already have a bootstrapping profile named "${name}"`, 'name');
      throw e;
    }
    return profile;
  }

  /**
   * Changes a profile: what the input names replaces the profile's value, the rest stays, and the
   * whole is checked as a new profile would be. Devices that already onboarded keep what they became;
   * later onboardings get the new profile.
   */
  async updateProfile(ownerId: OwnerId, ref: string, input: Partial<CreateProfileInput>): Promise<BootstrapProfile> {
    const p = await this.getProfile(ownerId, ref);
    const merged: CreateProfileInput = {
      name: p.name,
      priority: p.priority,
      match: p.match,
      phase1Glaze: p.phase1Glaze,
      spaces: p.spaces,
      protocols: p.protocols,
      agent: p.agent,
      attestation: p.attestation,
      pcrs: p.pcrs,
      pcrDigest: p.pcrDigest,
      lwm2m: p.lwm2m ?? null,
      ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
    };
    // The LwM2M part stays unless the body names one; `lwm2m: null` removes it.
    const { lwm2m: _old, ...kept } = p;
    const next: BootstrapProfile = { ...kept, ...(await this.parseProfile(ownerId, merged)) };
    if (next.name !== p.name && (await this.store.findProfile(ownerId, next.name))) throw new BootstrapError('profile_name_taken', `you already have a bootstrapping profile named "${next.name}"`, 'name');
    try {
      await this.store.updateProfile(next);
    } catch (e) {
      if (isUniqueViolation(e)) throw new BootstrapError('profile_name_taken', `you already have a bootstrapping profile named "${next.name}"`, 'name');
      throw e;
    }
    return next;
  }

  /** A profile's fields checked (every reference resolved in this owner's Spaces and Glazes). */
  private async parseProfile(ownerId: OwnerId, input: CreateProfileInput): Promise<Omit<BootstrapProfile, 'id' | 'ownerId' | 'createdAt'>> {
    const name = parseName(input.name);
    const priority = input.priority ?? 100;
    if (!Number.isInteger(priority) || priority < 0 || priority > 1_000_000) throw new InvalidValueError('priority', 'priority is an integer from 0 to 1000000 (lower is tried first)');
    const match = parseMatch(input.match ?? {});
    const spaceRefs = input.spaces ?? [];
    if (spaceRefs.length > MAX_PROFILE_SPACES) throw new InvalidValueError('spaces', `at most ${MAX_PROFILE_SPACES} Spaces`);
    const spaces: Space[] = [];
    for (const [i, ref] of spaceRefs.entries()) {
      const s = await this.spaces.get(ownerId, ref).catch((e) => {
        throw new BootstrapError('profile_invalid', `spaces[${i}]: ${(e as Error).message}`, `spaces[${i}]`);
      });
      if (spaces.some((x) => x.id === s.id)) throw new BootstrapError('profile_invalid', `spaces[${i}]: Space "${s.name}" is named twice`, `spaces[${i}]`);
      spaces.push(s);
    }
    const phase1 = spaces.filter((s) => s.phase === 1);
    if (phase1.length > 1) throw new BootstrapError('profile_invalid', 'a profile names at most one Phase 1 Space (it becomes the default Space of its metals)', 'spaces');
    let phase1Glaze: string | null = null;
    if (input.phase1Glaze !== undefined && input.phase1Glaze !== null) {
      const g = await this.glazes.get(ownerId, input.phase1Glaze).catch((e) => {
        throw new BootstrapError('profile_invalid', `phase1Glaze: ${(e as Error).message}`, 'phase1Glaze');
      });
      if (phase1.length === 0 || phase1[0]!.glazeId !== g.id) {
        throw new BootstrapError('profile_invalid', `phase1Glaze: Glaze "${g.name}" must be the Glaze of the profile's Phase 1 Space (set it with \`tips space set-glaze\`)`, 'phase1Glaze');
      }
      phase1Glaze = g.id;
    }
    const protocols = input.protocols ?? ['http'];
    if (protocols.length === 0 || !protocols.every((p) => (PROTOCOLS as readonly string[]).includes(p))) throw new InvalidValueError('protocols', `protocols: one or more of ${PROTOCOLS.join(', ')}`);
    const attestation = input.attestation ?? 'software-key';
    if (!(ATTESTATIONS as readonly string[]).includes(attestation)) throw new InvalidValueError('attestation', `attestation is one of ${ATTESTATIONS.join(', ')}`);
    const pcrs = [...new Set(input.pcrs ?? [])].sort((a, b) => a - b);
    if (!pcrs.every((p) => Number.isInteger(p) && p >= 0 && p <= 23)) throw new InvalidValueError('pcrs', 'PCR indices are integers from 0 to 23');
    const pcrDigest = input.pcrDigest ?? null;
    if (pcrDigest !== null && !PCR_DIGEST.test(pcrDigest)) throw new InvalidValueError('pcrDigest', 'pcrDigest is 64 lower-case hex digits (SHA-256 over the selected PCR values)');
    if (attestation === 'software-key' && (pcrs.length > 0 || pcrDigest !== null)) throw new BootstrapError('profile_invalid', 'pcrs and pcrDigest apply only with attestation tpm2', 'pcrs');
    if (attestation === 'tpm2' && pcrs.length === 0) throw new BootstrapError('profile_invalid', 'attestation tpm2 needs the PCRs the quote must cover (pcrs)', 'pcrs');
    const agent = parseAgent(input.agent ?? {});
    const lwm2m = input.lwm2m ? parseLwm2m(input.lwm2m) : undefined;
    return { name, priority, match, phase1Glaze, spaces: spaces.map((s) => s.id), protocols: [...new Set(protocols)], agent, attestation, pcrs, pcrDigest, ...(lwm2m ? { lwm2m } : {}) };
  }


  /**
   * The bootstrapping profile of an onboarded metal: the one its onboarding record names (devicemgmt's
   * LwM2M bootstrap server asks); undefined when the metal was not onboarded or its profile is gone.
   */
  async profileOfMetal(ownerId: OwnerId, metalId: string): Promise<BootstrapProfile | undefined> {
    const record = await this.store.findRecordByMetal(ownerId, metalId);
    if (!record?.profileId) return undefined;
    const p = await this.store.findProfileById(record.profileId);
    return p && p.ownerId === ownerId ? p : undefined;
  }

  listProfiles(ownerId: OwnerId, window?: KeysetWindow): Promise<BootstrapProfile[]> {
    return this.store.listProfiles(ownerId, window);
  }

  async getProfile(ownerId: OwnerId, ref: string): Promise<BootstrapProfile> {
    const p = await this.store.findProfile(ownerId, ref);
    if (!p) throw new BootstrapError('profile_not_found', `no bootstrapping profile "${ref.slice(0, 64)}"`, 'profile');
    return p;
  }

  /** All of an owner's profiles in the order they are tried: priority, then age. */
  private async profilesInOrder(ownerId: OwnerId): Promise<BootstrapProfile[]> {
    const all: BootstrapProfile[] = [];
    for (let after: KeysetWindow['after']; ; ) {
      const page = await this.store.listProfiles(ownerId, { limit: 1000, ...(after ? { after } : {}) });
      all.push(...page);
      if (page.length < 1000) break;
      after = { at: page[page.length - 1]!.createdAt, id: page[page.length - 1]!.id };
    }
    return all.sort((a, b) => a.priority - b.priority);
  }

  /** The first profile whose every stated condition the device meets. */
  async matchProfile(ownerId: OwnerId, deviceInfo: string, facts: DeviceFacts): Promise<BootstrapProfile | undefined> {
    const info = deviceInfoLabels(deviceInfo);
    const purpose = info.purpose ?? facts.purpose;
    return (await this.profilesInOrder(ownerId)).find((p) => {
      const m = p.match;
      if (m.vendor !== undefined && info.vendor !== m.vendor) return false;
      if (m.class !== undefined && info.class !== m.class) return false;
      if (m.arch !== undefined && facts.arch !== m.arch) return false;
      if (m.minRamMb !== undefined && (facts.ramMb ?? -1) < m.minRamMb) return false;
      if (m.minStorageMb !== undefined && (facts.storageMb ?? -1) < m.minStorageMb) return false;
      if (m.purpose !== undefined && purpose !== m.purpose) return false;
      return true;
    });
  }

  // ------------------------------------------------------------------------------ records

  listRecords(ownerId: OwnerId, status: OnboardingState | undefined, window?: KeysetWindow): Promise<OnboardingRecord[]> {
    return this.store.listRecords(ownerId, status, window);
  }

  async getRecord(ownerId: OwnerId, ref: string): Promise<OnboardingRecord> {
    const g = parseGuid(ref);
    const r = ref.startsWith('onb_') ? await this.store.findRecordById(ownerId, ref) : g ? await this.store.findRecord(ownerId, guidToString(g)) : undefined;
    if (!r) throw new BootstrapError('onboarding_not_found', `no onboarding "${ref.slice(0, 64)}" (give its ID or the device GUID)`, 'onboarding');
    return r;
  }

  profileName(id: string | null): Promise<string | null> {
    return id === null ? Promise.resolve(null) : this.store.findProfileById(id).then((p) => p?.name ?? null);
  }

  private moved(r: OnboardingRecord, status: OnboardingState, reason: string | null, changes: Partial<OnboardingRecord> = {}): OnboardingRecord {
    const at = this.clock.now().toISOString();
    return { ...r, ...changes, status, reason, events: [...r.events, { status, at, reason }].slice(-MAX_EVENTS), updatedAt: at };
  }

  private fresh(v: ImportedVoucher): OnboardingRecord {
    const at = this.clock.now().toISOString();
    return { id: `onb_${encodeBase32(this.random.bytes(16))}`, ownerId: v.ownerId, guid: v.guid, status: 'waiting', reason: null, profileId: null, verifier: null, metalId: null, secretId: null, facts: null, events: [], createdAt: at, updatedAt: at };
  }

  /**
   * A refusal: the record says why (a device already enrolled keeps its status and gains the
   * refused attempt as an event), the metric counts it, and the caller gets the same reason.
   */
  private async refuse(r: OnboardingRecord, code: BootstrapErrorCode, reason: string, field?: string): Promise<never> {
    const next = r.status === 'enrolled' || r.status === 'registered' ? { ...r, events: [...r.events, { status: 'failed' as const, at: this.clock.now().toISOString(), reason: `${code}: ${reason}` }].slice(-MAX_EVENTS), updatedAt: this.clock.now().toISOString() } : this.moved(r, 'failed', `${code}: ${reason}`);
    await this.store.putRecord(next);
    this.metrics?.onboardings.inc({ result: code });
    this.log?.({ guid: r.guid, code, reason }, 'onboarding refused');
    throw new BootstrapError(code, reason, field);
  }

  /** Voucher import refused: the owner sees why in a failed record of that GUID (when the voucher names one). */
  async recordImportRefusal(ownerId: OwnerId, guid: string, reason: string): Promise<void> {
    const existing = await this.store.findRecord(ownerId, guid);
    if (existing && existing.status !== 'failed') return;
    const base = existing ?? { ...this.fresh({ ownerId, guid } as ImportedVoucher), events: [] };
    await this.store.putRecord(this.moved(base, 'failed', `voucher refused: ${reason}`));
    this.metrics?.onboardings.inc({ result: 'voucher_refused' });
  }

  // ------------------------------------------------------------------------------ TO2

  private async voucherOf(guid: string): Promise<ImportedVoucher> {
    try {
      return await this.vouchers.forDevice(guid);
    } catch (e) {
      if (e instanceof VoucherDomainError && e.code === 'guid_unknown') {
        this.metrics?.onboardings.inc({ result: 'guid_unknown' });
        throw new BootstrapError('guid_unknown', 'this master holds no voucher for the device', 'guid');
      }
      if (e instanceof VoucherDomainError) throw new BootstrapError('onboarding_malformed', e.message, e.field);
      throw e;
    }
  }

  /**
   * TO2 step 1: the owner proves itself (vouchers domain) and says which verifier and PCRs it will
   * ask for — the profile the device's facts select. The record is `waiting`.
   */
  async hello(
    guid: string,
    deviceNonce: Uint8Array,
    facts: DeviceFacts,
    /** A device with a TPM sends its identity (tpm2: `{ ek, ak }`, CBOR) so a tpm2 profile can challenge it at once. */
    tpmIdentity?: Uint8Array,
  ): Promise<{ voucher: Uint8Array; ownerNonce: Uint8Array; ownerProof: Uint8Array; attestation: { verifier: Attestation; pcrs: number[]; challenge?: Uint8Array } }> {
    const v = await this.voucherOf(guid);
    const record = (await this.store.findRecord(v.ownerId, v.guid)) ?? this.fresh(v);
    if (record.status === 'enrolled') return this.refuse(record, 'voucher_used', 'this device was onboarded and enrolled already; its voucher is spent (a replay, or a copied credential)');
    checkFacts(facts);
    const profile = await this.matchProfile(v.ownerId, v.deviceInfo, facts);
    if (!profile) return this.refuse({ ...record, facts }, 'no_profile', `no bootstrapping profile matches this device (${v.deviceInfo}; arch ${facts.arch ?? '?'}, ${facts.ramMb ?? '?'} MB RAM, ${facts.storageMb ?? '?'} MB storage)`);
    const hello = await this.timed('signatures', () => this.vouchers.to2Hello(v, deviceNonce));
    let challenge: Uint8Array | undefined;
    if (profile.attestation !== 'software-key') {
      const verifier = this.verifiers.get(profile.attestation);
      if (!verifier) return this.refuse({ ...record, facts, profileId: profile.id }, 'attestation_failed', `the profile asks for ${profile.attestation}, which this master does not verify`);
      if (verifier.challenge) {
        if (!tpmIdentity) return this.refuse({ ...record, facts, profileId: profile.id }, 'attestation_failed', `${profile.attestation}: the profile asks for TPM evidence and the device sent no TPM identity (is its TPM configured?)`, 'tpm');
        try {
          challenge = verifier.challenge(tpmIdentity, hello.ownerNonce);
        } catch (e) {
          return this.refuse({ ...record, facts, profileId: profile.id }, 'attestation_failed', `${profile.attestation}: ${(e as Error).message}`, 'tpm');
        }
      }
    }
    // A device already registered that lost its answer may come again: it keeps its metal.
    const next = record.status === 'registered' ? { ...record, facts, profileId: profile.id, verifier: profile.attestation, events: [...record.events, { status: 'waiting' as const, at: this.clock.now().toISOString(), reason: 'the device asked again before enrolling' }].slice(-MAX_EVENTS) } : this.moved(record, 'waiting', null, { facts, profileId: profile.id, verifier: profile.attestation });
    await this.timed('database', () => this.store.putRecord(next));
    return { voucher: hello.voucher, ownerNonce: hello.ownerNonce, ownerProof: hello.ownerProof, attestation: { verifier: profile.attestation, pcrs: profile.pcrs, ...(challenge ? { challenge } : {}) } };
  }

  /**
   * TO2 step 2: the device's proof (software-key, always: possession of the voucher's key) and, when
   * the profile asks for it, its TPM evidence; then registration. Returns the sealed setup.
   */
  async prove(guid: string, nonce: Uint8Array, proof: Uint8Array, evidence: Uint8Array | undefined): Promise<{ record: OnboardingRecord; setup: Uint8Array }> {
    const v = await this.voucherOf(guid);
    const record = await this.store.findRecord(v.ownerId, v.guid);
    if (!record) throw new BootstrapError('onboarding_malformed', 'no TO2 hello for this device yet: ask /hello first', 'guid');
    if (record.status === 'enrolled') return this.refuse(record, 'voucher_used', 'this device was onboarded and enrolled already; its voucher is spent (a replay, or a copied credential)');
    // A failed attempt leaves the facts and profile of the last hello: a retry still needs a live nonce from it.
    const profile = record.profileId ? await this.store.findProfileById(record.profileId) : undefined;
    if (!profile || !record.facts) return this.refuse(record, 'no_profile', 'the profile chosen at hello is gone; ask /hello again');
    const deviceKeySpki = new Uint8Array(Buffer.from(v.deviceKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
    const ctx = { nonce, deviceKeySpki, policy: { pcrs: profile.pcrs, ...(profile.pcrDigest ? { pcrDigest: profile.pcrDigest } : {}) } };

    const possession = await this.timed('signatures', () => this.verifier('software-key').verify(proof, ctx));
    if (!possession.ok) return this.refuse(record, 'attestation_failed', `software-key: ${possession.reason}`, 'proof');
    const claims = possession.claims as { guid: Uint8Array; factsDigest: Uint8Array | null; setupKey: Uint8Array | null };
    if (guidToString(claims.guid) !== v.guid) return this.refuse(record, 'attestation_failed', 'software-key: the proof names another device', 'proof');
    if (!claims.factsDigest || Buffer.compare(claims.factsDigest, deviceFactsDigest(record.facts)) !== 0) return this.refuse(record, 'attestation_failed', 'the proof does not sign the device facts sent at hello', 'proof');
    if (!claims.setupKey) return this.refuse(record, 'attestation_failed', 'the proof carries no setup key', 'proof');
    if (!(await this.timed('database', () => this.vouchers.takeTo2Nonce(v, nonce)))) {
      return this.refuse(record, 'attestation_failed', 'stale nonce: the proof is over a nonce this master did not give the device, or one already used or expired', 'nonce');
    }
    if (profile.attestation !== 'software-key') {
      const verifier = this.verifiers.get(profile.attestation);
      if (!verifier) return this.refuse(record, 'attestation_failed', `the profile asks for ${profile.attestation}, which this master does not verify`);
      if (!evidence) return this.refuse(record, 'attestation_failed', `${profile.attestation}: the profile asks for evidence and the device sent none`, 'evidence');
      const r = await this.timed('signatures', () => verifier.verify(evidence, ctx));
      if (!r.ok) return this.refuse(record, 'attestation_failed', `${profile.attestation}: ${r.reason}`, 'evidence');
    }
    // Written with the outcome (registered, or the refusal): the record keeps the `attested` step in its events.
    const attested = this.moved(record, 'attested', null);

    const registered = await this.timed('database', () => this.register(v, attested, profile));
    const setup: DeviceSetup = {
      tipsId: registered.metalId,
      metalId: registered.metalId,
      masterUrl: registered.tlsUrl,
      estUrl: `${registered.tlsUrl}/.well-known/est`,
      caPem: (await this.enrollment.caPem()).rootPem,
      enrollment: { secretId: registered.secretId, secret: registered.secret },
      profile: profile.name,
      phase1Glaze: profile.phase1Glaze,
      protocols: profile.protocols,
      agent: profile.agent,
    };
    const sealed = await this.timed('signatures', () => this.vouchers.sealSetup(v, nonce, claims.setupKey!, new TextEncoder().encode(JSON.stringify(setup))));
    const done = this.moved(attested, 'registered', null, { metalId: registered.metalId, secretId: registered.secretId });
    await this.timed('database', async () => {
      await this.store.putRecord(done);
      await this.vouchers.markOnboarded(v);
    });
    this.metrics?.onboardings.inc({ result: 'registered' });
    this.log?.({ guid: v.guid, metalId: registered.metalId, profile: profile.name, verifier: profile.attestation }, 'device registered');
    return { record: done, setup: sealed };
  }

  private verifier(name: VerifierName): AttestationVerifier {
    const v = this.verifiers.get(name);
    if (!v) throw new Error(`attestation verifier ${name} is not installed`);
    return v;
  }

  /**
   * The Metal Object (interfaces the device reported, labels from the voucher's device-info) in the
   * profile's Spaces, and a one-use enrollment secret for it. A device registered before keeps its
   * metal; its previous secret is revoked. Anything refused undoes the metal it made.
   */
  private async register(v: ImportedVoucher, record: OnboardingRecord, profile: BootstrapProfile): Promise<{ metalId: string; secretId: string; secret: string; tlsUrl: string }> {
    const tlsUrl = this.urls.tlsUrl();
    if (!tlsUrl) return this.refuse(record, 'registration_failed', 'this master has no HTTPS listener, and a device enrolls over EST (HTTPS): start it with --tls-port');
    const facts = record.facts!;
    let metalId = record.metalId;
    let created = false;
    try {
      if (metalId === null) {
        const pxeName = (facts.interfaces.find((i) => i.pxe) ?? facts.interfaces[0]!).name;
        const labels = { ...deviceInfoLabels(v.deviceInfo), 'onboarding/guid': v.guid, 'onboarding/profile': profile.name };
        const spaces: Space[] = [];
        for (const spaceId of profile.spaces) spaces.push(await this.spaces.get(v.ownerId, spaceId));
        // The metal, its interfaces and its memberships: one transaction, one membership event.
        const metal = await this.spaces.createMetalInSpaces(
          v.ownerId,
          { name: `dev-${v.guid}`, labels, interfaces: facts.interfaces.map((i) => ({ name: i.name, mac: i.mac, type: i.type, pxe: i.name === pxeName })) },
          (m) => spaces.map((space) => ({ space, interfaces: space.phase === 1 ? [pxeName] : m.interfaces.map((i) => i.name), default: space.phase === 1 })),
        );
        metalId = metal.id;
        created = true;
      } else if (record.secretId) {
        await this.enrollment.revokeSecret(v.ownerId, record.secretId).catch(() => undefined);
      }
      const { secret, value } = created
        ? await this.enrollment.createSecretForMetal(v.ownerId, metalId as TipsId, 24 * 60)
        : await this.enrollment.createSecret(v.ownerId, { metal: metalId, maxUses: 1, expiresInMinutes: 24 * 60 });
      return { metalId, secretId: secret.id, secret: value!, tlsUrl };
    } catch (e) {
      if (created && metalId) await this.metals.delete(v.ownerId, metalId as TipsId).catch(() => undefined);
      if (e instanceof BootstrapError) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      if (e instanceof InvalidValueError || (e as { domain?: string }).domain !== undefined) return this.refuse(record, 'registration_failed', `the device cannot become a metal: ${msg}`);
      throw e;
    }
  }
}

function parseMatch(m: ProfileMatch): ProfileMatch {
  const out: ProfileMatch = {};
  for (const k of ['vendor', 'class', 'purpose'] as const) {
    const v = m[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !LABEL_VALUE.test(v)) throw new InvalidValueError(`match.${k}`, `match.${k} is 1–128 characters without ; or =`);
    out[k] = v;
  }
  if (m.arch !== undefined) {
    if (typeof m.arch !== 'string' || !ARCH.test(m.arch)) throw new InvalidValueError('match.arch', 'match.arch is an architecture name such as x86_64 or aarch64');
    out.arch = m.arch;
  }
  for (const k of ['minRamMb', 'minStorageMb'] as const) {
    const v = m[k];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 0 || v > 2 ** 31) throw new InvalidValueError(`match.${k}`, `match.${k} is a whole number of MB`);
    out[k] = v;
  }
  return out;
}

const MAX_LWM2M_LIFETIME = 2 ** 31 - 1;

/** The LwM2M part of a profile: a coap:// or coaps:// server URI with a host, seconds in range, min ≤ max. */
export function parseLwm2m(l: Lwm2mSettings): Lwm2mSettings {
  if (typeof l !== 'object' || l === null) throw new InvalidValueError('lwm2m', 'lwm2m is an object { serverUri?, lifetime, binding, defaultMinPeriod?, defaultMaxPeriod? }');
  const out: Lwm2mSettings = { lifetime: 0, binding: 'U' };
  if (l.serverUri !== undefined) {
    let url: URL | undefined;
    try {
      url = typeof l.serverUri === 'string' && l.serverUri.length <= 255 ? new URL(l.serverUri) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'coaps:' && url.protocol !== 'coap:') || url.hostname === '' || url.username !== '' || url.search !== '' || url.hash !== '') {
      throw new InvalidValueError('lwm2m.serverUri', `lwm2m.serverUri is coaps://host[:port] (or coap://), got ${JSON.stringify(String(l.serverUri).slice(0, 80))}`);
    }
    out.serverUri = l.serverUri;
  }
  if (!Number.isInteger(l.lifetime) || l.lifetime < 1 || l.lifetime > MAX_LWM2M_LIFETIME) throw new InvalidValueError('lwm2m.lifetime', `lwm2m.lifetime is whole seconds from 1 to ${MAX_LWM2M_LIFETIME}`);
  out.lifetime = l.lifetime;
  if (!(LWM2M_BINDINGS as readonly string[]).includes(l.binding)) throw new InvalidValueError('lwm2m.binding', `lwm2m.binding is ${LWM2M_BINDINGS.join(' or ')} (UQ: queue mode)`);
  out.binding = l.binding;
  for (const k of ['defaultMinPeriod', 'defaultMaxPeriod'] as const) {
    const v = l[k];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 0 || v > MAX_LWM2M_LIFETIME) throw new InvalidValueError(`lwm2m.${k}`, `lwm2m.${k} is whole seconds from 0 to ${MAX_LWM2M_LIFETIME}`);
    out[k] = v;
  }
  if (out.defaultMinPeriod !== undefined && out.defaultMaxPeriod !== undefined && out.defaultMaxPeriod < out.defaultMinPeriod) {
    throw new InvalidValueError('lwm2m.defaultMaxPeriod', 'lwm2m.defaultMaxPeriod must not be less than lwm2m.defaultMinPeriod');
  }
  return out;
}

function parseAgent(a: AgentSettings): AgentSettings {
  const out: AgentSettings = {};
  const uuid = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
  for (const k of ['vendorId', 'classId'] as const) {
    const v = a[k];
    if (v === undefined) continue;
    if (v !== null && (typeof v !== 'string' || !uuid.test(v))) throw new InvalidValueError(`agent.${k}`, `agent.${k} is a UUID or null`);
    out[k] = v === null ? null : v.toLowerCase();
  }
  if (a.managedPaths !== undefined) {
    if (!Array.isArray(a.managedPaths) || a.managedPaths.length > 32 || !a.managedPaths.every((p) => typeof p === 'string' && p.startsWith('/') && p.length <= 4096)) {
      throw new InvalidValueError('agent.managedPaths', 'agent.managedPaths is at most 32 absolute paths');
    }
    out.managedPaths = a.managedPaths;
  }
  if (a.pollIntervalSeconds !== undefined) {
    if (!Number.isInteger(a.pollIntervalSeconds) || a.pollIntervalSeconds < 5 || a.pollIntervalSeconds > 86_400) throw new InvalidValueError('agent.pollIntervalSeconds', 'agent.pollIntervalSeconds is 5 to 86400');
    out.pollIntervalSeconds = a.pollIntervalSeconds;
  }
  if (a.push !== undefined) out.push = a.push === true;
  return out;
}

/** The facts are the device's word (bound by its proof); they still have to make sense. */
function checkFacts(f: DeviceFacts): void {
  if (!Array.isArray(f.interfaces) || f.interfaces.length === 0) throw new BootstrapError('onboarding_malformed', 'device.interfaces: the device must report at least one interface', 'device.interfaces');
  for (const [i, x] of f.interfaces.entries()) {
    try {
      parseMac(x.mac, `device.interfaces[${i}].mac`);
    } catch (e) {
      throw new BootstrapError('onboarding_malformed', (e as Error).message, `device.interfaces[${i}].mac`);
    }
  }
  if (f.arch !== undefined && !ARCH.test(f.arch)) throw new BootstrapError('onboarding_malformed', 'device.arch: expected an architecture name', 'device.arch');
}
