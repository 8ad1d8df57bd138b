/**
 * `tips-client run`: the agent's life on a metal (T14, S4, S5, S6, S7, S12, S14).
 *
 * At start: finish or roll back whatever a kill interrupted (identity generations, every install
 * handler, the install in flight). Then, each cycle: enroll if never enrolled, re-enroll before the
 * certificate expires, register the profile (after enrollment and after every install), refresh the
 * trust list, pull Phase 2 work, and for each item verify → download (resume) → install → report.
 * An authentication or authorization failure stops Phases 2 and 3 (logged, visible in `status`).
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTrustList, type TrustList } from '@tips/trust';
import type { Logger } from 'pino';
import { type ClientConfig, loadEnrollmentSecret } from '../config/config.ts';
import { ClientError } from '../errors.ts';
import { downloadOverLinks, linksFor } from '../download/index.ts';
import { enroll, readCa, reenroll } from '../identity/enroll.ts';
import { loadIdentity, type MetalIdentity, recoverIdentity } from '../identity/store.ts';
import { lastOutcome } from '../install/rootfs-ab.ts';
import { InstallError, type InstallHandler } from '../install/types.ts';
import { MetalApi, type WorkItem } from '../master/metal-api.ts';
import { buildProfile } from '../profile/profile.ts';
import { AgentState } from '../state/agent-state.ts';
import { readJsonIfExists, writeFileDurably, writeJsonDurably } from '../state/files.ts';
import { type InstallReport, signInstallReport } from '../updates/report.ts';
import { verifyItem } from '../updates/verify.ts';

export interface AgentOptions {
  config: ClientConfig;
  stateDir: string;
  log: Logger;
  handlers: Map<string, InstallHandler>;
  /** Re-enroll when the certificate has less than this left (ms); default a third of its lifetime. */
  renewBeforeMs?: number;
  now?: () => Date;
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

  constructor(private readonly o: AgentOptions) {
    this.state = new AgentState(o.stateDir);
    this.now = o.now ?? (() => new Date());
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
    this.api ??= new MetalApi(this.o.config, readCa(this.o.config), () => this.identity!, this.log, () => this.now().getTime());
    return this.api;
  }

  /** One cycle. Throws on an auth failure (after recording it) so `--once` can exit non-zero. */
  async cycle(): Promise<void> {
    const stopped = this.state.status().stopped;
    try {
      let id = await this.ensureIdentity();
      if (this.renewalDue(id)) {
        id = this.identity = await reenroll(this.o.config, this.o.stateDir, id, this.log);
        this.api?.dropToken();
      }
      if (stopped) {
        this.log.warn({ event: 'phase2_stopped', code: stopped.code, since: stopped.at }, 'Phases 2 and 3 are stopped after an authentication failure; restart the agent once the metal is allowed again');
        return;
      }
      const api = this.metalApi();
      await this.flushReports();
      if (this.profileDirty) await this.sendProfile();
      const trust = await this.refreshTrustList();
      const work = await api.work(2);
      this.state.updateStatus({ lastPullAt: this.now().toISOString() });
      this.log.info({ event: 'work', phase: 2, items: work.items.map((i) => ({ space: i.spaceName, glaze: i.glaze.name, version: i.glaze.version })) }, `${work.items.length} Phase 2 item(s)`);
      for (const item of work.items) await this.process(item, trust);
      await this.flushReports();
      if (this.profileDirty) await this.sendProfile();
    } catch (e) {
      const ce = e instanceof ClientError ? e : undefined;
      const code = ce?.remoteCode ?? ce?.code ?? (e as { code?: string }).code ?? 'internal';
      this.state.updateStatus({ lastError: { code, message: (e as Error).message.slice(0, 500), at: this.now().toISOString() } });
      if (ce && AUTH_CODES.has(ce.code)) {
        this.state.updateStatus({ stopped: { code, at: this.now().toISOString() } });
        this.log.error({ event: 'phase2_stopped', code, message: ce.message }, 'authentication/authorization refused: Phases 2 and 3 stop');
      }
      throw e;
    }
  }

  private async sendProfile(): Promise<void> {
    const p = buildProfile(this.o.config, this.state.installed());
    await this.metalApi().putProfile(p);
    this.profileDirty = false;
    this.log.info({ event: 'profile_registered', glazes: p.glazes.length, interfaces: p.interfaces.length }, 'profile registered');
  }

  /** The trust list from the master; a list with a lower version than the one kept is refused. */
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
    const list = decodeTrustList(fresh);
    if (kept && list.version < kept.list.version) {
      this.log.warn({ event: 'trust_list_rollback', kept: kept.list.version, offered: list.version }, 'the master offered an older trust list; keeping ours');
      return kept.list;
    }
    if (!kept || !Buffer.from(fresh).equals(Buffer.from(kept.bytes))) {
      writeFileDurably(this.state.trustListFile, fresh, 0o644);
      this.log.info({ event: 'trust_list_updated', version: list.version, operators: list.operators.map((o) => o.name) }, 'trust list updated');
    }
    return list;
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
      await handler.install({ payloadPath: file, glaze: { id: g.id, name: g.name, version: g.version, sha256: g.sha256 }, stateDir: this.o.stateDir, log: this.log });
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
