// `tips-gateway`: run the gateway daemon, enroll it with a master, read its table and leases.
import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseInterfaceType } from '@tips/core';
import { Command, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { ipToNumber, parsePoolRange, SqliteLeaseStore } from './dhcp/leases.ts';
import { ONBOARDING_RELAY_PORT } from '@tips/onboarding';
import { BOOT_PORTS } from './enforcer/enforcer.ts';
import { NftEnforcer, runCommand, spawnNft } from './enforcer/nft.ts';
import { Gateway, lanAddress } from './gateway.ts';
import { openGatewayDb } from './store/db.ts';
import { InterfaceTable } from './table/table.ts';
import { enrollGateway, MasterClient } from './uplink/client.ts';
import { CA_FILE, CERT_FILE, generateGatewayKey, loadIdentity, saveIdentity } from './uplink/identity.ts';
import { RENEWAL_CHECK_MS, renewIfDue } from './uplink/renewal.ts';
import { publicKeyPem } from './uplink/sign.ts';

function int(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer ${min}..${max}`);
    return n;
  };
}

/** Durations like 500ms, 30s, 5m, or plain milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a duration (e.g. 500ms, 30s, 5m)`);
  const n = Number(m[1]);
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
}

function ipv4(v: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new InvalidArgumentError(`"${v}" is not an IPv4 address`);
  return v;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, ipv4(v)];
}

function fmtTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(headers));
  for (const r of rows) console.log(line(r));
}

export function createProgram(): Command {
  const program = new Command('tips-gateway')
    .description('TIPS gateway (TIPS-G): DHCP/PXE for metals, interface table, enforcement, uplink to the master')
    .showHelpAfterError();

  program
    .command('run')
    .description('run the gateway daemon (needs root: binds port 67, writes nftables rules)')
    .requiredOption('--lan <iface>', 'interface where the metals live (DHCP is served here)')
    .requiredOption('--uplink <iface>', 'interface towards the master and the outside (NAT for Active metals)')
    .requiredOption('--pool <first-last>', 'address pool, e.g. 10.77.0.100-10.77.0.200')
    .requiredOption('--data-dir <dir>', 'state directory (leases, table, gateway key)')
    .option('--master <url>', 'master base URL (default: the one recorded at enrollment)')
    .option('--lease-time <duration>', 'DHCP lease time', parseDuration, 3_600_000)
    .option('--dns <ip>', 'DNS server to announce (repeatable)', collect, [])
    .addOption(new Option('--lan-type <type>', 'interface type recorded for metals on the LAN').choices(['ethernet', 'wifi', 'other']).default('ethernet'))
    .option('--pending-timeout <duration>', 'after this long without an answer a Pending row is flagged (it stays Pending, retries continue)', parseDuration, 60_000)
    .option('--retry-initial <duration>', 'first registration/reconnect retry delay', parseDuration, 500)
    .option('--retry-max <duration>', 'largest retry delay', parseDuration, 15_000)
    .option('--nft-table <name>', 'nftables table (family inet) owned by the gateway', 'tips_gw')
    .option('--tftp-server <ip>', 'next-server / option 66 for PXE clients (default: the LAN address)')
    .option('--bios-bootfile <file>', 'boot file for legacy BIOS PXE clients (TFTP)', 'undionly.kpxe')
    .option('--uefi-bootfile <url>', 'boot file for UEFI clients (default http://<lan address>:<boot-http-port>/ipxe.efi)')
    .option('--boot-http-port <port>', 'HTTP boot service port on the LAN address (iPXE script, boot programs, installer, Phase 1 relay)', int('boot-http-port', 1, 65535), BOOT_PORTS.httpTcp)
    .option('--ipxe-dir <dir>', 'directory of the iPXE boot programs undionly.kpxe and ipxe.efi (Debian package ipxe)', '/usr/lib/ipxe')
    .option('--installer-dir <dir>', 'directory with the installer\'s vmlinuz and initrd.img (default $TIPS_CACHE_DIR/installer/current, TIPS_CACHE_DIR defaulting to ~/.cache/tips; kept by `npm run build:installer`)')
    .option('--cache-dir <dir>', 'boot cache: per-metal iPXE scripts and Glazes by SHA-256 (default <data-dir>/boot-cache)')
    .option('--tftp-port <port>', 'TFTP port on the LAN address', int('tftp-port', 0, 65535), BOOT_PORTS.tftpUdp)
    .option('--tftp-max-transfers <n>', 'TFTP transfers at once; more are told to retry', int('tftp-max-transfers', 1, 4096), 64)
    .option('--no-boot-services', 'do not serve TFTP and HTTP boot here (another server on the LAN address does)')
    .option('--status-host <host>', 'address of the status/metrics HTTP server', '127.0.0.1')
    .option('--status-port <port>', 'port of the status/metrics HTTP server (0 = any)', int('status-port', 0, 65535), 9467)
    .option('--nat-sample <duration>', 'how often NAT columns are read from conntrack', parseDuration, 2000)
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--onboarding-relay', `zero-touch onboarding (issue 11): let devices nobody declared reach the onboarding relay on the LAN address (only rendezvous TO1 and the owner's TO2, forwarded to the master over the uplink; 404 for anything else); off by default`)
    .option('--onboarding-relay-port <port>', 'TCP port of the onboarding relay on the LAN address (devices use the well-known one: change it only for tests)', int('onboarding-relay-port', 1, 65535), ONBOARDING_RELAY_PORT)
    .action(async (o) => {
      if (o.leaseTime < 60_000) throw new InvalidArgumentError('--lease-time must be at least 60s');
      const log = pino({ level: o.logLevel, base: { app: 'tips-gateway' } });
      const pool = parsePoolRange(o.pool);
      mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
      const identity = loadIdentity(o.dataDir);
      const masterUrl: string = o.master ?? identity.master;
      const lan = lanAddress(o.lan);
      // Towards an https:// master: mTLS with gateway.crt, the master verified against ca.pem.
      const master = new MasterClient(masterUrl, identity.gatewayId, identity.key, 10_000, identity.tls);
      const renew = async () => {
        try {
          const r = await renewIfDue(master, o.dataDir, identity.key, new Date());
          if (r.renewed) log.info({ notAfter: r.notAfter }, 'gateway certificate renewed');
        } catch (err) {
          log.warn({ msg: (err as Error).message }, 'gateway certificate renewal failed; retrying within the hour');
        }
      };
      // Not awaited: an unreachable master must not delay DHCP and enforcement on the LAN.
      void renew();
      setInterval(() => void renew(), RENEWAL_CHECK_MS).unref();
      const db = openGatewayDb(o.dataDir);
      const enforcer = new NftEnforcer({
        table: o.nftTable,
        lan: [o.lan],
        lanAddress: lan.ip,
        uplink: o.uplink,
        bootUdpPorts: [o.tftpPort || BOOT_PORTS.tftpUdp],
        bootTcpPorts: [o.bootHttpPort],
        ...(o.onboardingRelay ? { onboardingRelayPort: o.onboardingRelayPort } : {}),
      }, runCommand, { interactive: spawnNft });
      const gw = new Gateway(
        {
          lan: o.lan,
          lanType: parseInterfaceType(o.lanType, 'lan-type'),
          uplink: o.uplink,
          pool,
          leaseTimeSec: Math.round(o.leaseTime / 1000),
          dnsServers: o.dns,
          boot: {
            tftpServer: o.tftpServer ? ipv4(o.tftpServer) : lan.ip,
            biosBootfile: o.biosBootfile,
            uefiBootfile: o.uefiBootfile ?? `http://${lan.ip}:${o.bootHttpPort}/ipxe.efi`,
            ...(o.bootServices ? { ipxeScriptUrl: `http://${lan.ip}:${o.bootHttpPort}/boot/script.ipxe` } : {}),
          },
          ...(o.bootServices
            ? {
                bootServices: {
                  ipxeDir: o.ipxeDir,
                  installerDir: o.installerDir ?? join(process.env.TIPS_CACHE_DIR || join(homedir(), '.cache', 'tips'), 'installer', 'current'),
                  cacheDir: o.cacheDir ?? join(o.dataDir, 'boot-cache'),
                  httpPort: o.bootHttpPort,
                  tftpPort: o.tftpPort,
                  tftpMaxTransfers: o.tftpMaxTransfers,
                },
              }
            : {}),
          ...(o.onboardingRelay ? { onboardingRelay: { port: o.onboardingRelayPort } } : {}),
          pendingTimeoutMs: o.pendingTimeout,
          retry: { initialMs: o.retryInitial, maxMs: o.retryMax },
          statusHost: o.statusHost,
          statusPort: o.statusPort,
          natSampleMs: o.natSample,
          tableReportMs: 30_000,
        },
        db,
        enforcer,
        master,
        log,
      );
      await gw.start();
      log.info({ gatewayId: identity.gatewayId, master: masterUrl }, 'ready');
      const shutdown = async (signal: string) => {
        log.info({ signal }, 'stopping (rules stay in force)');
        await gw.stop();
        db.close();
        process.exit(0);
      };
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      process.once('SIGINT', () => void shutdown('SIGINT'));
    });

  program
    .command('enroll')
    .description('enroll this gateway with a master using the one-time token printed by `tips gateway add`')
    .requiredOption('--master <url>', 'master base URL, e.g. https://tips.example.com')
    .requiredOption('--token <token>', 'one-time enrollment token (spent, never stored)')
    .requiredOption('--data-dir <dir>', `state directory: gateway.key (0600), ${CERT_FILE} and ${CA_FILE} (0644)`)
    .option('--ca <file>', 'PEM of the TIPS root CA (`tips` GET /api/v1/enrollment/ca) to verify an https:// master at enrollment; default: the system CAs')
    .option('--name <name>', 'gateway name to report')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
      const key = generateGatewayKey();
      const enrolled = await enrollGateway(
        o.master,
        { enrollmentToken: o.token, ...(o.name ? { name: o.name } : {}), publicKey: publicKeyPem(key) },
        o.ca ? { caPem: readFileSync(o.ca, 'utf8') } : {},
      );
      const { gatewayId } = enrolled;
      saveIdentity(o.dataDir, {
        gatewayId,
        master: o.master,
        name: o.name ?? null,
        enrolledAt: new Date().toISOString(),
        key,
        tls: { certPem: enrolled.certificate, caPem: enrolled.caChain },
      });
      if (o.json) console.log(JSON.stringify({ gatewayId, master: o.master, certificateNotAfter: enrolled.notAfter }));
      else console.log(`enrolled as ${gatewayId} with ${o.master}; key, ${CERT_FILE} (until ${enrolled.notAfter}) and ${CA_FILE} stored in ${o.dataDir}`);
    });

  program
    .command('table')
    .description('print the interface table (works while the daemon runs)')
    .requiredOption('--data-dir <dir>', 'state directory of the gateway')
    .option('--json', 'print JSON')
    .action((o) => {
      const db = openGatewayDb(o.dataDir);
      const rows = new InterfaceTable(db).all();
      db.close();
      if (o.json) {
        console.log(JSON.stringify({ rows }, null, 2));
        return;
      }
      const lines: string[][] = [];
      for (const r of rows) {
        const base = [r.tipsId ?? '-', r.state, r.type, r.mac, r.ip ?? '-', r.gatewayInterface];
        if (r.nat.length === 0) lines.push([...base, '-', '-', '-', '-', r.reason ?? '']);
        for (const n of r.nat) {
          lines.push([
            ...base,
            `${n.localPort ?? '-'}/${n.protocol}`,
            `${n.destination}${n.destinationPort !== null ? `:${n.destinationPort}` : ''}`,
            n.translatedAddress ?? '-',
            `${n.outgoingPort ?? '-'}/${n.protocol}`,
            r.reason ?? '',
          ]);
        }
      }
      printTable(['TIPS ID', 'STATE', 'TYPE', 'MAC', 'IP', 'IFACE', 'LOCAL', 'DESTINATION', 'TRANSLATED', 'OUTGOING', 'REASON'], lines);
    });

  program
    .command('leases')
    .description('print the DHCP leases')
    .requiredOption('--data-dir <dir>', 'state directory of the gateway')
    .option('--json', 'print JSON')
    .action((o) => {
      const db = openGatewayDb(o.dataDir);
      const leases = new SqliteLeaseStore(db).all().sort((a, b) => ipToNumber(a.ip) - ipToNumber(b.ip));
      db.close();
      if (o.json) {
        console.log(JSON.stringify({ leases }, null, 2));
        return;
      }
      printTable(
        ['IP', 'MAC', 'STATE', 'EXPIRES', 'HOSTNAME'],
        leases.map((l) => [l.ip, l.mac ?? '-', l.state, fmtTime(l.expiresAt), l.hostname ?? '']),
      );
    });

  return program;
}
