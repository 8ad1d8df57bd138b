// Registration of Pending rows at TIPS-D (T5, T6, T7). Retries with exponential backoff for as long
// as it takes: after `pendingTimeoutMs` a row is flagged (reason `pending_timeout`) but stays Pending
// and keeps retrying. Nothing here can make a row Active except a well-formed answer of the master.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../status/metrics.ts';
import type { InterfaceRow, InterfaceTable } from '../table/table.ts';
import { MAX_BATCH, MasterError, type RegistrationDecision, type RegistrationRequest } from './client.ts';

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

/** Exponential backoff with ±20 % jitter (random comes in so tests are deterministic). */
export function backoffDelay(b: Backoff, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}

export interface RegistrarOptions {
  table: InterfaceTable;
  register: (req: RegistrationRequest) => Promise<RegistrationDecision>;
  /**
   * Several registrations in one request (one decision per item, in order). When given, rows that
   * become due together (start-up, the master came back, several leases in one turn of the event
   * loop) go in batches of up to MAX_BATCH; a lone row still uses `register`.
   */
  registerBatch?: (reqs: RegistrationRequest[]) => Promise<RegistrationDecision[]>;
  /** Called after a decision changed a row (the gateway re-applies rules and flushes connections). */
  onDecision: (before: InterfaceRow, after: InterfaceRow) => void;
  log: Logger;
  metrics: GatewayMetrics;
  backoff: Backoff;
  pendingTimeoutMs: number;
  now?: () => number;
  random?: () => number;
  /** A fresh idempotency key (default: 96 random bits, base64url). */
  newKey?: () => string;
}

interface Attempt {
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
  attempt: number;
  again: boolean;
  /**
   * Sent with every attempt of this registration, so the master records it once however many
   * times the answer is lost and the request retried (a replica killed after its commit, issue 13).
   * A new registration takes a new key: after an answer, or when what is reported changed.
   */
  key: string;
  /** What was last sent under `key`. */
  sent: RegistrationRequest | undefined;
}

export class Registrar {
  private readonly attempts = new Map<string, Attempt>();
  private readonly due = new Map<string, { mac: string; gi: string; a: Attempt }>();
  private stopped = false;

  constructor(private readonly o: RegistrarOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private newKey(): string {
    return this.o.newKey ? this.o.newKey() : randomBytes(12).toString('base64url');
  }

  /** Registers this row now (or right after the attempt in flight). */
  kick(mac: string, gatewayInterface: string): void {
    if (this.stopped) return;
    const k = `${mac}|${gatewayInterface}`;
    let a = this.attempts.get(k);
    if (!a) {
      a = { timer: undefined, inFlight: false, attempt: 0, again: false, key: this.newKey(), sent: undefined };
      this.attempts.set(k, a);
    }
    if (a.inFlight) {
      a.again = true;
      return;
    }
    if (a.timer) clearTimeout(a.timer);
    a.timer = undefined;
    if (!this.o.registerBatch) {
      void this.attempt(k, mac, gatewayInterface, a);
      return;
    }
    // Rows kicked in the same turn of the event loop leave together.
    if (this.due.has(k)) return;
    this.due.set(k, { mac, gi: gatewayInterface, a });
    if (this.due.size === 1) setImmediate(() => this.sendDue());
  }

  private sendDue(): void {
    const due = [...this.due.entries()];
    this.due.clear();
    if (this.stopped) return;
    if (due.length === 1) {
      const [k, d] = due[0]!;
      void this.attempt(k, d.mac, d.gi, d.a);
      return;
    }
    for (let i = 0; i < due.length; i += MAX_BATCH) void this.attemptBatch(due.slice(i, i + MAX_BATCH));
  }

  /** One batch request for several rows; a failed batch sends each row to its own backoff. */
  private async attemptBatch(due: [string, { mac: string; gi: string; a: Attempt }][]): Promise<void> {
    const sent: { k: string; mac: string; gi: string; a: Attempt; row: InterfaceRow; req: RegistrationRequest }[] = [];
    for (const [k, { mac, gi, a }] of due) {
      const row = this.o.table.get(mac, gi);
      if (row?.state !== 'pending' || row.ip === null) {
        this.attempts.delete(k);
        continue;
      }
      a.inFlight = true;
      sent.push({ k, mac, gi, a, row, req: this.requestFor(row, a) });
    }
    if (sent.length === 0) return;
    let answers: RegistrationDecision[] | undefined;
    let error: unknown;
    try {
      answers = sent.length === 1 ? [await this.o.register(sent[0]!.req)] : await this.o.registerBatch!(sent.map((x) => x.req));
    } catch (err) {
      error = err;
    }
    for (const [i, x] of sent.entries()) {
      try {
        if (answers) this.apply(x.mac, x.gi, answers[i]!);
        else this.failed(x.mac, x.gi, x.row, error);
      } finally {
        x.a.inFlight = false;
      }
      this.next(x.k, x.mac, x.gi, x.a, !answers);
    }
  }

  /** The request for this row under the attempt's key (a new key when the row's facts changed since the last send). */
  private requestFor(row: InterfaceRow, a: Attempt): RegistrationRequest {
    let req = requestOf(row, a.key);
    if (a.sent && !sameRegistration(a.sent, req)) {
      a.key = this.newKey();
      req = requestOf(row, a.key);
    }
    a.sent = req;
    return req;
  }

  /** Every Pending row, now (start-up, or the master came back). */
  kickAll(): void {
    for (const r of this.o.table.all()) if (r.state === 'pending') this.kick(r.mac, r.gatewayInterface);
  }

  private async attempt(k: string, mac: string, gi: string, a: Attempt): Promise<void> {
    const row = this.o.table.get(mac, gi);
    if (row?.state !== 'pending' || row.ip === null) {
      this.attempts.delete(k);
      return;
    }
    a.inFlight = true;
    let retry = true;
    try {
      this.apply(mac, gi, await this.o.register(this.requestFor(row, a)));
      retry = false;
    } catch (err) {
      this.failed(mac, gi, row, err);
    } finally {
      a.inFlight = false;
    }
    this.next(k, mac, gi, a, retry);
  }

  /** A well-formed answer of the master: the only way a Pending row changes state here. */
  private apply(mac: string, gi: string, d: RegistrationDecision): void {
    const change =
      d.decision === 'active'
        ? this.o.table.decide(mac, gi, { state: 'active', tipsId: d.tipsId, reason: null, onlyFrom: 'pending' })
        : this.o.table.decide(mac, gi, { state: 'blocked', tipsId: d.tipsId ?? null, reason: d.reason, onlyFrom: 'pending' });
    this.o.metrics.registrations.inc({ outcome: d.decision });
    this.o.log.info({ mac, gatewayInterface: gi, decision: d.decision, tipsId: d.tipsId, reason: d.decision === 'blocked' ? d.reason : undefined }, 'registration decided');
    if (change) this.o.onDecision(change.before, change.after);
  }

  private failed(mac: string, gi: string, row: InterfaceRow, err: unknown): void {
    const code = err instanceof MasterError ? err.code : 'internal_error';
    this.o.metrics.registrations.inc({ outcome: code });
    const timedOut = this.now() - row.since >= this.o.pendingTimeoutMs;
    const reason = timedOut ? 'pending_timeout' : code;
    if (timedOut && row.reason !== 'pending_timeout') {
      this.o.log.warn({ mac, gatewayInterface: gi, pendingMs: this.now() - row.since }, 'registration still undecided: row stays Pending, retrying');
    }
    this.o.table.recordAttempt(mac, gi, reason);
    this.o.log.debug({ mac, code, msg: (err as Error).message }, 'registration attempt failed');
  }

  /** After an attempt: done, again at once (kicked meanwhile), or retried after a backoff. */
  private next(k: string, mac: string, gi: string, a: Attempt, retry: boolean): void {
    if (this.stopped) return;
    if (!retry && !a.again) {
      this.attempts.delete(k);
      return;
    }
    if (a.again) {
      a.again = false;
      a.attempt = 0;
      // Answered: whatever comes next is a new registration. Not answered: the same one, retried.
      if (!retry) {
        a.key = this.newKey();
        a.sent = undefined;
      }
      void this.attempt(k, mac, gi, a);
      return;
    }
    const delay = backoffDelay(this.o.backoff, a.attempt++, this.o.random);
    a.timer = setTimeout(() => {
      a.timer = undefined;
      void this.attempt(k, mac, gi, a);
    }, delay);
    a.timer.unref?.();
  }

  /** True while any row has an attempt scheduled or in flight. */
  get busy(): boolean {
    return this.attempts.size > 0;
  }

  stop(): void {
    this.stopped = true;
    for (const a of this.attempts.values()) if (a.timer) clearTimeout(a.timer);
    this.attempts.clear();
    this.due.clear();
  }
}

function requestOf(row: InterfaceRow, idempotencyKey: string): RegistrationRequest {
  return {
    idempotencyKey,
    mac: row.mac,
    ip: row.ip!,
    gatewayInterface: row.gatewayInterface,
    interfaceType: row.type,
    pxe: row.pxe,
    ...(row.hostname ? { hostname: row.hostname } : {}),
  };
}

function sameRegistration(a: RegistrationRequest, b: RegistrationRequest): boolean {
  return a.mac === b.mac && a.ip === b.ip && a.gatewayInterface === b.gatewayInterface && a.interfaceType === b.interfaceType && a.pxe === b.pxe && a.hostname === b.hostname;
}
