import { existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { importKey } from '@tips/suit';
import { Command, Option } from 'commander';
import { buildApp } from './app.ts';
import type { BlobStore } from './blob/blob-store.ts';
import { FsBlobStore } from './blob/fs-blob-store.ts';
import { ConfigError, DEFAULTS, derivePublicUrl, loadConfig, MAX_METAL_CERT_DAYS, type RawOptions } from './config.ts';
import { openDatabase } from './db/database.ts';
import { MAX_READ_THREADS, openReadPool } from './db/read-pool.ts';
import { ensureServerCertificate, openCaDir, openTokenKey } from './domains/enrollment/ca-dir.ts';
import { describeListen } from './http/bind-address.ts';
import { systemClock, systemRandom } from './ports.ts';
import { listenTls } from './tls/listener.ts';
import { openActivationKey } from './domains/attestation/activation-key.ts';
import { openPskWrapKey } from './domains/constrained/psk-key.ts';
import type { NotificationBus } from './domains/notifications/model.ts';
import type { Logger } from 'pino';

const program = new Command('tips-master')
  .description('TIPS master: the Controller (owners, metals, Spaces, Glazes), discovery and updates, over HTTP')
  .addOption(new Option('--host <addr>', 'address to listen on').env('TIPS_HOST').default(DEFAULTS.host))
  .addOption(new Option('--port <n>', 'TCP port (0 = any free port)').env('TIPS_PORT').default(String(DEFAULTS.port)))
  .addOption(new Option('--data-dir <dir>', 'where the SQLite database and Glaze blobs live').env('TIPS_DATA_DIR').default(DEFAULTS.dataDir))
  .addOption(new Option('--database-url <url>', 'sqlite:<file> or postgres://user@host:port/db (default: SQLite in the data dir)').env('TIPS_DATABASE_URL'))
  .addOption(new Option('--max-glaze-bytes <n>', 'largest Glaze accepted').env('TIPS_MAX_GLAZE_BYTES').default(String(DEFAULTS.maxGlazeBytes)))
  .addOption(new Option('--log-level <level>', 'pino log level').env('TIPS_LOG_LEVEL').default(DEFAULTS.logLevel))
  .addOption(new Option('--tls-port <n>', 'HTTPS port for EST, the metal API (mTLS) and the owner API; default 8443, or any free port when --port is 0; off = no HTTPS').env('TIPS_TLS_PORT'))
  .addOption(new Option('--tls-hostname <name>', 'name the HTTPS server certificate is issued for').env('TIPS_TLS_HOSTNAME').default(DEFAULTS.tlsHostname))
  .addOption(new Option('--ca-dir <dir>', 'CA directory: root.pem, intermediate.pem, intermediate-key.pem from `tips ca init` (default: <data-dir>/ca, created if empty)').env('TIPS_CA_DIR'))
  .addOption(
    new Option(
      '--gateway-require-tls',
      'refuse gateway requests (/api/gateway/v1) not made over mTLS with the gateway certificate; off by default because the plain HTTP listener serves loopback/dev — set it in production (env TIPS_GATEWAY_REQUIRE_TLS=true)',
    ),
  )
  .addOption(
    new Option(
      '--public-url <url>',
      'the URL gateways reach this master at, printed in the enroll commands of `tips gateway add` (default: http://<--host>:<--port>, this host\'s name when bound to 0.0.0.0/::; an https:// URL is used for the --ca form)',
    ).env('TIPS_PUBLIC_URL'),
  )
  .addOption(
    new Option(
      '--require-upload-token',
      'Glaze uploads need an S11 upload token (X-Tips-Token, audience urn:tips:master, scope upload:space:<id>) with a proof of possession, besides the API token (env TIPS_REQUIRE_UPLOAD_TOKEN=true)',
    ),
  )
  .addOption(
    new Option('--upload-idle-timeout <seconds>', 'abandon a Glaze upload that sends no bytes for this long and remove its partial write')
      .env('TIPS_UPLOAD_IDLE_TIMEOUT')
      .default(String(DEFAULTS.uploadIdleTimeoutSeconds)),
  )
  .addOption(
    new Option(
      '--read-threads <n>',
      `SQLite: worker threads, each with its own read-only connection, that read list pages off the event loop (0 to ${MAX_READ_THREADS}; 0 = every read on the main connection; PostgreSQL ignores it)`,
    )
      .env('TIPS_READ_THREADS')
      .default(String(DEFAULTS.readThreads)),
  )
  .addOption(
    new Option('--metal-cert-days <n>', `lifetime of metal certificates issued by EST, in days (1 to ${MAX_METAL_CERT_DAYS}; never beyond the intermediate's); metals renew with simplereenroll`)
      .env('TIPS_METAL_CERT_DAYS')
      .default(String(DEFAULTS.metalCertDays)),
  )
  .addOption(
    new Option('--tinkerbell-dir <dir>', 'tinkerbell engine: where the Hardware, Template and Workflow of each job are written, one JSON List per job (default: <data-dir>/tinkerbell)').env(
      'TIPS_TINKERBELL_DIR',
    ),
  )
  .addOption(new Option('--tinkerbell-kubectl <path>', 'tinkerbell engine: pipe the objects to `<path> apply -f -` instead of writing them').env('TIPS_TINKERBELL_KUBECTL'))
  .addOption(
    new Option('--tinkerbell-glaze-base <url>', "tinkerbell engine: the gateway boot URL the metal's Tinkerbell worker fetches its Glaze from (/phase1/jobs/<job>/glaze)")
      .env('TIPS_TINKERBELL_GLAZE_BASE')
      .default(DEFAULTS.tinkerbellGlazeBase),
  )
  .addOption(
    new Option('--engine-sync-interval <seconds>', 'how often the jobs of engines that install by themselves (tinkerbell) are read back and moved forward; 0 = never')
      .env('TIPS_ENGINE_SYNC_INTERVAL')
      .default(String(DEFAULTS.engineSyncIntervalSeconds)),
  )
  .addOption(
    new Option('--reauth-period <seconds>', 'metal-API requests need a PoP token issued within this period; older ones get 401 reauth_required (T15)')
      .env('TIPS_REAUTH_PERIOD')
      .default(String(DEFAULTS.reauthPeriodSeconds)),
  )
  .addOption(new Option('--mqtt-port <n|off>', 'embedded MQTT broker (TLS, metal client certificates) for Phase 3 push; default 8883, or any free port when --port is 0; off = metals only pull').env('TIPS_MQTT_PORT'))
  .addOption(
    new Option('--mqtt-url <mqtts://host:port>', "publish to an external broker (e.g. Mosquitto) instead of the embedded one, with the master's own client certificate; the broker's configuration, certificates and ACL are written to <ca-dir>/mosquitto/").env(
      'TIPS_MQTT_URL',
    ),
  )
  .addOption(
    new Option('--blob-store <file|s3://bucket/prefix>', 'where Glaze payloads live: file (<data-dir>/glazes) or an S3-compatible bucket and key prefix; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)')
      .env('TIPS_BLOB_STORE')
      .default('file'),
  )
  .addOption(new Option('--s3-endpoint <url>', 'S3-compatible endpoint, path-style (e.g. http://127.0.0.1:9000); default: AWS S3').env('TIPS_S3_ENDPOINT'))
  .addOption(
    new Option('--coap-port <n|off>', 'CoAP over DTLS 1.2 for constrained metals (PSK or metal certificate; never plain CoAP); default off, 0 = any free port; npm start uses 5684').env(
      'TIPS_COAP_PORT',
    ),
  )
  .addOption(new Option('--coap-host <addr>', 'address the CoAP/DTLS port binds to (default: --host)').env('TIPS_COAP_HOST'))
  .addOption(new Option('--lwm2m-grace <seconds>', 'LwM2M: seconds past its lifetime before a silent device counts as offline (default 15)').env('TIPS_LWM2M_GRACE'))
  .addOption(new Option('--s3-region <region>', `S3 region (default: AWS_REGION, else ${DEFAULTS.s3Region})`).env('TIPS_S3_REGION'))
  .addOption(
    new Option('--s3-presign [seconds]', `answer Glaze downloads with a redirect to a pre-signed S3 URL valid this long (default ${DEFAULTS.s3PresignSeconds} s), so the bytes do not pass through the master`).env(
      'TIPS_S3_PRESIGN',
    ),
  )
  .addOption(
    new Option('--bus <inprocess|mqtt://host:port|nats://host:port,…>', 'how replicas tell each other what they changed (blocks, eligibility, gateway keys, revocations, notifications): inprocess (one master), an MQTT broker, or every node of a NATS cluster')
      .env('TIPS_BUS')
      .default('inprocess'),
  )
  .addHelpText(
    'after',
    '\nEnvironment: TIPS_BOOTSTRAP_ADMIN_TOKEN (tips_ followed by 32–128 base64url characters) sets the admin token\ncreated on the first start (automation); otherwise a random one is printed once. On a database that\nalready has an admin it is ignored (with a warning): make further tokens with `tips token create`.',
  )
  .action(async (opts: RawOptions) => {
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(opts);
    } catch (err) {
      if (err instanceof ConfigError) program.error(`error: ${err.message}`, { exitCode: 2 });
      throw err;
    }
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const db = await openDatabase(config.database);
    // Opened after the migrations; closed by the app's onClose (buildApp), or with the process.
    let readPool: Awaited<ReturnType<typeof openReadPool>> | undefined;
    if (config.database.kind === 'sqlite' && config.database.file !== ':memory:' && config.readThreads > 0) {
      try {
        readPool = await openReadPool(config.database.file, config.readThreads);
      } catch (err) {
        // Not fatal: every read then runs on the main connection, as with --read-threads 0.
        process.stderr.write(`warning: --read-threads ${config.readThreads}: cannot open the read threads (${(err as Error).message}); reading on the main connection\n`);
      }
    }
    let blobs: BlobStore;
    if (config.blobStore.kind === 'file') blobs = await FsBlobStore.open(config.blobStore.dir);
    else {
      const b = config.blobStore;
      // Loaded only for S3: a file-store master (and `--help`) does not load the AWS SDK.
      const { MAX_PARTS, S3BlobStore } = await import('./blob/s3-blob-store.ts');
      try {
        blobs = await S3BlobStore.open({
          bucket: b.bucket,
          prefix: b.prefix,
          ...(b.endpoint ? { endpoint: b.endpoint } : {}),
          region: b.region,
          presignSeconds: b.presignSeconds,
          // Parts large enough that the largest Glaze allowed fits in S3's 10,000.
          partBytes: Math.max(8 * 2 ** 20, Math.ceil(config.maxGlazeBytes / MAX_PARTS)),
        });
      } catch (err) {
        await db.destroy();
        program.error(`error: ${(err as Error).message} (check --blob-store, --s3-endpoint, --s3-region and the AWS_* credentials)`, { exitCode: 1 });
        return;
      }
      process.stdout.write(
        `TIPS master Glazes in s3://${b.bucket}/${b.prefix} at ${b.endpoint ?? `AWS ${b.region}`}${b.presignSeconds ? ` (downloads: pre-signed redirects valid ${b.presignSeconds} s)` : ''}\n`,
      );
    }
    const { openBus } = await import('./bus/bus.ts');
    // The adapter logs through the app's logger once there is one (it connects in the background).
    let busLogger: { info(o: object, m: string): void; warn(o: object, m: string): void } | undefined;
    const replicaBus = await openBus(config.bus, { info: (o, m) => busLogger?.info(o, m), warn: (o, m) => busLogger?.warn(o, m) });
    const { ca, created: caCreated } = await openCaDir(config.caDir, { clock: systemClock, random: systemRandom });
    const tokenKey = importKey(await openTokenKey(config.caDir));
    // Known once both listeners are bound (--port 0 picks a free port).
    const publicUrls = { url: '', tlsUrl: null as string | null };
    const { app, services, metrics } = await buildApp({
      publicUrls: () => publicUrls,
      db,
      readPool,
      blobs,
      maxGlazeBytes: config.maxGlazeBytes,
      ca: async () => ca,
      tokenKey: async () => tokenKey,
      pskWrapKey: await openPskWrapKey(config.caDir),
      tpm2ActivationKey: await openActivationKey(config.caDir),
      gatewayRequireTls: config.gatewayRequireTls,
      requireUploadToken: config.requireUploadToken,
      uploadIdleTimeoutMs: config.uploadIdleTimeoutSeconds * 1000,
      certLifetimeHours: config.metalCertDays * 24,
      tinkerbell: config.tinkerbell,
      engineSyncMs: config.engineSyncIntervalSeconds * 1000,
      reauthPeriodSeconds: config.reauthPeriodSeconds,
      lwm2m: { graceSeconds: config.lwm2mGraceSeconds, sweepMs: Math.min(5000, Math.max(200, config.lwm2mGraceSeconds * 500)) },
      webDir: consoleDir(),
      bus: replicaBus,
      busKind: config.bus.kind,
      logger: { level: config.logLevel, redact: ['req.headers.authorization'] },
    });
    busLogger = app.log;
    if (config.bus.kind !== 'inprocess') process.stdout.write(`TIPS master bus: ${config.bus.kind === 'nats' ? `NATS ${config.bus.servers.map((s) => new URL(s).host).join(',')}` : `MQTT ${new URL(config.bus.url).host}`}\n`);
    const admin = await services.owners.ensureAdmin(config.bootstrapAdminToken);
    const address = await app.listen({ host: config.host, port: config.port });
    const listening = describeListen(config.host, (app.server.address() as AddressInfo).port, 'http', address.replace('[::1]', 'localhost'));
    const url = listening.usable;
    process.stdout.write(`TIPS master ${listening.line}  (API docs: ${url}/docs)\n`);
    if (admin === undefined && config.bootstrapAdminToken !== undefined && !(await services.owners.isAdminToken(config.bootstrapAdminToken))) {
      process.stderr.write(
        'warning: TIPS_BOOTSTRAP_ADMIN_TOKEN ignored: the database already has an admin, and the variable only sets the token of the first one; make a new token with `tips token create --name <name>` as the admin, or unset the variable\n',
      );
    }
    publicUrls.url = derivePublicUrl(config, (app.server.address() as AddressInfo).port, hostname());
    let tls: Awaited<ReturnType<typeof listenTls>> | undefined;
    const hostnames = [config.tlsHostname, 'localhost', '127.0.0.1', '::1', ...(config.host === '0.0.0.0' || config.host === '::' ? [] : [config.host])];
    if (config.tlsPort !== null) {
      const server = await ensureServerCertificate(config.caDir, ca, { hostnames, clock: systemClock, random: systemRandom });
      try {
        tls = await listenTls(app, { host: config.host, port: config.tlsPort, certPem: server.chainPem, keyPem: server.keyPem, clientCaPem: server.clientCaPem });
      } catch (err) {
        await app.close();
        await db.destroy();
        program.error(`error: cannot listen for HTTPS on ${config.host}:${config.tlsPort} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose --tls-port or --tls-port off`, { exitCode: 1 });
        return;
      }
      publicUrls.tlsUrl = `https://${config.tlsHostname}:${tls.port}`;
      const tlsListening = describeListen(config.host, tls.port, 'https', tls.url);
      process.stdout.write(`TIPS master TLS ${tlsListening.line}  (EST: ${tlsListening.usable}/.well-known/est; CA: ${config.caDir})\n`);
    }
    // Phase 3 push (T15): the embedded broker, or an external one the master publishes to.
    let bus: NotificationBus | undefined;
    if (config.mqttPort !== null || config.mqttUrl !== null) {
      const server = await ensureServerCertificate(config.caDir, ca, { hostnames, clock: systemClock, random: systemRandom });
      // Loaded only when MQTT is on: `--help` and pull-only masters do not load the MQTT stack.
      const { startEmbeddedBroker } = await import('./domains/notifications/broker.ts');
      const { connectExternalBroker, MASTER_MQTT_USER, masterClientCertificate, writeMosquittoFiles } = await import('./domains/notifications/external.ts');
      if (config.mqttUrl !== null) {
        const u = new URL(config.mqttUrl);
        const conf = await writeMosquittoFiles(join(config.caDir, 'mosquitto'), ca, { host: u.hostname, port: Number(u.port) }, systemClock.now(), systemRandom);
        const client = await masterClientCertificate(ca, systemClock.now(), systemRandom);
        bus = connectExternalBroker({ url: config.mqttUrl, caPem: server.clientCaPem, certPem: client.certPem, keyPem: client.keyPem, log: app.log });
        process.stdout.write(`TIPS master MQTT: publishing to ${config.mqttUrl} as ${MASTER_MQTT_USER} (Mosquitto configuration: ${conf})\n`);
      } else {
        try {
          bus = await startEmbeddedBroker({
            host: config.host,
            port: config.mqttPort!,
            publicHost: config.tlsHostname,
            certPem: server.chainPem,
            keyPem: server.keyPem,
            clientCaPem: server.clientCaPem,
            authenticateMetal: (peer) => services.enrollment.authenticateMetal(peer),
            log: app.log,
          });
        } catch (err) {
          await tls?.close();
          await app.close();
          await db.destroy();
          program.error(`error: cannot listen for MQTT on ${config.host}:${config.mqttPort} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose --mqtt-port or --mqtt-port off`, { exitCode: 1 });
          return;
        }
        process.stdout.write(`TIPS master MQTT ${bus.url} (embedded broker, TLS with metal certificates; topic tips/metal/<TIPS ID>)\n`);
      }
      services.notifications.useBus(bus);
    }
    // Constrained metals (S13): CoAP over DTLS 1.2 only — the DTLS transport proves the metal (PSK or a
    // certificate from this CA, refused at the handshake when revoked), the constrained domain serves CoAP on it.
    let constrainedEndpoint: { close(): Promise<void> } | undefined;
    if (config.coapPort !== null) {
      const server = await ensureServerCertificate(config.caDir, ca, { hostnames, clock: systemClock, random: systemRandom });
      const { installDtlsMetrics, listenDtls } = await import('./tls/dtls.ts');
      const { startConstrained } = await import('./domains/constrained/coap.ts');
      let dtls: Awaited<ReturnType<typeof listenDtls>>;
      try {
        dtls = await listenDtls({
          host: config.coapHost,
          port: config.coapPort,
          logger: app.log as unknown as Logger,
          certPem: server.chainPem,
          keyPem: server.keyPem,
          clientCaPem: server.clientCaPem,
          pskLookup: (identity) => services.constrained.pskLookup(identity),
          authenticateMetal: (der) => services.enrollment.authenticateMetal({ authorized: true, der }),
        });
      } catch (err) {
        await tls?.close();
        await bus?.close().catch(() => {});
        await app.close();
        await db.destroy();
        program.error(`error: cannot listen for CoAP/DTLS on ${config.coapHost}:${config.coapPort} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose --coap-port or --coap-port off`, { exitCode: 1 });
        return;
      }
      installDtlsMetrics(metrics, dtls);
      const endpoint = startConstrained({
        constrained: services.constrained,
        updates: services.updates,
        spaces: services.spaces,
        events: services.events,
        transport: dtls,
        logger: app.log as unknown as Logger,
      });
      constrainedEndpoint = endpoint;
      const bound = dtls.address();
      // LwM2M (Z5): the Registration and Bootstrap interfaces on the same CoAP port.
      const { installLwm2mCoap } = await import('./domains/devicemgmt/coap.ts');
      // Package URIs name the host devices reach: the TLS hostname when bound to every address.
      const coapHostName = config.coapHost === '0.0.0.0' || config.coapHost === '::' ? config.tlsHostname : config.coapHost;
      const coapBase = `coaps://${coapHostName.includes(':') ? `[${coapHostName}]` : coapHostName}:${bound.port}`;
      installLwm2mCoap(endpoint.coap, services.devices, {
        principal: (peer) => services.constrained.principal(peer),
        baseUri: () => coapBase,
        pskKey: (identity) => services.constrained.pskLookup(identity),
        bootstrapProfile: (p) => services.devices.bootstrapProfile(p, coapBase),
        log: (obj, msg) => app.log.info(obj, msg),
      });
      const coapListening = describeListen(config.coapHost, bound.port, 'coaps', `coaps://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`);
      process.stdout.write(`TIPS master CoAP ${coapListening.line}  (DTLS 1.2: metal PSK or metal certificate; never plain CoAP)\n`);
    }
    if (caCreated) process.stdout.write(`Created a CA in ${config.caDir} (its root key was discarded; for an offline root use \`tips ca init\`)\n`);
    if (admin && !config.bootstrapAdminToken) {
      process.stdout.write(`Admin API token (shown once, keep it safe):\n  ${admin.token}\nLog in with: tips login --url ${url} --token <token>\n`);
    }
    process.stdout.write('TIPS master ready\n');
    let closing = false;
    const shutdown = async () => {
      if (closing) return;
      closing = true;
      await constrainedEndpoint?.close().catch(() => {});
      await tls?.close();
      await bus?.close().catch(() => {});
      await app.close();
      await replicaBus.close().catch(() => {});
      await db.destroy();
      process.exit(0);
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });

await program.parseAsync(process.argv);

/** The built console: dist/web beside dist/master (the bundle), else the repository's dist/web (from source); TIPS_WEB_DIR overrides. */
function consoleDir(): string {
  if (process.env.TIPS_WEB_DIR) return process.env.TIPS_WEB_DIR;
  const beside = join(import.meta.dirname, '..', 'web');
  return existsSync(join(beside, 'index.html')) ? beside : join(import.meta.dirname, '..', '..', '..', 'dist', 'web');
}
