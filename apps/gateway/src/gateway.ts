// TIPS-G: wires DHCP, the interface table, the enforcer and the uplink into one daemon.
import http from 'node:http';
import { networkInterfaces } from 'node:os';
import type { InterfaceType } from '@tips/core';
import type { Logger } from 'pino';
import { SmallFileCache } from './boot/files.ts';
import { GlazeCache } from './boot/glaze-cache.ts';
import { BootHttpServer } from './boot/http.ts';
import { TftpServer } from './boot/tftp.ts';
import type { Ipv4 } from './dhcp/codec.ts';
import { ipToNumber, LeasePool, numberToIp, SqliteLeaseStore } from './dhcp/leases.ts';
import type { BootConfig, LeaseEvent } from './dhcp/responder.ts';
import { DhcpServer } from './dhcp/server.ts';
import type { Enforcer } from './enforcer/enforcer.ts';
import { dhcpAdmission } from './onboarding-relay/dhcp-admission.ts';
import { OnboardingRelay, type RelayAdmission, type RelayLimits } from './onboarding-relay/relay.ts';
import { createMetrics, type GatewayMetrics } from './status/metrics.ts';
import type { Db } from './store/db.ts';
import { natByAddress, parseConntrack } from './table/conntrack.ts';
import { type InterfaceRow, InterfaceTable } from './table/table.ts';
import { Channel, type ChannelCommand } from './uplink/channel.ts';
import type { MasterClient } from './uplink/client.ts';
import { type Backoff, Registrar } from './uplink/registrar.ts';

export interface GatewayConfig {
  lan: string;
  lanType: InterfaceType;
  uplink: string;
  pool: { first: Ipv4; last: Ipv4 };
  leaseTimeSec: number;
  dnsServers: Ipv4[];
  boot: BootConfig | undefined;
  pendingTimeoutMs: number;
  retry: Backoff;
  statusHost: string;
  statusPort: number;
  natSampleMs: number;
  tableReportMs: number;
  expirySweepMs?: number;
  dhcpPort?: number;
  /** TFTP and HTTP boot on the LAN address (A2); undefined when another server provides them. */
  bootServices?: BootServicesConfig;
  /** The onboarding relay on the LAN address (issue 11, `--onboarding-relay`); undefined: off. */
  onboardingRelay?: { port: number; limits?: Partial<RelayLimits> };
}

export interface BootServicesConfig {
  ipxeDir: string;
  installerDir: string;
  cacheDir: string;
  httpPort: number;
  tftpPort: number;
  tftpMaxTransfers: number;
}

export class GatewayConfigError extends Error {
  constructor(
    readonly code: 'lan_not_found' | 'pool_outside_lan',
    message: string,
  ) {
    super(message);
    this.name = 'GatewayConfigError';
  }
}

/** Address and mask of the LAN interface, from the kernel. */
export function lanAddress(lan: string): { ip: Ipv4; mask: Ipv4; broadcast: Ipv4 } {
  const addr = networkInterfaces()[lan]?.find((a) => a.family === 'IPv4');
  if (!addr) throw new GatewayConfigError('lan_not_found', `interface ${lan} has no IPv4 address (the gateway serves DHCP from it)`);
  const ip = ipToNumber(addr.address);
  const mask = ipToNumber(addr.netmask);
  return { ip: addr.address, mask: addr.netmask, broadcast: numberToIp((ip | ~mask) >>> 0) };
}

export class Gateway {
  readonly metrics: GatewayMetrics = createMetrics();
  readonly table: InterfaceTable;
  private readonly pool: LeasePool;
  private dhcp: DhcpServer | undefined;
  private tftp: TftpServer | undefined;
  private bootHttp: BootHttpServer | undefined;
  private relay: OnboardingRelay | undefined;
  private registrar: Registrar | undefined;
  private channel: Channel | undefined;
  private status: http.Server | undefined;
  private timers: NodeJS.Timeout[] = [];
  private applyChain: Promise<void> = Promise.resolve();
  private reportTimer: NodeJS.Timeout | undefined;
  /** When the pending table report is due (scheduleReport moves it). */
  private reportDue = 0;

  constructor(
    private readonly cfg: GatewayConfig,
    db: Db,
    private readonly enforcer: Enforcer,
    private readonly master: MasterClient,
    private readonly log: Logger,
  ) {
    this.table = new InterfaceTable(db);
    const lan = lanAddress(cfg.lan);
    const within = (ip: Ipv4) => ((ipToNumber(ip) ^ ipToNumber(lan.ip)) & ipToNumber(lan.mask)) === 0;
    if (!within(cfg.pool.first) || !within(cfg.pool.last)) {
      throw new GatewayConfigError('pool_outside_lan', `pool ${cfg.pool.first}-${cfg.pool.last} is not inside ${lan.ip}/${lan.mask}`);
    }
    this.pool = new LeasePool({ ...cfg.pool, exclude: [lan.ip], leaseTimeSec: cfg.leaseTimeSec }, new SqliteLeaseStore(db), Date.now);
    this.lanInfo = lan;
  }

  private readonly lanInfo: { ip: Ipv4; mask: Ipv4; broadcast: Ipv4 };

  async start(): Promise<void> {
    // Enforcement first: whatever the table says is in force before a single DHCP answer goes out.
    await this.applyRules();
    this.registrar = new Registrar({
      table: this.table,
      register: (r) => this.master.register(r),
      registerBatch: (rs) => this.master.registerBatch(rs),
      onDecision: (before, after) => this.onStateChange(before, after),
      log: this.log,
      metrics: this.metrics,
      backoff: this.cfg.retry,
      pendingTimeoutMs: this.cfg.pendingTimeoutMs,
    });
    this.dhcp = new DhcpServer({
      pool: this.pool,
      config: {
        serverIp: this.lanInfo.ip,
        subnetMask: this.lanInfo.mask,
        broadcastAddress: this.lanInfo.broadcast,
        router: this.lanInfo.ip,
        dnsServers: this.cfg.dnsServers,
        ...(this.cfg.boot ? { boot: this.cfg.boot } : {}),
      },
      // The cached state answers the common case; only a Blocked row is read whole (its reason decides).
      admission: (mac) =>
        this.table.stateOf(mac, this.cfg.lan) !== 'blocked' ? 'serve' : dhcpAdmission(this.table.get(mac, this.cfg.lan), this.cfg.onboardingRelay !== undefined),
      onEvent: (e) => this.onLease(e),
      log: this.log,
      metrics: this.metrics,
      ...(this.cfg.dhcpPort !== undefined ? { port: this.cfg.dhcpPort } : {}),
    });
    await this.dhcp.start();
    await this.startBootServices();
    await this.startOnboardingRelay();
    this.registrar.kickAll();
    this.channel = new Channel({
      connectInfo: () => this.master.channelHeaders(),
      onCommand: (c) => this.onCommand(c),
      onConnected: () => {
        this.registrar?.kickAll();
        this.scheduleReport(0);
      },
      log: this.log,
      metrics: this.metrics,
      backoff: this.cfg.retry,
    });
    this.channel.start();
    this.every(this.cfg.natSampleMs, () => this.sampleNat());
    this.every(this.cfg.tableReportMs, () => this.scheduleReport(0));
    this.every(this.cfg.expirySweepMs ?? 30_000, () => this.expireAddresses());
    await this.startStatus();
    this.updateGauges();
    this.log.info({ lan: this.cfg.lan, uplink: this.cfg.uplink, pool: this.cfg.pool, rows: this.table.counts() }, 'gateway started');
  }

  /**
   * The MAC behind a LAN source address, attested from the gateway's own state: a bound lease of
   * that address, and that MAC's row on this LAN Active with that address. Anything else: undefined.
   */
  attest(ip: string): string | undefined {
    const mac = this.pool.holderOf(ip);
    if (!mac) return undefined;
    const row = this.table.get(mac, this.cfg.lan);
    return row?.state === 'active' && row.ip === ip ? mac : undefined;
  }

  /**
   * Who may use the onboarding relay: a source holding a bound lease of this gateway (its MAC is
   * the lease's, never one it claims), whose interface is not Blocked for a reason other than an
   * unknown MAC (a metal its owner blocked does not get to onboard again).
   */
  relayAdmission(ip: string): RelayAdmission {
    const mac = this.pool.holderOf(ip);
    if (!mac) return { admit: false, code: 'no_lease', message: 'this address holds no lease of this gateway: get one over DHCP first' };
    const row = this.table.get(mac, this.cfg.lan);
    if (row?.state === 'blocked' && row.reason !== 'unknown_mac') return { admit: false, code: 'interface_blocked', message: 'this interface is blocked by its owner' };
    return { admit: true, mac };
  }

  /** Resolves true once the row of `mac` on the LAN is Active, false after `waitMs`. */
  async whenActive(mac: string, waitMs: number): Promise<boolean> {
    const until = Date.now() + waitMs;
    for (;;) {
      if (this.table.get(mac, this.cfg.lan)?.state === 'active') {
        // The decision queued its rules when it was made: answer once they are in the kernel.
        await this.applyChain;
        return true;
      }
      if (Date.now() >= until || this.stopped) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The relay's port (0 in the config means any; this is the one bound). */
  get onboardingRelayPort(): number | undefined {
    return this.relay?.port;
  }

  private async startOnboardingRelay(): Promise<void> {
    const r = this.cfg.onboardingRelay;
    if (!r) return;
    this.relay = new OnboardingRelay({
      address: this.lanInfo.ip,
      port: r.port,
      master: this.master,
      admit: (ip) => this.relayAdmission(ip),
      proved: (mac, waitMs) => this.whenActive(mac, waitMs),
      log: this.log.child({ service: 'onboarding-relay' }),
      metrics: this.metrics,
      ...(r.limits ? { limits: r.limits } : {}),
    });
    await this.relay.start();
  }

  private async startBootServices(): Promise<void> {
    const b = this.cfg.bootServices;
    if (!b) return;
    const files = new SmallFileCache();
    this.tftp = new TftpServer({
      address: this.lanInfo.ip,
      port: b.tftpPort,
      ipxeDir: b.ipxeDir,
      files,
      admit: (ip) => this.attest(ip),
      limits: { maxTransfers: b.tftpMaxTransfers },
      log: this.log.child({ service: 'tftp' }),
      metrics: this.metrics,
    });
    await this.tftp.start();
    this.bootHttp = new BootHttpServer({
      address: this.lanInfo.ip,
      port: b.httpPort,
      ipxeDir: b.ipxeDir,
      installerDir: b.installerDir,
      cacheDir: b.cacheDir,
      files,
      glazes: new GlazeCache(b.cacheDir),
      attest: (ip) => this.attest(ip),
      master: this.master,
      log: this.log.child({ service: 'boot-http' }),
      metrics: this.metrics,
    });
    await this.bootHttp.start();
  }

  private every(ms: number, f: () => Promise<void> | void): void {
    const t = setInterval(() => {
      Promise.resolve(f()).catch((err) => this.log.warn({ err }, 'periodic task failed'));
    }, ms);
    this.timers.push(t);
  }

  private onLease(e: LeaseEvent): void {
    if (e.kind === 'bound') {
      const { row, created, ipChanged } = this.table.observeLease({
        mac: e.mac,
        gatewayInterface: this.cfg.lan,
        ip: e.ip,
        type: this.cfg.lanType,
        pxe: e.pxe,
        hostname: e.hostname,
      });
      if (created) this.log.info({ mac: e.mac, ip: e.ip }, 'new interface: Pending, asking TIPS-D');
      if (created || ipChanged) this.queueApply([row]);
      if (row.state === 'pending') this.registrar?.kick(row.mac, row.gatewayInterface);
      this.scheduleReport();
    } else if (e.kind === 'released') {
      const rows = this.table.forgetAddress(e.mac, e.ip);
      if (rows.length > 0) {
        this.queueApply(rows, e.ip);
        this.scheduleReport();
      }
    }
  }

  private onStateChange(before: InterfaceRow, after: InterfaceRow): void {
    if (before.state === after.state && before.ip === after.ip) return;
    this.log.info({ mac: after.mac, from: before.state, to: after.state, tipsId: after.tipsId, reason: after.reason }, 'interface state changed');
    this.queueApply([after], before.ip ?? undefined);
    this.scheduleReport();
  }

  async onCommand(c: ChannelCommand): Promise<void> {
    this.log.info({ command: c.type, mac: 'mac' in c ? c.mac : undefined, tipsId: 'tipsId' in c ? c.tipsId : undefined }, 'command from master');
    if (c.type === 'block') {
      const changed = this.table.block(c.tipsId, c.macs, c.reason ?? 'metal_blocked');
      for (const ch of changed) this.log.info({ mac: ch.after.mac, from: ch.before.state }, 'interface blocked by master');
      await this.queueApply(
        changed.map((ch) => ch.after),
        ...changed.map((ch) => ch.before.ip).filter((ip): ip is string => ip !== null),
      );
    } else {
      const removed = this.table.clear(c.mac);
      await this.queueApply(removed, ...removed.map((r) => r.ip).filter((ip): ip is string => ip !== null));
      // Unblocked, or the cause of a refusal was fixed (a MAC declared — an onboarded device is one):
      // re-register at once with the lease we know instead of waiting for the next renewal. Only
      // the master's answer to that registration makes the row Active.
      const lease = this.pool.leaseOf(c.mac);
      if (lease && lease.state === 'bound' && lease.expiresAt > Date.now()) {
        this.onLease({ kind: 'bound', mac: c.mac, ip: lease.ip, hostname: lease.hostname, pxe: false, renewal: true });
      }
    }
    this.scheduleReport();
  }

  /**
   * Serialised rule application: the rows of these interfaces (as the table holds them when their
   * turn comes) are changed element by element — or, with `changed` undefined, the whole table is
   * rendered. Flushes the given addresses' connections after the new rules are in.
   */
  queueApply(changed: { mac: string; gatewayInterface: string }[] | undefined, ...flush: (string | undefined)[]): Promise<void> {
    const ips = flush.filter((ip): ip is string => ip !== undefined);
    this.applyChain = this.applyChain
      .then(async () => {
        await this.applyRules(changed);
        for (const ip of ips) await this.enforcer.flushConnections(ip);
      })
      .catch((err) => {
        // A block that is not in the kernel is a hole: keep trying until the rules are in.
        this.metrics.enforcerApplies.inc({ outcome: 'failed' });
        this.log.error({ err }, 'enforcement failed, retrying in 1 s');
        if (!this.stopped) {
          // Recovery renders the whole table: it no longer matters which change failed.
          const t = setTimeout(() => void this.queueApply(undefined, ...ips), 1000);
          t.unref();
        }
      });
    return this.applyChain;
  }

  private async applyRules(changed?: { mac: string; gatewayInterface: string }[]): Promise<void> {
    if (changed) {
      try {
        // The cost of a change follows the rows it touches, not the size of the table (T2).
        await this.enforcer.change(changed.map((k) => ({ mac: k.mac, gatewayInterface: k.gatewayInterface, row: this.table.get(k.mac, k.gatewayInterface) })));
        this.metrics.enforcerApplies.inc({ outcome: 'ok' });
        this.updateGauges();
        return;
      } catch (err) {
        this.metrics.enforcerApplies.inc({ outcome: 'failed' });
        this.log.warn({ err }, 'element change of the rules failed: rendering the whole table');
      }
    }
    await this.enforcer.apply(this.table.all());
    this.metrics.enforcerApplies.inc({ outcome: 'ok' });
    this.updateGauges();
  }

  private updateGauges(): void {
    const counts = this.table.counts();
    for (const [state, n] of Object.entries(counts)) this.metrics.interfaces.set({ state }, n);
  }

  /**
   * A row whose lease ran out loses its address (and with it any grant in the rules); its decision
   * stays, so the metal is not asked about again when it comes back with a new lease.
   */
  expireAddresses(now = Date.now()): void {
    const flushed: string[] = [];
    const expired: InterfaceRow[] = [];
    for (const r of this.table.all()) {
      if (r.ip === null) continue;
      const lease = this.pool.leaseOf(r.mac);
      if (lease && lease.ip === r.ip && lease.state === 'bound' && lease.expiresAt > now) continue;
      expired.push(...this.table.forgetAddress(r.mac, r.ip));
      flushed.push(r.ip);
    }
    if (flushed.length > 0) {
      this.log.info({ addresses: flushed }, 'leases expired: addresses withdrawn from the rules');
      void this.queueApply(expired, ...flushed);
      this.scheduleReport();
    }
  }

  private async sampleNat(): Promise<void> {
    const flows = natByAddress(parseConntrack(await this.enforcer.sampleConnections()));
    const entries = [];
    for (const r of this.table.all()) {
      if (r.state !== 'active' || r.ip === null) continue;
      for (const entry of flows.get(r.ip) ?? []) entries.push({ mac: r.mac, gatewayInterface: r.gatewayInterface, entry });
    }
    const signature = JSON.stringify(entries);
    if (signature === this.lastNat) return;
    this.lastNat = signature;
    this.table.replaceNat(entries);
    this.scheduleReport();
  }

  private lastNat = '';

  private scheduleReport(delayMs = 500): void {
    // The report goes `delayMs` after the last call (a burst of changes is one report). Per DHCP
    // ACK this only moves the due time; the timer, when it fires early, waits for the rest.
    const due = Date.now() + delayMs;
    if (this.reportTimer && due >= this.reportDue) {
      this.reportDue = due;
      return;
    }
    if (this.reportTimer) clearTimeout(this.reportTimer);
    this.reportDue = due;
    const fire = () => {
      const wait = this.reportDue - Date.now();
      if (wait > 0) {
        this.reportTimer = setTimeout(fire, wait);
        return;
      }
      this.reportTimer = undefined;
      this.master.putTable(this.table.all()).catch((err) => this.log.debug({ msg: (err as Error).message }, 'table report not delivered'));
    };
    this.reportTimer = setTimeout(fire, delayMs);
  }

  private startStatus(): Promise<void> {
    this.status = http.createServer((req, res) => {
      if (req.url === '/metrics') {
        this.metrics.registry
          .metrics()
          .then((text) => {
            res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
            res.end(text);
          })
          .catch(() => {
            res.writeHead(500).end();
          });
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, uplink: this.channel?.connected ?? false, rows: this.table.counts() }));
      } else {
        res.writeHead(404).end();
      }
    });
    return new Promise((resolve, reject) => {
      this.status!.once('error', reject);
      this.status!.listen(this.cfg.statusPort, this.cfg.statusHost, () => resolve());
    });
  }

  private stopped = false;

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.reportTimer) clearTimeout(this.reportTimer);
    this.registrar?.stop();
    this.channel?.stop();
    await this.dhcp?.stop();
    await this.tftp?.stop();
    await this.bootHttp?.stop();
    await this.relay?.stop();
    await new Promise<void>((r) => (this.status ? this.status.close(() => r()) : r()));
    await this.applyChain;
  }
}
