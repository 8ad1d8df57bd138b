import { createHash, createPublicKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type OwnerId, parseMac, type SpaceId, type TipsId } from '@tips/core';
import { ALG_ED25519, ALG_EDDSA, coseSign1Verify, decodeCbor, SuitError } from '@tips/suit';
import type { ByteRange } from '../../blob/blob-store.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import type { EnrollmentService } from '../enrollment/service.ts';
import type { Gateway } from '../gateways/model.ts';
import type { GlazeService } from '../glazes/service.ts';
import type { KeyService } from '../keys/service.ts';
import type { Metal } from '../metals/model.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from '../spaces/service.ts';
import { type EngineStatus, ipxeScripts, type ProvisioningEngine } from './engine.ts';
import { ProvisioningError } from './errors.ts';
import {
  chooseEngine,
  type Engine,
  ENROLLMENT_SECRET_TTL_MINUTES,
  type InstallerReport,
  isOpen,
  type JobState,
  MAX_REPORT_BYTES,
  newJobId,
  type Phase1Job,
  type PinnedGlaze,
  parseJobId,
  parseJobState,
  type Work,
} from './model.ts';
import type { ProvisioningStore } from './store.ts';

const sha256Hex = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const INSTALLER_KEY = /^[A-Za-z0-9_-]{43}$/;
/** The gateway's boot URL goes into an iPXE script: only a plain http(s)://host[:port][/path], nothing a script could misread. */
const BASE = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?|^https?:\/\/\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?/;
const BASE_PATH = /^(\/[A-Za-z0-9._~-]+)*$/;
const REASON = /^[a-z0-9_]{1,64}$/;

export interface ProvisioningUrls {
  /** The master's URL metals use after install (--public-url, else the listen address) and its HTTPS one. */
  url: string;
  tlsUrl: string | null;
}

export interface ProvisioningOptions {
  urls?: () => ProvisioningUrls;
}

export type TransitionListener = (from: JobState | null, to: JobState, job: Phase1Job) => void;

export function parseBase(raw: string): string {
  const m = BASE.exec(raw);
  const rest = m ? raw.slice(m[0].length).replace(/\/$/, '') : '';
  if (!m || !BASE_PATH.test(rest)) {
    throw new ProvisioningError('invalid_base', 'base must be the gateway boot URL, http://<LAN address>:<port>, without query or unusual characters', 'base');
  }
  return m[0] + rest;
}

function installerKeyObject(raw: string): KeyObject {
  if (!INSTALLER_KEY.test(raw)) throw new ProvisioningError('invalid_installer_key', 'installerKey is a base64url raw 32-byte Ed25519 public key', 'installerKey');
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw }, format: 'jwk' });
  } catch {
    throw new ProvisioningError('invalid_installer_key', 'installerKey is a base64url raw 32-byte Ed25519 public key', 'installerKey');
  }
}

/** The A4 payload, strictly: a CBOR map with exactly the contract's text keys and types. */
export function parseReportPayload(bytes: Uint8Array): InstallerReport {
  let v: unknown;
  try {
    v = decodeCbor(bytes);
  } catch (e) {
    throw new ProvisioningError('report_malformed', `the report payload is not one CBOR item: ${(e as Error).message}`, 'body');
  }
  if (!(v instanceof Map)) throw new ProvisioningError('report_malformed', 'the report payload must be a CBOR map', 'body');
  const m = v as Map<unknown, unknown>;
  const keys = ['jobId', 'result', 'reason', 'detail', 'glazeSha256', 'bytesWritten', 'disk', 'at'];
  for (const k of m.keys()) if (typeof k !== 'string' || !keys.includes(k)) throw new ProvisioningError('report_malformed', `unknown report field ${JSON.stringify(String(k).slice(0, 40))}`, 'body');
  const str = (k: string, nullable: boolean, max: number): string | null => {
    const x = m.get(k);
    if (x === null && nullable) return null;
    if (typeof x !== 'string' || x.length > max) throw new ProvisioningError('report_malformed', `report field ${k} must be a string of at most ${max} characters${nullable ? ' or null' : ''}`, 'body');
    return x;
  };
  const result = str('result', false, 16);
  if (result !== 'installed' && result !== 'failed') throw new ProvisioningError('report_malformed', 'report field result is "installed" or "failed"', 'body');
  const reason = str('reason', true, 64);
  if (reason !== null && !REASON.test(reason)) throw new ProvisioningError('report_malformed', 'report field reason is a lower-case code like suit_rollback', 'body');
  if (result === 'failed' && reason === null) throw new ProvisioningError('report_malformed', 'a failed report names its reason', 'body');
  const bytesWritten = m.get('bytesWritten');
  const n = typeof bytesWritten === 'bigint' ? Number(bytesWritten) : bytesWritten;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new ProvisioningError('report_malformed', 'report field bytesWritten is a non-negative integer', 'body');
  const glazeSha256 = str('glazeSha256', false, 64)!;
  if (!/^[0-9a-f]{64}$/.test(glazeSha256)) throw new ProvisioningError('report_malformed', 'report field glazeSha256 is 64 lower-case hex digits', 'body');
  return {
    jobId: str('jobId', false, 64)!,
    result,
    reason,
    detail: str('detail', true, 2000),
    glazeSha256,
    bytesWritten: n,
    disk: str('disk', false, 256)!,
    at: str('at', false, 40)!,
  };
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/**
 * The Metal Provisioner (T13, Fig. 6): picks the Glaze of a metal's default Space (only that Space,
 * only a Glaze it allows, only over its one PXE interface), records a Phase 1 job per attempt and
 * drives the metal's engine. The gateway-facing half (boot script, work, Glaze bytes, report)
 * answers only the metal owner's gateways.
 */
export class ProvisioningService {
  private readonly listeners: TransitionListener[] = [];
  private blockCheck: (metalId: TipsId) => Promise<boolean> = async () => false;

  constructor(
    private readonly store: ProvisioningStore,
    private readonly metals: MetalService,
    private readonly spaces: SpaceService,
    private readonly glazes: GlazeService,
    private readonly keys: KeyService,
    private readonly enrollment: EnrollmentService,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly engines: ReadonlyMap<Engine, ProvisioningEngine>,
    private readonly options: ProvisioningOptions = {},
  ) {
    // A deleted metal's open job can never finish: it ends failed, and stays as history.
    events.on('metal.deleted', async (e) => {
      const open = await this.store.findOpen(e.metalId);
      if (open) await this.move(open, 'failed', 'metal_deleted', null);
    });
    // A job can only finish over the default Space and interface it was made for: when the owner
    // changes either, the open job ends (failed, with why) instead of waiting forever.
    events.on('space.membership.changed', (e) => this.recheck(e.ownerId, e.metalId));
    events.on('metal.interfaces.changed', (e) => this.recheck(e.ownerId, e.metalId));
    events.on('space.deleted', async (e) => {
      for (const open of await this.store.openInSpace(e.spaceId as SpaceId)) await this.move(open, 'failed', 'default_space_changed', null);
    });
  }

  private async recheck(ownerId: OwnerId, metalId: TipsId): Promise<void> {
    const open = await this.store.findOpen(metalId);
    if (!open) return;
    const membership = await this.spaces.defaultSpaceOf(metalId);
    if (membership?.spaceId !== open.spaceId) {
      await this.move(open, 'failed', 'default_space_changed', null);
      return;
    }
    const metal = await this.metals.get(ownerId, metalId);
    const iface = metal.interfaces.find((i) => i.name === open.interfaceName);
    if (!iface || iface.mac !== open.mac || !iface.pxe || membership.interfaces[0] !== open.interfaceName) await this.move(open, 'failed', 'interface_changed', null);
  }

  /** Wired by the composition root: a metal blocked by TIPS-D (T16) gets no boot script and no work while the block lasts. */
  useBlockCheck(check: (metalId: TipsId) => Promise<boolean>): void {
    this.blockCheck = check;
  }

  private async refuseBlocked(metal: Metal): Promise<void> {
    if (await this.blockCheck(metal.id)) throw new ProvisioningError('metal_blocked', `metal "${metal.name}" is blocked by its owner (T16)`, 'mac');
  }

  /** Metrics and logs hear every transition (from = null: the job was created in `to`). */
  onTransition(listener: TransitionListener): void {
    this.listeners.push(listener);
  }

  private now(): string {
    return this.clock.now().toISOString();
  }

  // --- the engine choice -------------------------------------------------------------------

  /** The metal's engine: its own setting, else its default Space's first matching rule, else the Space's engine, else builtin (A5). */
  async engineOf(metal: Metal): Promise<Engine> {
    if (metal.engine) return metal.engine;
    const membership = await this.spaces.defaultSpaceOf(metal.id);
    return chooseEngine(metal, membership ? await this.spaces.get(metal.ownerId, membership.spaceId) : undefined);
  }

  /**
   * Asks each engine that installs by itself (tinkerbell: its Workflow's status) where its open
   * jobs stand and moves them forward — booting → installing → installed | failed (with the
   * engine's reason) — never back. Run periodically by the composition root.
   */
  async syncEngineJobs(): Promise<{ moved: number; errors: { jobId: string; message: string }[] }> {
    let moved = 0;
    const errors: { jobId: string; message: string }[] = [];
    const rank: Record<EngineStatus['state'], number> = { booting: 0, installing: 1, installed: 2, failed: 2 };
    for (const [name, engine] of this.engines) {
      if (!engine.status) continue;
      for (const job of await this.store.openByEngine(name)) {
        if (job.state !== 'booting' && job.state !== 'installing') continue;
        let st: EngineStatus | null;
        try {
          st = await engine.status(job);
        } catch (e) {
          errors.push({ jobId: job.id, message: (e as Error).message.slice(0, 300) });
          continue;
        }
        if (!st || rank[st.state] <= rank[job.state]) continue;
        if (await this.move(job, st.state, st.reason, st.detail)) moved++;
      }
    }
    return { moved, errors };
  }

  // --- jobs ----------------------------------------------------------------------------------

  /** The Glaze the metal's default Space names right now, if it may be installed; else why not. */
  private async pin(ownerId: OwnerId, spaceId: Phase1Job['spaceId']): Promise<{ glaze: PinnedGlaze } | { waiting: string }> {
    const space = await this.spaces.get(ownerId, spaceId);
    if (space.glazeId === null) return { waiting: 'no_glaze' };
    const glaze = await this.glazes.get(ownerId, space.glazeId);
    // The Space may name only a Glaze that allows it, but the Glaze's list can change afterwards.
    if (!glaze.spaces.includes(space.id)) return { waiting: 'glaze_not_allowed' };
    let manifest: Awaited<ReturnType<KeyService['getManifest']>>;
    try {
      manifest = await this.keys.getManifest(ownerId, glaze.id);
    } catch (e) {
      if ((e as { code?: string }).code === 'manifest_not_found') return { waiting: 'glaze_unsigned' };
      throw e;
    }
    return { glaze: { id: glaze.id, name: glaze.name, size: glaze.size, sha256: glaze.sha256, manifest: manifest.envelope, sequence: Number(manifest.sequenceNumber) } };
  }

  /** The metal's default Space membership and its one PXE interface, or the refusal. */
  private async target(metal: Metal) {
    const membership = await this.spaces.defaultSpaceOf(metal.id);
    if (!membership) throw new ProvisioningError('no_default_space', `metal "${metal.name}" has no default (Phase 1) Space`, 'metal');
    const iface = metal.interfaces.find((i) => i.name === membership.interfaces[0] && i.pxe);
    if (!iface || membership.interfaces.length !== 1) throw new ProvisioningError('no_default_space', `metal "${metal.name}"'s default Space does not link it by one PXE-capable interface`, 'metal');
    return { membership, iface };
  }

  /** Creates a job for the metal; when another request created one first, answers that one. */
  private async create(metal: Metal, engine: Engine): Promise<Phase1Job> {
    const { membership, iface } = await this.target(metal);
    const now = this.now();
    const pinned = await this.pin(metal.ownerId, membership.spaceId);
    const state: JobState = 'glaze' in pinned ? 'queued' : 'waiting_for_glaze';
    const reason = 'glaze' in pinned ? null : pinned.waiting;
    const job: Phase1Job = {
      id: newJobId(this.random.bytes(16)),
      ownerId: metal.ownerId,
      metalId: metal.id,
      interfaceName: iface.name,
      mac: iface.mac,
      spaceId: membership.spaceId,
      engine,
      state,
      reason,
      detail: null,
      glaze: 'glaze' in pinned ? pinned.glaze : null,
      tokenHash: null,
      installerKey: null,
      enrollmentSecretId: null,
      transitions: [{ state, at: now, reason }],
      report: null,
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.store.insert(job))) {
      const open = await this.store.findOpen(metal.id);
      if (open) return open;
      throw new ProvisioningError('job_running', 'another Phase 1 job of this metal was created at the same moment; retry', 'metal');
    }
    await this.notify(null, job);
    return job.state === 'queued' ? this.startEngine(job, metal) : job;
  }

  private async startEngine(job: Phase1Job, metal: Metal): Promise<Phase1Job> {
    const engine = this.engines.get(job.engine);
    if (!engine) return (await this.move(job, 'failed', 'engine_unavailable', `no ${job.engine} engine is configured on this master`)) ?? job;
    let r: Awaited<ReturnType<ProvisioningEngine['start']>>;
    try {
      r = await engine.start(job, metal);
    } catch (e) {
      return (await this.move(job, 'failed', 'engine_failed', (e as Error).message.slice(0, 500))) ?? job;
    }
    if (r.state === job.state) return job;
    return (await this.move(job, r.state, null, r.detail)) ?? job;
  }

  /** Compare-and-set transition; undefined when the job moved meanwhile (the caller lost a race). */
  private async move(job: Phase1Job, to: JobState, reason: string | null, detail: string | null, patch: Partial<Phase1Job> = {}): Promise<Phase1Job | undefined> {
    const at = this.now();
    const next: Phase1Job = {
      ...job,
      ...patch,
      state: to,
      reason,
      detail: detail ?? (to === job.state ? job.detail : null),
      transitions: to === job.state ? job.transitions : [...job.transitions, { state: to, at, reason }],
      updatedAt: at,
    };
    if (!isOpen(to)) next.tokenHash = null;
    if (!(await this.store.update(next, job.state))) return undefined;
    if (to !== job.state) await this.notify(job.state, next);
    return next;
  }

  private async notify(from: JobState | null, job: Phase1Job): Promise<void> {
    for (const l of this.listeners) l(from, job.state, job);
    await this.events.emit('provisioning.job.changed', { ownerId: job.ownerId, metalId: job.metalId, jobId: job.id, state: job.state, reason: job.reason });
  }

  // --- gateway API (A3) ------------------------------------------------------------------------

  /** The metal of this gateway's owner holding `mac` on a PXE interface; 404 unknown_metal otherwise. */
  private async metalOf(gateway: Gateway, rawMac: string) {
    const mac = parseMac(rawMac, 'mac');
    const found = await this.metals.findByMac(gateway.ownerId, mac);
    const iface = found?.metal.interfaces.find((i) => i.mac === mac);
    if (!found || !iface?.pxe) throw new ProvisioningError('unknown_metal', 'no metal of this gateway’s owner boots from this MAC (unknown, or not a PXE interface)', 'mac');
    return { metal: found.metal, mac, iface };
  }

  /** A3 boot-script: the per-metal iPXE script; creates the metal's first job, and moves queued → booting with a fresh token. */
  async bootScript(gateway: Gateway, rawMac: string, rawBase: string): Promise<{ script: string; job: Phase1Job | null }> {
    const base = parseBase(rawBase);
    const { metal, mac } = await this.metalOf(gateway, rawMac);
    await this.refuseBlocked(metal);
    const { iface } = await this.target(metal);
    if (iface.mac !== mac) throw new ProvisioningError('unknown_metal', `metal "${metal.name}" is provisioned over its interface ${iface.name}, not this one`, 'mac');
    let job = await this.store.findOpen(metal.id);
    if (!job) {
      const last = await this.store.latest(metal.id);
      // A metal that finished Phase 1 boots from its disk until the owner asks again (reprovision).
      if (last) return { script: ipxeScripts.finished(last.state, last.reason), job: last };
      job = await this.create(metal, await this.engineOf(metal));
    }
    if (job.engine !== 'builtin') return { script: ipxeScripts.otherEngine(job.engine), job };
    if (job.state === 'waiting_for_glaze') {
      const pinned = await this.pin(metal.ownerId, job.spaceId);
      if ('waiting' in pinned) {
        if (pinned.waiting !== job.reason) job = (await this.move(job, job.state, pinned.waiting, null)) ?? job;
        return { script: ipxeScripts.waiting(base), job };
      }
      const queued = await this.move(job, 'queued', null, null, { glaze: pinned.glaze });
      if (!queued) throw new ProvisioningError('job_running', 'the job changed meanwhile; retry', 'mac');
      job = queued;
    }
    // queued → booting; booting or installing again (the metal rebooted): a new token voids the old
    // one and the next `work` may bind a new installer key.
    const token = Buffer.from(this.random.bytes(32)).toString('base64url');
    const booting = await this.move(job, 'booting', null, null, { tokenHash: sha256Hex(token), installerKey: null });
    if (!booting) throw new ProvisioningError('job_running', 'the job changed meanwhile; retry', 'mac');
    return { script: ipxeScripts.booting(base, booting.id, token), job: booting };
  }

  /** A3 work: the installer claims its job with the boot token and binds its key; answers what it needs to install. */
  async work(gateway: Gateway, input: { mac: string; token: string; installerKey: string }): Promise<Work> {
    const mac = parseMac(input.mac, 'mac');
    installerKeyObject(input.installerKey);
    const refused = () => new ProvisioningError('phase1_token_invalid', 'the boot token does not match an open job of this MAC', 'token');
    if (typeof input.token !== 'string' || !TOKEN.test(input.token)) throw refused();
    const found = await this.metals.findByMac(gateway.ownerId, mac);
    if (!found) throw refused();
    const job = await this.store.findOpen(found.metal.id);
    if (!job || job.mac !== mac || job.tokenHash === null || !sameHex(sha256Hex(input.token), job.tokenHash)) throw refused();
    await this.refuseBlocked(found.metal);
    if (job.state === 'waiting_for_glaze' || !job.glaze) throw new ProvisioningError('waiting_for_glaze', 'the default Space has no Glaze yet', 'token');
    if (job.state === 'installing' && job.installerKey !== input.installerKey) throw new ProvisioningError('job_claimed', 'another installer already claimed this job', 'installerKey');
    if (job.state !== 'booting' && job.state !== 'installing') throw refused();
    // A new one-use secret per claim: the value exists only in this answer (only its hash is stored).
    const { secret, value } = await this.enrollment.createSecret(job.ownerId, { metal: job.metalId, maxUses: 1, expiresInMinutes: ENROLLMENT_SECRET_TTL_MINUTES });
    const claimed = await this.move(job, 'installing', null, null, { installerKey: input.installerKey, enrollmentSecretId: secret.id });
    if (!claimed) {
      await this.enrollment.revokeSecret(job.ownerId, secret.id).catch(() => undefined);
      throw new ProvisioningError('job_claimed', 'another installer claimed this job meanwhile', 'installerKey');
    }
    if (job.enrollmentSecretId && job.enrollmentSecretId !== secret.id) await this.enrollment.revokeSecret(job.ownerId, job.enrollmentSecretId).catch(() => undefined);
    const glaze = job.glaze;
    const trustedKeys = (await this.keys.list(job.ownerId)).filter((k) => k.revokedAt === null).map((k) => ({ id: k.id, name: k.name, alg: k.alg, publicKeyPem: k.publicKeyPem }));
    const last = await this.store.lastInstalled(job.metalId);
    const urls = this.options.urls?.() ?? { url: 'http://localhost', tlsUrl: null };
    const masterUrl = urls.tlsUrl ?? urls.url;
    const ca = await this.enrollment.caPem();
    return {
      jobId: job.id,
      metal: { id: found.metal.id, name: found.metal.name, tipsId: found.metal.id },
      glaze: { id: glaze.id, name: glaze.name, version: String(glaze.sequence), size: glaze.size, sha256: glaze.sha256 },
      manifest: Buffer.from(glaze.manifest).toString('base64'),
      trustedKeys,
      minSequence: last?.glaze?.sequence ?? 0,
      vendorId: null,
      classId: null,
      glazePath: `/phase1/jobs/${job.id}/glaze`,
      reportPath: `/phase1/jobs/${job.id}/report`,
      enrollment: { secretId: secret.id, secret: value!, estUrl: `${masterUrl}/.well-known/est`, masterUrl, caPem: ca.rootPem + ca.intermediatePem },
    };
  }

  /** The job of this gateway's owner, for the MAC that owns it, in a state that lets it fetch or report. */
  private async jobFor(gateway: Gateway, rawJobId: string, rawMac: string, fetching: boolean): Promise<Phase1Job> {
    const id = parseJobId(rawJobId, 'jobId');
    const mac = parseMac(rawMac, 'mac');
    const job = await this.store.findById(id);
    if (!job || job.ownerId !== gateway.ownerId) throw new ProvisioningError('job_not_found', `no Phase 1 job ${id}`, 'jobId');
    if (job.mac !== mac) throw new ProvisioningError('wrong_mac', 'this job belongs to another MAC', 'mac');
    // A tinkerbell job has no installer claim: its worker fetches while the job is handed over (booting).
    const ok = job.state === 'installing' || (fetching && job.engine === 'tinkerbell' && job.state === 'booting');
    if (!ok) throw new ProvisioningError('job_not_installing', `the job is ${job.state}, not installing`, 'jobId');
    return job;
  }

  /** What a Glaze download of this job would serve (after the same checks), for ETag and ranges. */
  async glazeInfo(gateway: Gateway, rawJobId: string, rawMac: string): Promise<{ size: number; sha256: string }> {
    const job = await this.jobFor(gateway, rawJobId, rawMac, true);
    return { size: job.glaze!.size, sha256: job.glaze!.sha256 };
  }

  /** A3 glaze: the pinned Glaze's bytes (whole or one range), only for the job's MAC while it installs. */
  async openGlaze(gateway: Gateway, rawJobId: string, rawMac: string, range?: ByteRange): Promise<{ size: number; sha256: string; stream: Readable }> {
    const job = await this.jobFor(gateway, rawJobId, rawMac, true);
    const pinned = job.glaze!;
    if (range && (range.start > range.end || range.end >= pinned.size)) {
      throw new ProvisioningError('range_not_satisfiable', `range ${range.start}-${range.end} is outside 0-${pinned.size - 1}`, 'range');
    }
    let opened: Awaited<ReturnType<GlazeService['open']>>;
    try {
      opened = await this.glazes.open(job.ownerId, pinned.id, range);
    } catch (e) {
      if ((e as { code?: string }).code === 'glaze_not_found') throw new ProvisioningError('glaze_unavailable', `the job's Glaze ${pinned.name} was deleted`, 'jobId');
      throw e;
    }
    // Glazes are immutable, but a pinned job serves only the bytes it pinned.
    if (opened.glaze.sha256 !== pinned.sha256) {
      opened.stream.destroy();
      throw new ProvisioningError('glaze_unavailable', "the job's Glaze no longer has the pinned digest", 'jobId');
    }
    return { size: pinned.size, sha256: pinned.sha256, stream: opened.stream };
  }

  /** A3 report: verifies the COSE_Sign1 with the job's installer key, keeps it, and ends the job. */
  async report(gateway: Gateway, rawJobId: string, rawMac: string, body: Uint8Array): Promise<Phase1Job> {
    const job = await this.jobFor(gateway, rawJobId, rawMac, false);
    if (body.length === 0 || body.length > MAX_REPORT_BYTES) throw new ProvisioningError('report_malformed', `a COSE_Sign1 of 1 to ${MAX_REPORT_BYTES} bytes is expected`, 'body');
    const key = installerKeyObject(job.installerKey ?? '');
    let payload: Uint8Array;
    try {
      payload = coseSign1Verify(body, [{ publicKey: key, alg: ALG_EDDSA }], { algorithms: [ALG_EDDSA, ALG_ED25519] }).payload;
    } catch (e) {
      if (e instanceof SuitError || (e as Error).name === 'CborError') throw new ProvisioningError('report_invalid', `the report is not a COSE_Sign1 by this job's installer key (${(e as { code?: string }).code ?? 'malformed'})`, 'body');
      throw e;
    }
    const report = parseReportPayload(payload);
    if (report.jobId !== job.id) throw new ProvisioningError('report_malformed', `the report is for job ${report.jobId.slice(0, 40)}, not ${job.id}`, 'body');
    let to: JobState = report.result;
    let reason = report.reason;
    if (to === 'installed' && report.glazeSha256 !== job.glaze?.sha256) {
      to = 'failed';
      reason = 'glaze_mismatch';
    }
    const done = await this.move(job, to, to === 'installed' ? null : reason, report.detail, { report: { cose: body, payload: report, receivedAt: this.now() } });
    if (!done) throw new ProvisioningError('job_not_installing', 'the job changed meanwhile', 'jobId');
    return done;
  }

  // --- owner API ---------------------------------------------------------------------------------

  async list(ownerId: OwnerId, q: { metal?: string; state?: string }, window?: KeysetWindow): Promise<Phase1Job[]> {
    const metalId = q.metal === undefined ? undefined : (await this.metals.get(ownerId, q.metal)).id;
    const state = q.state === undefined ? undefined : parseJobState(q.state);
    return this.store.list(ownerId, { metalId, state }, window);
  }

  async get(ownerId: OwnerId, rawId: string): Promise<Phase1Job> {
    const id = parseJobId(rawId, 'job');
    const job = await this.store.findById(id);
    if (!job || job.ownerId !== ownerId) throw new ProvisioningError('job_not_found', `no Phase 1 job ${id}`, 'job');
    return job;
  }

  /** The metal's newest job (its Phase 1 state), or null when it never had one. */
  async currentOf(metalId: TipsId): Promise<Phase1Job | null> {
    return (await this.store.findOpen(metalId)) ?? (await this.store.latest(metalId)) ?? null;
  }

  /** Re-runs Phase 1: a new job. A running one is a 409 unless `force`, which ends it `failed` (superseded). */
  async reprovision(ownerId: OwnerId, metalRef: string, force = false): Promise<Phase1Job> {
    const metal = await this.metals.get(ownerId, metalRef);
    await this.target(metal);
    const open = await this.store.findOpen(metal.id);
    if (open) {
      if (!force) throw new ProvisioningError('job_running', `metal "${metal.name}" has a Phase 1 job ${open.state} (${open.id}); force to replace it`, 'metal');
      if (!(await this.move(open, 'failed', 'superseded', null))) throw new ProvisioningError('job_running', 'the running job changed meanwhile; retry', 'metal');
      if (open.enrollmentSecretId) await this.enrollment.revokeSecret(ownerId, open.enrollmentSecretId).catch(() => undefined);
    }
    return this.create(metal, await this.engineOf(metal));
  }
}

