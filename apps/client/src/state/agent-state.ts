/**
 * What the agent remembers between runs, each a small JSON file written durably:
 *   agent/installed.json   the Glazes TIPS installed: { id, name, version, sequence, sha256, spaceId, handler, installedAt }
 *   agent/sequences.json   the last accepted SUIT sequence number per component (S4 anti-rollback)
 *   agent/refused.json     Glazes refused or failed, by id and sha256 (reported once, not retried)
 *   agent/status.json      last error, last pull, whether Phases 2–3 are stopped by an auth failure
 *   agent/inflight.json    the install under way (written before a handler starts)
 *   agent/previous.json    per Glaze name, the entry a newer install replaced (what a manual rollback returns to)
 *   agent/rollbacks.json   rollback requests (event, Space, Glaze) already carried out, so a retried pull does not repeat one
 *   agent/rollback-inflight.json  the rollback under way (written before the handler is called)
 *   agent/retired.json     set when the owner retired the metal (identity/retire.ts): nothing runs again
 *   trust-list.cbor        the trust list in force (@tips/trust encoding)
 */
import { join } from 'node:path';
import { readJsonIfExists, removeDurably, writeJsonDurably } from './files.ts';

export interface InstalledGlaze {
  id: string;
  name: string;
  version: string;
  sequence: number;
  sha256: string;
  spaceId: string;
  handler: string;
  installedAt: string;
}
export interface RefusedGlaze {
  glazeId: string;
  sha256: string;
  spaceId: string;
  reason: string;
  detail: string;
  at: string;
}
export interface AgentStatus {
  lastError: { code: string; message: string; at: string } | null;
  lastPullAt: string | null;
  /** Set by an authentication/authorization failure: Phases 2 and 3 do not run until a restart. */
  stopped: { code: string; at: string } | null;
  /** S10: the update server that answered last (absent before the first answer). */
  server?: string | null;
  /** T15: the Phase 3 push subscription as the run loop last saw it (null: off, or the master names no broker). */
  push?: PushStatus | null;
}
export interface PushStatus {
  url: string;
  topic: string;
  state: 'subscribed' | 'connecting';
  since: string;
  /** Why it is not subscribed (the last connection error), or null. */
  why: string | null;
  lastHintAt: string | null;
}
export interface Inflight {
  glazeId: string;
  spaceId: string;
  handler: string;
  sequence: number;
  name: string;
  version: string;
  sha256: string;
  components: string[];
}

export class AgentState {
  constructor(readonly stateDir: string) {}

  private p(name: string): string {
    return join(this.stateDir, 'agent', name);
  }

  installed(): InstalledGlaze[] {
    return readJsonIfExists<InstalledGlaze[]>(this.p('installed.json')) ?? [];
  }
  /** Records an install; one entry per Glaze name (a newer version replaces the older, which is kept as the previous one). */
  recordInstalled(g: InstalledGlaze): void {
    const all = this.installed();
    const replaced = all.find((x) => x.name === g.name);
    if (replaced && replaced.sha256 !== g.sha256) writeJsonDurably(this.p('previous.json'), { ...this.previousAll(), [g.name]: replaced });
    writeJsonDurably(this.p('installed.json'), [...all.filter((x) => x.name !== g.name), g]);
  }

  private previousAll(): Record<string, InstalledGlaze> {
    return readJsonIfExists<Record<string, InstalledGlaze>>(this.p('previous.json')) ?? {};
  }
  previousOf(name: string): InstalledGlaze | undefined {
    return this.previousAll()[name];
  }
  /** After a manual rollback: the previous entry is what runs again (or nothing, when there was none). */
  restorePrevious(name: string): InstalledGlaze | undefined {
    const prev = this.previousOf(name);
    const list = this.installed().filter((x) => x.name !== name);
    writeJsonDurably(this.p('installed.json'), prev ? [...list, prev] : list);
    const { [name]: _gone, ...rest } = this.previousAll();
    writeJsonDurably(this.p('previous.json'), rest);
    return prev;
  }

  rollbackInflight(): { key: string; startedAt: string; entry: InstalledGlaze } | undefined {
    return readJsonIfExists<{ key: string; startedAt: string; entry: InstalledGlaze }>(this.p('rollback-inflight.json'));
  }
  setRollbackInflight(r: { key: string; startedAt: string; entry: InstalledGlaze } | undefined): void {
    if (r) writeJsonDurably(this.p('rollback-inflight.json'), r);
    else removeDurably(this.p('rollback-inflight.json'));
  }

  rollbackDone(key: string): boolean {
    return (readJsonIfExists<string[]>(this.p('rollbacks.json')) ?? []).includes(key);
  }
  recordRollback(key: string): void {
    const list = readJsonIfExists<string[]>(this.p('rollbacks.json')) ?? [];
    writeJsonDurably(this.p('rollbacks.json'), [...list.filter((k) => k !== key), key].slice(-200));
  }

  sequences(): Record<string, number> {
    return readJsonIfExists<Record<string, number>>(this.p('sequences.json')) ?? {};
  }
  recordSequence(components: string[], sequence: number): void {
    const s = this.sequences();
    for (const c of components) s[c] = Math.max(s[c] ?? 0, sequence);
    writeJsonDurably(this.p('sequences.json'), s);
  }

  refused(): RefusedGlaze[] {
    return readJsonIfExists<RefusedGlaze[]>(this.p('refused.json')) ?? [];
  }
  isRefused(glazeId: string, sha256: string): boolean {
    return this.refused().some((r) => r.glazeId === glazeId && r.sha256 === sha256);
  }
  recordRefused(r: RefusedGlaze): void {
    const list = this.refused().filter((x) => !(x.glazeId === r.glazeId && x.sha256 === r.sha256));
    writeJsonDurably(this.p('refused.json'), [...list, r].slice(-200));
  }

  status(): AgentStatus {
    return readJsonIfExists<AgentStatus>(this.p('status.json')) ?? { lastError: null, lastPullAt: null, stopped: null };
  }
  updateStatus(patch: Partial<AgentStatus>): void {
    writeJsonDurably(this.p('status.json'), { ...this.status(), ...patch });
  }

  inflight(): Inflight | undefined {
    return readJsonIfExists<Inflight>(this.p('inflight.json'));
  }
  setInflight(i: Inflight | undefined): void {
    if (i) writeJsonDurably(this.p('inflight.json'), i);
    else removeDurably(this.p('inflight.json'));
  }

  get trustListFile(): string {
    return join(this.stateDir, 'trust-list.cbor');
  }
  get downloadsDir(): string {
    return join(this.stateDir, 'downloads');
  }
}
