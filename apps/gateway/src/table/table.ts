// The interface table (T5–T11): one row per (MAC, gateway interface), persisted in the gateway's
// SQLite file, with the NAT columns of the paper's Fig. 4 sampled from conntrack.
import type { InterfaceState, InterfaceType } from '@tips/core';
import type { Db } from '../store/db.ts';

export interface NatEntry {
  protocol: string;
  localPort: number | null;
  destination: string;
  destinationPort: number | null;
  translatedAddress: string | null;
  outgoingPort: number | null;
}

export interface InterfaceRow {
  mac: string;
  gatewayInterface: string;
  tipsId: string | null;
  state: InterfaceState;
  type: InterfaceType;
  ip: string | null;
  pxe: boolean;
  hostname: string | null;
  /** Unix ms when the row entered its current state. */
  since: number;
  /** Why the last decision was made (`unknown_mac`, `metal_blocked`, …) or why the row still waits. */
  reason: string | null;
  /** Registration attempts while Pending. */
  attempts: number;
  updatedAt: number;
  nat: NatEntry[];
}

interface Row {
  mac: string;
  gateway_interface: string;
  tips_id: string | null;
  state: InterfaceState;
  type: InterfaceType;
  ip: string | null;
  pxe: number;
  hostname: string | null;
  since: number;
  reason: string | null;
  attempts: number;
  updated_at: number;
}

interface NatRow {
  mac: string;
  gateway_interface: string;
  protocol: string;
  local_port: number | null;
  destination: string;
  destination_port: number | null;
  translated_address: string | null;
  outgoing_port: number | null;
}

const key = (mac: string, gi: string) => `${mac}|${gi}`;

export class InterfaceTable {
  /** Statements of the DHCP path (a lease: admission, then the table learns it), compiled once. */
  private readonly getStmt;
  private readonly natOfStmt;
  private readonly stateStmt;
  private readonly insertStmt;
  private readonly observeStmt;
  private readonly dropNatStmt;
  /** One transaction wrapper for the DHCP path, made once (a savepoint inside the DHCP group's transaction). */
  private readonly tx: <T>(fn: () => T) => T;
  /**
   * State of each (MAC, interface) the DHCP admission asked about (null: no row), read through from
   * the database; every write to a row drops its entry, a failed write drops them all.
   */
  private readonly states = new Map<string, Map<string, InterfaceState | null>>();

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.getStmt = db.prepare<[string, string], Row>('SELECT * FROM interfaces WHERE mac = ? AND gateway_interface = ?');
    this.natOfStmt = db.prepare<[string, string], NatRow>('SELECT * FROM nat WHERE mac = ? AND gateway_interface = ? ORDER BY rowid');
    this.stateStmt = db.prepare<[string, string], { state: InterfaceState }>('SELECT state FROM interfaces WHERE mac = ? AND gateway_interface = ?');
    this.insertStmt = db.prepare(
      `INSERT INTO interfaces (mac, gateway_interface, tips_id, state, type, ip, pxe, hostname, since, reason, attempts, updated_at)
       VALUES (?, ?, NULL, 'pending', ?, ?, ?, ?, ?, 'awaiting_decision', 0, ?)`,
    );
    this.observeStmt = db.prepare('UPDATE interfaces SET ip = ?, pxe = ?, hostname = COALESCE(?, hostname), updated_at = ? WHERE mac = ? AND gateway_interface = ?');
    this.dropNatStmt = db.prepare('DELETE FROM nat WHERE mac = ? AND gateway_interface = ?');
    const tx = db.transaction((fn: () => unknown) => fn());
    this.tx = <T>(fn: () => T) => tx(fn) as T;
  }

  /** The row's state (undefined: no row) — the DHCP admission's question, answered from memory. */
  stateOf(mac: string, gatewayInterface: string): InterfaceState | undefined {
    let ofMac = this.states.get(mac);
    if (!ofMac) {
      ofMac = new Map();
      this.states.set(mac, ofMac);
    }
    let s = ofMac.get(gatewayInterface);
    if (s === undefined) {
      s = this.stateStmt.get(mac, gatewayInterface)?.state ?? null;
      ofMac.set(gatewayInterface, s);
    }
    return s ?? undefined;
  }

  /** Runs a write; the cached states of `macs` (all of them when undefined or on failure) are dropped. */
  private writing<T>(macs: string[] | undefined, fn: () => T): T {
    const drop = () => {
      if (!macs) this.states.clear();
      else for (const m of macs) this.states.delete(m);
    };
    drop();
    try {
      return fn();
    } catch (err) {
      this.states.clear();
      throw err;
    } finally {
      drop();
    }
  }

  get(mac: string, gatewayInterface: string): InterfaceRow | undefined {
    const r = this.getStmt.get(mac, gatewayInterface);
    return r && this.withNat([r])[0];
  }

  all(): InterfaceRow[] {
    return this.withNat(this.db.prepare<[], Row>('SELECT * FROM interfaces ORDER BY gateway_interface, mac').all());
  }

  byMac(mac: string): InterfaceRow[] {
    return this.withNat(this.db.prepare<[string], Row>('SELECT * FROM interfaces WHERE mac = ?').all(mac));
  }

  private withNat(rows: Row[]): InterfaceRow[] {
    const nat = new Map<string, NatEntry[]>();
    // A few rows (one interface changing) read their own NAT entries by index: the cost of a change
    // must not grow with the table.
    const natRows =
      rows.length <= 16
        ? rows.flatMap((r) => this.natOfStmt.all(r.mac, r.gateway_interface))
        : this.db.prepare<[], NatRow>('SELECT * FROM nat ORDER BY rowid').all();
    for (const n of natRows) {
      const list = nat.get(key(n.mac, n.gateway_interface)) ?? [];
      list.push({
        protocol: n.protocol,
        localPort: n.local_port,
        destination: n.destination,
        destinationPort: n.destination_port,
        translatedAddress: n.translated_address,
        outgoingPort: n.outgoing_port,
      });
      nat.set(key(n.mac, n.gateway_interface), list);
    }
    return rows.map((r) => ({
      mac: r.mac,
      gatewayInterface: r.gateway_interface,
      tipsId: r.tips_id,
      state: r.state,
      type: r.type,
      ip: r.ip,
      pxe: r.pxe === 1,
      hostname: r.hostname,
      since: r.since,
      reason: r.reason,
      attempts: r.attempts,
      updatedAt: r.updated_at,
      nat: nat.get(key(r.mac, r.gateway_interface)) ?? [],
    }));
  }

  /**
   * A lease was bound (T5): a new (MAC, interface) becomes Pending; a known one keeps its state and
   * learns its (possibly new) address. Returns the row and whether it was created.
   */
  observeLease(input: {
    mac: string;
    gatewayInterface: string;
    ip: string;
    type: InterfaceType;
    pxe: boolean;
    hostname: string | null;
  }): { row: InterfaceRow; created: boolean; ipChanged: boolean } {
    const now = this.now();
    return this.writing([input.mac], () =>
      this.tx(() => {
        const existing = this.get(input.mac, input.gatewayInterface);
        if (!existing) {
          this.insertStmt.run(input.mac, input.gatewayInterface, input.type, input.ip, input.pxe ? 1 : 0, input.hostname, now, now);
          return { row: this.get(input.mac, input.gatewayInterface)!, created: true, ipChanged: true };
        }
        const ipChanged = existing.ip !== input.ip;
        this.observeStmt.run(input.ip, input.pxe ? 1 : 0, input.hostname, now, input.mac, input.gatewayInterface);
        if (ipChanged) this.dropNatStmt.run(input.mac, input.gatewayInterface);
        // The row as the UPDATE left it (no second read).
        const row: InterfaceRow = {
          ...existing,
          ip: input.ip,
          pxe: input.pxe,
          hostname: input.hostname ?? existing.hostname,
          updatedAt: now,
          nat: ipChanged ? [] : existing.nat,
        };
        return { row, created: false, ipChanged };
      }),
    );
  }

  /**
   * Applies a decision. With `onlyFrom`, nothing changes unless the row is still in that state (an
   * answer to a registration must not undo a block that arrived while it was in flight).
   * Returns the row before and after, or undefined when nothing changed hands.
   */
  decide(
    mac: string,
    gatewayInterface: string,
    d: { state: 'active' | 'blocked'; tipsId: string | null; reason: string | null; onlyFrom?: InterfaceState },
  ): { before: InterfaceRow; after: InterfaceRow } | undefined {
    const now = this.now();
    return this.writing([mac], this.db.transaction(() => {
      const before = this.get(mac, gatewayInterface);
      if (!before) return undefined;
      if (d.onlyFrom !== undefined && before.state !== d.onlyFrom) return undefined;
      const since = before.state === d.state ? before.since : now;
      this.db
        .prepare('UPDATE interfaces SET state = ?, tips_id = COALESCE(?, tips_id), reason = ?, since = ?, updated_at = ? WHERE mac = ? AND gateway_interface = ?')
        .run(d.state, d.tipsId, d.reason, since, now, mac, gatewayInterface);
      return { before, after: this.get(mac, gatewayInterface)! };
    }));
  }

  /** Counts a registration attempt of a Pending row and records why it is still waiting. */
  recordAttempt(mac: string, gatewayInterface: string, reason: string): void {
    this.db
      .prepare("UPDATE interfaces SET attempts = attempts + 1, reason = ?, updated_at = ? WHERE mac = ? AND gateway_interface = ? AND state = 'pending'")
      .run(reason, this.now(), mac, gatewayInterface);
  }

  /** The master's `block` (T16): every row of the TIPS ID or of the listed MACs becomes Blocked. */
  block(tipsId: string | null, macs: string[], reason: string): { before: InterfaceRow; after: InterfaceRow }[] {
    // Rows of the TIPS ID may be of other MACs: every cached state is dropped.
    return this.writing(undefined, this.db.transaction(() => {
      const targets = this.withNat(
        this.db
          .prepare<[string | null, string], Row>('SELECT * FROM interfaces WHERE tips_id = ? OR mac IN (SELECT value FROM json_each(?)) ORDER BY gateway_interface, mac')
          .all(tipsId, JSON.stringify(macs)),
      );
      const out: { before: InterfaceRow; after: InterfaceRow }[] = [];
      for (const r of targets) {
        const d = this.decide(r.mac, r.gatewayInterface, { state: 'blocked', tipsId, reason });
        if (d) out.push(d);
      }
      return out;
    }));
  }

  /** The master's `clear` (T10): forget every row of the MAC; the next DHCP exchange registers afresh. */
  clear(mac: string): InterfaceRow[] {
    return this.writing([mac], this.db.transaction(() => {
      const rows = this.byMac(mac);
      this.db.prepare('DELETE FROM interfaces WHERE mac = ?').run(mac);
      this.db.prepare('DELETE FROM nat WHERE mac = ?').run(mac);
      return rows;
    }));
  }

  /** The lease was released: the row stays (its decision is about the MAC) but loses its address. */
  forgetAddress(mac: string, ip: string): InterfaceRow[] {
    return this.db.transaction(() => {
      const rows = this.byMac(mac).filter((r) => r.ip === ip);
      for (const r of rows) {
        this.db.prepare('UPDATE interfaces SET ip = NULL, updated_at = ? WHERE mac = ? AND gateway_interface = ?').run(this.now(), r.mac, r.gatewayInterface);
        this.db.prepare('DELETE FROM nat WHERE mac = ? AND gateway_interface = ?').run(r.mac, r.gatewayInterface);
      }
      return rows;
    })();
  }

  /** Replaces the NAT sample of every row at once. */
  replaceNat(entries: { mac: string; gatewayInterface: string; entry: NatEntry }[]): void {
    const now = this.now();
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM nat').run();
      const ins = this.db.prepare(
        `INSERT INTO nat (mac, gateway_interface, protocol, local_port, destination, destination_port, translated_address, outgoing_port, seen_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const { mac, gatewayInterface, entry: e } of entries) {
        ins.run(mac, gatewayInterface, e.protocol, e.localPort, e.destination, e.destinationPort, e.translatedAddress, e.outgoingPort, now);
      }
    })();
  }

  counts(): Record<InterfaceState, number> {
    const out: Record<InterfaceState, number> = { pending: 0, active: 0, blocked: 0 };
    for (const r of this.db.prepare<[], { state: InterfaceState; n: number }>('SELECT state, COUNT(*) AS n FROM interfaces GROUP BY state').all()) {
      out[r.state] = r.n;
    }
    return out;
  }
}
