/**
 * `tips-client run`: the agent's life on a metal (T14, S4, S5, S6, S7, S12, S14).
 *
 * At start: finish or roll back whatever a kill interrupted (identity generations, every install
 * handler, the install in flight). Then, each cycle: enroll if never enrolled, re-enroll before the
 * certificate expires, register the profile (after enrollment and after every install), refresh the
 * trust list, pull Phase 2 work, and for each item verify → download (resume) → install → report.
 * Then Phase 3 (T15): the same for `GET /work?phase=3`, and the rollback requests both answers list
 * (`tips metal rollback`, carried out through the handler — agent/rollback.ts). The run loop around
 * cycles (MQTT hints, polling, the tamper watch) is agent/phase3.ts.
 * An authentication or authorization failure stops Phases 2 and 3 (logged, visible in `status`).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTrustList, type TrustList } from '@tips/trust';
import type { Logger } from 'pino';
import { type ClientConfig, loadEnrollmentSecret } from '../config/config.ts';
import { ClientError } from '../errors.ts';
import { downloadOverLinks, linksFor } from '../download/index.ts';
import { enroll, enrollByOrder, readCa, reenroll } from '../identity/enroll.ts';
import { ENROLLMENT_COMPONENT_KEY, judgeReenrollOrder } from '../identity/orders.ts';
import { readRetirement, wipeCredentials } from '../identity/retire.ts';
import { loadIdentity, type MetalIdentity, recoverIdentity } from '../identity/store.ts';
import { judgeServedList, judgeSignedList, TRUST_LIST_COMPONENT_KEY } from '../identity/trust-list.ts';
import { lastOutcome } from '../install/rootfs-ab.ts';
import { InstallError, type InstallHandler } from '../install/types.ts';
import { MetalApi, type RollbackRequest, type WorkAnswer, type WorkItem } from '../master/metal-api.ts';
import { buildProfile } from '../profile/profile.ts';
import { AgentState } from '../state/agent-state.ts';
import { readJsonIfExists, writeFileDurably, writeJsonDurably } from '../state/files.ts';
import { type InstallReport, signInstallReport } from '../updates/report.ts';
import { verifyItem } from '../updates/verify.ts';
import { carryOutRollback } from './rollback.ts';
import type { ServerList } from './servers.ts';

export interface AgentOptions {
  config: ClientConfig;
  stateDir: string;
  log: Logger;
  handlers: Map<string, InstallHandler>;
  /** Re-enroll when the certificate has less than this left (ms); default a third of its lifetime. */
  renewBeforeMs?: number;
  now?: () => Date;
  /** S10: the update servers in order (default: masterUrl alone). */
  servers?: ServerList;
  /** Wraps every handler install (the tamper watch holds its reports and signs off the result). */
  aroundInstall?: <T>(install: () => Promise<T>) => Promise<T>;
  /** Pull Phase 3 work too (default true). */
  phase3?: boolean;
  /** What the profile says the metal speaks (S7); default ["https"], `run` adds "mqtt" when it subscribes to hints. */
  protocols?: string[];
}

const AUTH_CODES = new Set(['unauthenticated', 'forbidden', 'est_refused']);

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

export class Agent {
  readonly state: AgentState;
  private identity: MetalIdentity | undefined;
  private api: MetalApi | undefined;
  private profileDirty = true;
  private readonly now: () => Date;
  /** Wraps every install and rollback (the tamper watch's `whileInstalling`: no report of TIPS's own change). */
  installGuard: (<T>(install: () => Promise<T>) => Promise<T>) | undefined;
  /** Where the master says Phase 3 hints are published (from the last GET /work), null when push is off. */
  notify: WorkAnswer['notify'] = null;

  constructor(private readonly o: AgentOptions) {
    this.state = new AgentState(o.stateDir);
    this.now = o.now ?? (() => new Date());
    this.installGuard = o.aroundInstall;
  }

  private get log(): Logger {
    return this.o.log;
  }

  /** Recovery at every start: identity generations, each handler, the install in flight. */
  async recover(): Promise<void> {
    const r = recoverIdentity(this.o.stateDir);
    if (r.activated) this.log.info({ event: 'identity_recovered' }, 'finished an interrupted (re-)enrollment');
    const outcomes = new Map<string, string>();
    for (const h of this.o.handlers.values()) {
      const outcome = await h.recover(this.o.stateDir, this.log);
      outcomes.set(h.name, outcome);
      if (outcome !== 'clean') this.log.info({ event: 'handler_recovered', handler: h.name, outcome }, `recovered ${h.name}: ${outcome}`);
    }
    const inflight = this.state.inflight();
    if (inflight) {
      const outcome = outcomes.get(inflight.handler);
      if (outcome === 'rolled_back') {
        // The previous version runs. A kill is retried on the next pull; an A/B trial that failed its
        // health check (or ran out of boot tries) across a reboot is not: it is recorded as refused.
        const ab = inflight.handler === 'rootfs-ab' ? lastOutcome(this.o.stateDir) : undefined;
        const reason = ab?.code ?? 'interrupted';
        if (reason !== 'interrupted') {
          this.state.recordRefused({ glazeId: inflight.glazeId, sha256: inflight.sha256, spaceId: inflight.spaceId, reason, detail: ab?.reason ?? '', at: this.now().toISOString() });
        }
        this.queueReport({ glazeId: inflight.glazeId, spaceId: inflight.spaceId, result: 'rolled_back', reason, sequence: inflight.sequence, at: this.now().toISOString() });
      } else if (outcome === 'finished') {
        this.committed(inflight, { id: inflight.glazeId, name: inflight.name, version: inflight.version, sha256: inflight.sha256 });
      }
      // 'clean': the install never started, or committed and cleared its journal — the next pull
      // tells: the same Glaze again is installed again (the handlers treat the current version as done).
      this.state.setInflight(undefined);
    }
  }

  /** Loads the identity, enrolling first when there is none and a secret is waiting. */
  async ensureIdentity(): Promise<MetalIdentity> {
    this.identity ??= loadIdentity(this.o.stateDir);
    if (!this.identity) {
      if (!loadEnrollmentSecret(this.o.config.enrollmentFile)) throw new ClientError('not_enrolled', `not enrolled and no enrollment secret at ${this.o.config.enrollmentFile}`);
      this.identity = (await enroll(this.o.config, this.o.stateDir, this.log)).identity;
      this.profileDirty = true;
    }
    return this.identity;
  }

  renewalDue(id: MetalIdentity): boolean {
    const left = id.notAfter.getTime() - this.now().getTime();
    const before = this.o.renewBeforeMs ?? (id.notAfter.getTime() - id.notBefore.getTime()) / 3;
    return left < before;
  }

  private metalApi(): MetalApi {
    this.api ??= new MetalApi(this.o.config, readCa(this.o.config), () => this.identity!, this.log, () => this.now().getTime(), this.o.servers);
    return this.api;
  }

  /** S10: the update server requests go to (the one that answered last). */
  server(): string {
    return this.o.servers?.current() ?? this.o.config.masterUrl;
  }

  /** The TLS material of the metal's current identity (MQTT uses the same certificate as HTTPS). */
  tlsMaterial(): { ca: string; cert: string; key: string } {
    const id = this.identity ?? loadIdentity(this.o.stateDir);
    if (!id) throw new ClientError('not_enrolled', 'not enrolled yet');
    return { ca: readCa(this.o.config), cert: id.certPem, key: id.keyPem };
  }

  /** T16: posts a change list found by the tamper watch (`POST /tamper`). Rejects to have it retried. */
  async reportTamper(changes: { path: string; kind: string; detail: string }[]): Promise<void> {
    await this.ensureIdentity();
    const r = await this.metalApi().tamper(changes);
    this.log.warn({ event: 'tamper_reported', changes: changes.length, eventId: r.eventId, gateways: r.gateways }, `reported ${changes.length} change(s) made outside TIPS`);
  }

  /** Set once the owner retired this metal (S14): nothing runs again. */
  get retired(): boolean {
    return readRetirement(this.o.stateDir) !== undefined;
  }

  /**
   * Proves a new identity with an authenticated call (a token for its key) before the previous
   * generation is removed; if the master refuses it, the previous one is used again.
   */
  private async prove(next: MetalIdentity, previous: MetalIdentity): Promise<void> {
    this.identity = next;
    this.api?.dropToken();
    try {
      await this.metalApi().authenticate();
    } catch (e) {
      if (e instanceof ClientError && AUTH_CODES.has(e.code)) {
        this.identity = previous;
        this.api?.dropToken();
      }
      throw e;
    }
  }

  /** S14: the master said this metal is retired — wipe every credential, record it, stop for good. */
  private retire(serial: string | null): void {
    const r = wipeCredentials(this.o.stateDir, this.o.config.enrollmentFile, { code: 'metal_retired', serial, at: this.now().toISOString() });
    this.identity = undefined;
    this.api = undefined;
    this.state.updateStatus({ stopped: { code: 'metal_retired', at: r.at } });
    this.log.error({ event: 'metal_retired', serial, wiped: r.wiped.length }, 'this metal was retired by its owner: its key, certificates and enrollment secret are wiped; Phases 2 and 3 stop for good');
  }

  /** One cycle. Throws on an auth failure (after recording it) so `--once` can exit non-zero. */
  async cycle(): Promise<void> {
    const stopped = this.state.status().stopped;
    const retirement = readRetirement(this.o.stateDir);
    if (retirement) {
      // A wipe a kill interrupted is finished; then nothing runs.
      if (existsSync(join(this.o.stateDir, 'identity', 'current')) || loadEnrollmentSecret(this.o.config.enrollmentFile)) this.retire(retirement.serial);
      throw new ClientError('forbidden', `this metal was retired by its owner (${retirement.at}); it does nothing any more`, 'metal_retired');
    }
    try {
      let id = await this.ensureIdentity();
      if (this.renewalDue(id)) {
        const previous = id;
        id = this.identity = await reenroll(this.o.config, this.o.stateDir, id, this.log, (next) => this.prove(next, previous));
        this.api?.dropToken();
      }
      if (stopped) {
        this.log.warn({ event: 'phase2_stopped', code: stopped.code, since: stopped.at }, 'Phases 2 and 3 are stopped after an authentication failure; restart the agent once the metal is allowed again');
        return;
      }
      const api = this.metalApi();
      await this.flushReports();
      if (this.profileDirty) await this.sendProfile();
      const trust = await this.applyDirectives(await this.refreshTrustList());
      for (const phase of this.o.phase3 === false ? ([2] as const) : ([2, 3] as const)) {
        const work = await api.work(phase);
        this.state.updateStatus({ lastPullAt: this.now().toISOString() });
        if (phase === 3) this.notify = work.notify;
        this.log.info({ event: 'work', phase, items: work.items.map((i) => ({ space: i.spaceName, glaze: i.glaze.name, version: i.glaze.version })), rollbacks: work.rollbacks?.length ?? 0 }, `${work.items.length} Phase ${phase} item(s)`);
        // A rollback first: the Glaze it leaves is then refused, so the items below do not reinstall it.
        for (const r of work.rollbacks ?? []) await this.rollback(r);
        for (const item of work.items) await this.process(item, trust);
      }
      await this.flushReports();
      if (this.profileDirty) await this.sendProfile();
      await this.sendHeartbeat();
    } catch (e) {
      const ce = e instanceof ClientError ? e : undefined;
      const code = ce?.remoteCode ?? ce?.code ?? (e as { code?: string }).code ?? 'internal';
      this.state.updateStatus({ lastError: { code, message: (e as Error).message.slice(0, 500), at: this.now().toISOString() } });
      if (ce?.remoteCode === 'metal_retired') {
        this.retire(this.identity?.serial ?? null);
      } else if (ce && AUTH_CODES.has(ce.code)) {
        this.state.updateStatus({ stopped: { code, at: this.now().toISOString() } });
        this.log.error({ event: 'phase2_stopped', code, message: ce.message }, 'authentication/authorization refused: Phases 2 and 3 stop');
      }
      throw e;
    }
  }

  /** Each poll: the metal is alive (issue 11). A master that refuses it (older, rate limit) costs a warning, never the cycle. */
  private async sendHeartbeat(): Promise<void> {
    try {
      await this.metalApi().heartbeat({ uptimeSeconds: Math.round(process.uptime()), installed: this.state.installed().length });
    } catch (e) {
      if (e instanceof ClientError && AUTH_CODES.has(e.code)) throw e;
      this.log.warn({ event: 'heartbeat_failed', message: (e as Error).message }, 'heartbeat not recorded');
    }
  }

  /** `tips-client telemetry send`: one sample over the metal API (mTLS + PoP). */
  async sendTelemetry(values: Record<string, number | string | boolean>): Promise<{ id: string; receivedAt: string }> {
    await this.ensureIdentity();
    return this.metalApi().telemetry(values);
  }

  private async sendProfile(): Promise<void> {
    const p = buildProfile(this.o.config, this.state.installed(), undefined, this.o.protocols);
    await this.metalApi().putProfile(p);
    this.profileDirty = false;
    this.log.info({ event: 'profile_registered', glazes: p.glazes.length, interfaces: p.interfaces.length }, 'profile registered');
  }

  /**
   * The trust list from the master (S5): adopted at first use, later only when it narrows the kept
   * one (identity/trust-list.ts); a wider list needs a signed update (applyDirectives).
   */
  private async refreshTrustList(): Promise<TrustList> {
    const kept = readTrustList(this.state.trustListFile);
    let fresh: Uint8Array;
    try {
      fresh = await this.metalApi().trustList();
    } catch (e) {
      if (kept && !(e instanceof ClientError && AUTH_CODES.has(e.code))) {
        this.log.warn({ event: 'trust_list_unavailable', message: (e as Error).message }, 'using the kept trust list');
        return kept.list;
      }
      throw e;
    }
    const d = judgeServedList(kept, fresh);
    if (!d.adopt) {
      if (d.reason !== 'unchanged') this.log.warn({ event: d.reason, kept: kept?.list.version, detail: d.detail }, `the master's trust list is not adopted: ${d.reason}`);
      if (!kept) throw new ClientError('master_error', `GET /trust-list: ${d.detail}`);
      return kept.list;
    }
    writeFileDurably(this.state.trustListFile, d.bytes, 0o644);
    this.log.info({ event: 'trust_list_updated', how: d.how, version: d.list.version, operators: d.list.operators.map((o) => o.name) }, `trust list updated (${d.how})`);
    return d.list;
  }

  /**
   * Signed orders (S5, S6): a trust-list update is adopted only when an operator of the kept list
   * signed it; a re-enrollment order is obeyed only when so signed and newer than the last one
   * obeyed. A refused order is logged and reported in `status` once; it is not retried.
   */
  private async applyDirectives(trust: TrustList): Promise<TrustList> {
    const directives = await this.metalApi().directives();
    for (const d of directives) {
      const bytes = new Uint8Array(Buffer.from(d.envelope, 'base64'));
      const digest = createHash('sha256').update(bytes).digest('hex');
      if (this.state.isRefused(d.id, digest)) continue;
      const refuse = (reason: string, detail: string) => {
        this.log.warn({ event: 'directive_refused', id: d.id, kind: d.kind, reason, detail }, `refused a ${d.kind} order: ${reason}`);
        this.state.recordRefused({ glazeId: d.id, sha256: digest, spaceId: '', reason, detail, at: this.now().toISOString() });
        this.state.updateStatus({ lastError: { code: reason, message: `${d.kind} order ${d.id}: ${detail}`.slice(0, 500), at: this.now().toISOString() } });
      };
      if (d.kind === 'trust-list') {
        const kept = readTrustList(this.state.trustListFile);
        if (!kept) continue;
        const r = await judgeSignedList(kept, bytes, this.state.sequences());
        // Older or equal: one already in force (or superseded), not an attack worth a report.
        if (!r.adopt && (r.reason === 'suit_rollback' || r.reason === 'trust_list_rollback')) continue;
        if (!r.adopt) {
          refuse(r.reason, r.detail);
          continue;
        }
        writeFileDurably(this.state.trustListFile, r.bytes, 0o644);
        if (r.sequence !== undefined) this.state.recordSequence([TRUST_LIST_COMPONENT_KEY], r.sequence);
        this.log.info({ event: 'trust_list_updated', how: 'signed', id: d.id, version: r.list.version, operators: r.list.operators.map((o) => o.name) }, 'trust list updated by a signed update');
        trust = r.list;
      } else if (d.kind === 'reenroll') {
        const r = await judgeReenrollOrder(trust, bytes, this.state.sequences());
        if (!r.ok && r.reason === 'suit_rollback') continue;
        if (!r.ok) {
          refuse(r.reason, r.detail);
          continue;
        }
        const previous = this.identity!;
        try {
          this.identity = await enrollByOrder(this.o.config, this.o.stateDir, previous, r.instruction, this.log, (next) => this.prove(next, previous));
        } catch (e) {
          // EST refused the order's secret (spent, expired, another metal's): the current identity
          // stays in force, and the order is recorded as refused rather than stopping Phase 2.
          if (!(e instanceof ClientError && (e.code === 'est_refused' || e.code === 'est_bad_response'))) throw e;
          refuse(e.remoteCode ?? e.code, e.message);
          continue;
        }
        this.state.recordSequence([ENROLLMENT_COMPONENT_KEY], r.sequence);
        this.profileDirty = true;
      }
    }
    return trust;
  }

  private refuse(item: WorkItem, reason: string, detail: string, sequence: number | null, result: InstallReport['result'] = 'failed'): void {
    this.log.warn({ event: 'glaze_refused', glaze: item.glaze.id, name: item.glaze.name, space: item.spaceName, reason, detail }, `refused ${item.glaze.name} ${item.glaze.version}: ${reason}`);
    this.state.recordRefused({ glazeId: item.glaze.id, sha256: item.glaze.sha256, spaceId: item.spaceId, reason, detail, at: this.now().toISOString() });
    this.state.updateStatus({ lastError: { code: reason, message: `${item.glaze.name} ${item.glaze.version}: ${detail}`.slice(0, 500), at: this.now().toISOString() } });
    this.queueReport({ glazeId: item.glaze.id, spaceId: item.spaceId, result, reason, sequence: sequence ?? 0, at: this.now().toISOString() });
  }

  async process(item: WorkItem, trust: TrustList): Promise<void> {
    const g = item.glaze;
    if (this.state.installed().some((x) => x.id === g.id && x.sha256 === g.sha256)) return;
    if (this.state.isRefused(g.id, g.sha256)) return;
    const v = await verifyItem(item, trust, this.o.config, this.state.sequences());
    if (!v.ok) return this.refuse(item, v.reason, v.detail, v.sequence);
    const handler = this.o.handlers.get(g.handler);
    if (!handler) return this.refuse(item, 'handler_unknown', `this client has no "${String(g.handler).slice(0, 40)}" handler (it has ${[...this.o.handlers.keys()].join(', ')})`, v.value.sequence);
    mkdirSync(this.state.downloadsDir, { recursive: true });
    const file = join(this.state.downloadsDir, `${g.id}.part`);
    const links = linksFor(item);
    const t0 = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        this.log.info({ event: 'download_start', glaze: g.id, name: g.name, size: g.size, resumeFrom: statSize(file) }, `downloading ${g.name} ${g.version}`);
        if (links.length >= 2) await downloadOverLinks(this.metalApi(), item, file, links, this.log);
        else
          await this.metalApi().download(item.blobPath, file, g.size, (done) =>
            this.log.info({ event: 'download_progress', glaze: g.id, bytes: done, size: g.size, percent: Math.floor((done * 100) / Math.max(g.size, 1)) }, `${g.name}: ${done}/${g.size} bytes`),
          );
        this.log.info({ event: 'download_finished', glaze: g.id, bytes: statSize(file), links: Math.max(links.length, 1), ms: Date.now() - t0 }, `${g.name}: downloaded`);
        break;
      } catch (e) {
        if (e instanceof ClientError && AUTH_CODES.has(e.code)) throw e;
        if (attempt >= 5) return this.refuse(item, 'download_failed', (e as Error).message, v.value.sequence);
        this.log.warn({ event: 'download_retry', glaze: g.id, attempt, bytes: statSize(file), message: (e as Error).message }, 'download interrupted; resuming');
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 10_000)));
      }
    }
    const got = statSize(file);
    if (got !== g.size) {
      rmSync(file, { force: true });
      return this.refuse(item, 'suit_size_mismatch', `expected ${g.size} bytes, came ${got}`, v.value.sequence);
    }
    const digest = await sha256File(file);
    if (digest !== g.sha256) {
      rmSync(file, { force: true });
      return this.refuse(item, 'suit_digest_mismatch', `payload SHA-256: expected ${g.sha256}, came ${digest}`, v.value.sequence);
    }
    const inflight = { glazeId: g.id, spaceId: item.spaceId, handler: handler.name, sequence: v.value.sequence, name: g.name, version: g.version, sha256: g.sha256, components: v.value.components };
    this.state.setInflight(inflight);
    try {
      const install = () => handler.install({ payloadPath: file, glaze: { id: g.id, name: g.name, version: g.version, sha256: g.sha256 }, stateDir: this.o.stateDir, log: this.log });
      await (this.installGuard ? this.installGuard(install) : install());
    } catch (e) {
      this.state.setInflight(undefined);
      const code = e instanceof InstallError ? e.code : 'install_failed';
      return this.refuse(item, code, (e as Error).message, v.value.sequence, code === 'health_check_failed' ? 'rolled_back' : 'failed');
    }
    this.committed(inflight, g);
    this.state.setInflight(undefined);
    rmSync(file, { force: true });
  }

  /** After a handler committed: sequence, installed list, report, profile. */
  private committed(i: { glazeId: string; spaceId: string; handler: string; sequence: number; components?: string[] }, g: { id: string; name: string; version: string; sha256: string }): void {
    if (i.components) this.state.recordSequence(i.components, i.sequence);
    this.state.recordInstalled({ id: g.id, name: g.name, version: g.version, sequence: i.sequence, sha256: g.sha256, spaceId: i.spaceId, handler: i.handler, installedAt: this.now().toISOString() });
    this.queueReport({ glazeId: g.id, spaceId: i.spaceId, result: 'installed', reason: null, sequence: i.sequence, at: this.now().toISOString() });
    this.profileDirty = true;
    this.log.info({ event: 'glaze_installed', glaze: g.id, name: g.name, version: g.version, handler: i.handler }, `installed ${g.name} ${g.version}`);
  }

  private get outbox(): string {
    return join(this.o.stateDir, 'agent', 'outbox.json');
  }

  /** `tips metal rollback` (T15): through the handler, reported, never repeated for the same request. */
  private async rollback(r: RollbackRequest): Promise<void> {
    const done = await carryOutRollback(r, {
      state: this.state,
      handlers: this.o.handlers,
      stateDir: this.o.stateDir,
      log: this.log,
      now: this.now,
      queueReport: (x) => this.queueReport(x),
      aroundInstall: this.installGuard,
    });
    if (done) this.profileDirty = true;
  }

  /** Reports wait in a durable outbox until the master took them (a network cut loses none). */
  private queueReport(r: InstallReport): void {
    const list = readJsonIfExists<InstallReport[]>(this.outbox) ?? [];
    writeJsonDurably(this.outbox, [...list, r].slice(-500));
  }

  async flushReports(): Promise<void> {
    let list = readJsonIfExists<InstallReport[]>(this.outbox) ?? [];
    while (list.length > 0) {
      const r = list[0]!;
      try {
        await this.metalApi().postReport(signInstallReport(r, this.identity!.keyPem));
        this.log.info({ event: 'report_sent', glaze: r.glazeId, space: r.spaceId, result: r.result, reason: r.reason }, `reported ${r.result}`);
      } catch (e) {
        // A report the master refuses as such (a Space the metal left, a Glaze since deleted) would
        // block every later one: it is dropped, loudly. Network and auth failures keep it queued.
        if (!(e instanceof ClientError && e.code === 'master_error')) throw e;
        this.log.warn({ event: 'report_dropped', glaze: r.glazeId, space: r.spaceId, result: r.result, code: e.remoteCode, message: e.message }, 'the master refused a report; dropped');
      }
      list = list.slice(1);
      writeJsonDurably(this.outbox, list);
    }
  }

  pendingReports(): InstallReport[] {
    return readJsonIfExists<InstallReport[]>(this.outbox) ?? [];
  }
}

function statSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export function readTrustList(file: string): { list: TrustList; bytes: Uint8Array } | undefined {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch {
    return undefined;
  }
  return { list: decodeTrustList(bytes), bytes };
}
