import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { CoseKey } from '@tips/suit';
import { Counter } from 'prom-client';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { BlobStore } from './blob/blob-store.ts';
import { MeteredBlobStore } from './blob/metered.ts';
import { type Bus, BusHub } from './bus/bus.ts';
import { InProcessBus } from './bus/in-process.ts';
import { installBusMetrics } from './bus/metrics.ts';
import type { Db } from './db/database.ts';
import type { ReadPool } from './db/read-pool.ts';
import { discoveryGatewayRoutes, discoveryOwnerRoutes } from './domains/discovery/routes.ts';
import { DiscoveryService } from './domains/discovery/service.ts';
import { KyselyDiscoveryStore } from './domains/discovery/store.kysely.ts';
import { gatewayApiRoutes, gatewayOwnerRoutes, installGatewayAuth, type PublicUrls } from './domains/gateways/routes.ts';
import { GatewayService } from './domains/gateways/service.ts';
import { KyselyGatewayStore } from './domains/gateways/store.kysely.ts';
import { glazeRoutes } from './domains/glazes/routes.ts';
import { installGlazeReconciler, reconcileGraceMs } from './domains/glazes/reconciler.ts';
import { GlazeService } from './domains/glazes/service.ts';
import { KyselyGlazeStore } from './domains/glazes/store.kysely.ts';
import { metalRoutes } from './domains/metals/routes.ts';
import { MetalService } from './domains/metals/service.ts';
import { KyselyMetalStore } from './domains/metals/store.kysely.ts';
import type { Owner } from './domains/owners/model.ts';
import { ownerRoutes } from './domains/owners/routes.ts';
import { OwnerService } from './domains/owners/service.ts';
import { KyselyOwnerStore } from './domains/owners/store.kysely.ts';
import { spaceRoutes } from './domains/spaces/routes.ts';
import { SpaceService } from './domains/spaces/service.ts';
import { KyselySpaceStore } from './domains/spaces/store.kysely.ts';
import { DomainEvents } from './events.ts';
import { edgeServerOptions, installEdgeGuards } from './http/edge.ts';
import { installErrorHandler } from './http/error-handler.ts';
import { installMetrics } from './http/metrics.ts';
import type { Registry } from 'prom-client';
import { documentRequestBodies, documentResponses, documentScope, type OpenApiResponseOptions, securitySchemes } from './http/openapi-responses.ts';
import { createEphemeralCa, type MasterCa } from './domains/enrollment/ca.ts';
import { enrollmentRoutes, estRoutes, metalScope, refuseCertificateWithoutToken } from './domains/enrollment/routes.ts';
import { EnrollmentService } from './domains/enrollment/service.ts';
import { directiveMetalRoutes, directiveOwnerRoutes } from './domains/directives/routes.ts';
import { DirectiveService } from './domains/directives/service.ts';
import { KyselyDirectiveStore } from './domains/directives/store.kysely.ts';
import { KyselyEnrollmentStore } from './domains/enrollment/store.kysely.ts';
import { tokenMetalRoutes, tokenRoutes } from './domains/tokens/routes.ts';
import { ephemeralTokenKey, TokenService } from './domains/tokens/service.ts';
import { KyselyTokenStore } from './domains/tokens/store.kysely.ts';
import { keyRoutes } from './domains/keys/routes.ts';
import { KeyService } from './domains/keys/service.ts';
import { KyselyKeyStore } from './domains/keys/store.kysely.ts';
import { type Clock, type Random, systemClock, systemRandom } from './ports.ts';
import { BuiltinEngine, type ProvisioningEngine } from './domains/provisioning/engine.ts';
import type { Engine } from './domains/provisioning/model.ts';
import { installEngineSync } from './domains/provisioning/engine-sync.ts';
import { installProvisioningMetrics } from './domains/provisioning/metrics.ts';
import { provisioningGatewayRoutes, provisioningOwnerRoutes } from './domains/provisioning/routes.ts';
import { ProvisioningService } from './domains/provisioning/service.ts';
import { KyselyProvisioningStore } from './domains/provisioning/store.kysely.ts';
import { DEFAULT_TINKERBELL, TinkerbellEngine, type TinkerbellOptions } from './domains/provisioning/tinkerbell.ts';
import { NotificationService } from './domains/notifications/service.ts';
import { MetalUpdatesSchema, updateMetalRoutes, updateOwnerRoutes } from './domains/updates/routes.ts';
import { UpdateService } from './domains/updates/service.ts';
import { KyselyUpdateStore } from './domains/updates/store.kysely.ts';
import { DEFAULT_REAUTH_SECONDS } from './domains/updates/model.ts';
import { installUpdateMetrics } from './domains/updates/metrics.ts';
import { installMetalListMetrics } from './domains/metals/metrics.ts';
import { installVoucherMetrics } from './domains/vouchers/metrics.ts';
import { voucherRoutes } from './domains/vouchers/routes.ts';
import { softwareKeyVerifier } from './domains/attestation/software-key.ts';
import { createTpm2Verifier, tpm2Verifier as perProcessTpm2Verifier } from './domains/attestation/tpm2.ts';
import type { VerifierName } from './domains/attestation/verifier.ts';
import { installBootstrapMetrics } from './domains/bootstrap/metrics.ts';
import { bootstrapRoutes, onboardingDeviceRoutes } from './domains/bootstrap/routes.ts';
import { BootstrapService, type ChallengingVerifier } from './domains/bootstrap/service.ts';
import { KyselyBootstrapStore } from './domains/bootstrap/store.kysely.ts';
import { installRendezvousMetrics } from './domains/rendezvous/metrics.ts';
import { rendezvousRoutes } from './domains/rendezvous/routes.ts';
import { RendezvousService } from './domains/rendezvous/service.ts';
import { KyselyRendezvousStore } from './domains/rendezvous/store.kysely.ts';
import { VoucherService } from './domains/vouchers/service.ts';
import { KyselyVoucherStore } from './domains/vouchers/store.kysely.ts';
import { installLifecycleMetrics } from './domains/directives/metrics.ts';
import { authenticateOwner, installSessionMetrics, sessionRoutes, sessionSignInRoutes } from './domains/sessions/routes.ts';
import { SessionService } from './domains/sessions/service.ts';
import { KyselySessionStore } from './domains/sessions/store.kysely.ts';
import { InterfaceStateIndex, interfaceStateRoutes } from './domains/gateways/states.ts';
import { defaultSpaceRoutes } from './domains/spaces/defaults.ts';
import { installConsole } from './http/console.ts';
import { LiveFeed, liveRoutes } from './http/live.ts';
import { installTelemetryMetrics } from './domains/telemetry/metrics.ts';
import { telemetryMetalRoutes, telemetryOwnerRoutes } from './domains/telemetry/routes.ts';
import { TelemetryService } from './domains/telemetry/service.ts';
import { KyselyTelemetryStore } from './domains/telemetry/store.kysely.ts';
import { installDeviceMgmtMetrics } from './domains/devicemgmt/metrics.ts';
import { deviceMgmtOwnerRoutes, MetalLwm2mSchema } from './domains/devicemgmt/routes.ts';
import { DeviceMgmtService } from './domains/devicemgmt/service.ts';
import { KyselyDeviceMgmtStore } from './domains/devicemgmt/store.kysely.ts';
import { installLwm2mSweeper } from './domains/devicemgmt/sweeper.ts';
import { installConstrainedMetrics } from './domains/constrained/metrics.ts';
import { constrainedOwnerRoutes } from './domains/constrained/routes.ts';
import { ConstrainedService, ephemeralPskWrapKey, type PskWrapKey } from './domains/constrained/service.ts';
import { KyselyConstrainedStore } from './domains/constrained/store.kysely.ts';

declare module 'fastify' {
  interface FastifyRequest {
    owner: Owner;
  }
}

export interface MasterDeps {
  db: Db;
  /** SQLite: read-only connections on worker threads for snapshot-safe list reads (`--read-threads`); the app closes it. */
  readPool?: ReadPool;
  blobs: BlobStore;
  clock?: Clock;
  random?: Random;
  logger?: FastifyServerOptions['logger'];
  /** Tests: report a response body that the route's response schema would change (openapi-responses.ts). */
  onResponseMismatch?: OpenApiResponseOptions['onResponseMismatch'];
  maxGlazeBytes?: number;
  version?: string;
  /** The master's CA (intermediate + root); without one an in-memory CA is made on first use. */
  ca?: () => Promise<MasterCa>;
  /** Lifetime of metal certificates issued by EST (default 7 days). */
  certLifetimeHours?: number;
  /** The key authorization tokens are signed with (Ed25519); without one an in-memory key is made. */
  tokenKey?: () => Promise<CoseKey>;
  /** Refuse gateway requests not made over mTLS (`--gateway-require-tls`); default off. */
  gatewayRequireTls?: boolean;
  /** Glaze uploads need an S11 upload token with proof of possession, not only an API token. */
  requireUploadToken?: boolean;
  /** An upload sending no bytes for this long is abandoned (`--upload-idle-timeout`; default 60 s). */
  uploadIdleTimeoutMs?: number;
  /** Where gateways reach the master (--public-url, else the listen address), for the enroll commands `POST /gateways` answers. */
  publicUrls?: () => PublicUrls;
  /** The tinkerbell engine's settings (--tinkerbell-dir, --tinkerbell-kubectl, --tinkerbell-glaze-base). */
  tinkerbell?: Partial<TinkerbellOptions>;
  /** How often engines that install by themselves (tinkerbell) are asked where their jobs stand; 0 = never (tests call syncEngineJobs). */
  engineSyncMs?: number;
  /** Metal-API requests need a token issued within this many seconds (`--reauth-period`, default 120). */
  reauthPeriodSeconds?: number;
  /** How the master reaches other servers (rendezvous registration); tests route it in-process. */
  fetch?: typeof fetch;
  /** The built web console (dist/web) served at `/`; without it `/` says how to build it. */
  webDir?: string;
  /** Lifetime of a console session (default 12 h). */
  sessionTtlSeconds?: number;
  /** LwM2M: seconds past a registration's lifetime before the device is offline (default 15), and how often that is checked (default 5000 ms). */
  lwm2m?: { graceSeconds?: number; sweepMs?: number };
  /** The key DTLS PSKs are sealed with at rest (`<ca-dir>/psk-wrap.key`); without one an in-memory key is made. */
  pskWrapKey?: PskWrapKey;
  /**
   * The tpm2 verifier's activation key (`<ca-dir>/tpm2-activation.key`): shared by a restarted
   * master and by replicas, so a TPM's answer to another process's challenge still verifies;
   * without one a per-process key is used.
   */
  tpm2ActivationKey?: Uint8Array;
  /** The bus to the other replicas (`--bus`); default: in-process (a lone master). The caller closes it. */
  bus?: Bus;
  /** What `bus` is, for logs and metrics: inprocess, mqtt or nats. */
  busKind?: string;
}

export interface Services {
  events: DomainEvents;
  owners: OwnerService;
  metals: MetalService;
  spaces: SpaceService;
  glazes: GlazeService;
  enrollment: EnrollmentService;
  tokens: TokenService;
  keys: KeyService;
  gateways: GatewayService;
  discovery: DiscoveryService;
  provisioning: ProvisioningService;
  notifications: NotificationService;
  updates: UpdateService;
  vouchers: VoucherService;
  rendezvous: RendezvousService;
  bootstrap: BootstrapService;
  directives: DirectiveService;
  sessions: SessionService;
  /** The blob store as the domains use it (metered). */
  blobs: MeteredBlobStore;
  telemetry: TelemetryService;
  devices: DeviceMgmtService;
  constrained: ConstrainedService;
  bus: BusHub;
}

/** Wires the domains over their ports: the master's composition root. */
export function createServices(deps: MasterDeps): Services {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? systemRandom;
  const events = new DomainEvents();
  const owners = new OwnerService(new KyselyOwnerStore(deps.db), clock, random);
  const metals = new MetalService(new KyselyMetalStore(deps.db, deps.readPool), events, clock, random);
  const spaces = new SpaceService(new KyselySpaceStore(deps.db), metals, events, clock, random);
  const blobs = deps.blobs instanceof MeteredBlobStore ? deps.blobs : new MeteredBlobStore(deps.blobs, deps.blobs.kind ?? 'files');
  const glazes = new GlazeService(new KyselyGlazeStore(deps.db), blobs, spaces, events, clock, random, deps.maxGlazeBytes ?? 64 * 2 ** 30);
  spaces.useGlazes(glazes);
  const gateways = new GatewayService(new KyselyGatewayStore(deps.db), clock, random);
  const discovery = new DiscoveryService(new KyselyDiscoveryStore(deps.db), metals, spaces, gateways, events, clock, random);
  const enrollment = new EnrollmentService(new KyselyEnrollmentStore(deps.db), metals, spaces, events, clock, random, deps.ca ?? (() => createEphemeralCa(clock.now(), random)), deps.certLifetimeHours);
  const tokens = new TokenService(new KyselyTokenStore(deps.db), metals, spaces, glazes, enrollment, clock, random, deps.tokenKey ?? (async () => ephemeralTokenKey()));
  const keys = new KeyService(new KyselyKeyStore(deps.db), glazes, clock, random);
  // Gateways get TLS client certificates from the same CA as metals (S6).
  gateways.useTls({ ca: () => enrollment.ca(), requireTls: deps.gatewayRequireTls === true });
  // A metal blocked by TIPS-D (T16) is refused on the metal API while the block lasts (S6).
  enrollment.useBlockCheck((metalId) => discovery.isBlocked(metalId));
  const engines = new Map<Engine, ProvisioningEngine>([
    ['builtin', new BuiltinEngine()],
    ['tinkerbell', new TinkerbellEngine({ ...DEFAULT_TINKERBELL, ...deps.tinkerbell })],
  ]);
  const provisioning = new ProvisioningService(new KyselyProvisioningStore(deps.db), metals, spaces, glazes, keys, enrollment, events, clock, random, engines, { urls: deps.publicUrls });
  // ... and gets neither a Phase 1 boot script nor installer work (T13).
  provisioning.useBlockCheck((metalId) => discovery.isBlocked(metalId));
  const notifications = new NotificationService();
  const updates = new UpdateService(
    new KyselyUpdateStore(deps.db),
    metals,
    spaces,
    glazes,
    keys,
    tokens,
    enrollment,
    discovery,
    notifications,
    events,
    clock,
    random,
    deps.reauthPeriodSeconds ?? DEFAULT_REAUTH_SECONDS,
  );
  const vouchers = new VoucherService(new KyselyVoucherStore(deps.db), clock, random, deps.fetch);
  const rendezvous = new RendezvousService(new KyselyRendezvousStore(deps.db), clock, random);
  const tpm2Verifier = deps.tpm2ActivationKey ? createTpm2Verifier({ activationKey: deps.tpm2ActivationKey }) : perProcessTpm2Verifier;
  const verifiers = new Map<VerifierName, ChallengingVerifier>([
    [softwareKeyVerifier.name, softwareKeyVerifier],
    [tpm2Verifier.name, tpm2Verifier],
  ]);
  const bootstrap = new BootstrapService(new KyselyBootstrapStore(deps.db), vouchers, metals, spaces, glazes, enrollment, verifiers, { tlsUrl: () => deps.publicUrls?.().tlsUrl ?? null }, events, clock, random);
  const directives = new DirectiveService(new KyselyDirectiveStore(deps.db), metals, keys, clock, random);
  const sessions = new SessionService(new KyselySessionStore(deps.db), owners, clock, random, deps.sessionTtlSeconds);
  const telemetry = new TelemetryService(new KyselyTelemetryStore(deps.db), metals, clock, random);
  const devices = new DeviceMgmtService(new KyselyDeviceMgmtStore(deps.db), metals, spaces, glazes, keys, events, clock, random, deps.lwm2m?.graceSeconds);
  // LwM2M bootstrap values come from the bootstrapping profile the metal's onboarding named (contract K).
  devices.useBootstrapProfiles(async (ownerId, metalId) => (await bootstrap.profileOfMetal(ownerId, metalId))?.lwm2m);
  const constrained = new ConstrainedService(new KyselyConstrainedStore(deps.db), metals, enrollment, discovery, events, clock, random, deps.pskWrapKey ?? ephemeralPskWrapKey());
  // The other replicas (T2, B5): what they change reaches what this one caches, and back.
  const bus = new BusHub(deps.bus ?? new InProcessBus(), deps.busKind ?? 'inprocess');
  discovery.useBus(bus);
  gateways.useBus(bus);
  notifications.useReplicas(bus);
  constrained.useBus(bus);
  // A revoked, retired, deleted or blocked metal loses its live MQTT sessions here and on every replica.
  events.on('metal.access.revoked', async (e) => {
    notifications.disconnect(e.metalId, e.reason);
    await bus.publish('tips.cert.revoked', { metalId: e.metalId, reason: e.reason });
  });
  bus.on('tips.cert.revoked', (m) => {
    notifications.disconnect(m.metalId, m.reason ?? 'revoked');
  });
  return { blobs, bus, events, owners, metals, spaces, glazes, gateways, discovery, enrollment, tokens, keys, provisioning, notifications, updates, vouchers, rendezvous, bootstrap, directives, sessions, telemetry, devices, constrained };
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Builds the HTTP application. Three audiences, kept apart by prefix and by credential. */
export async function buildApp(deps: MasterDeps): Promise<{ app: FastifyInstance; services: Services; metrics: Registry }> {
  const services = createServices(deps);
  const app = Fastify({
    logger: deps.logger ?? false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Strict input: unknown fields are errors, never silently dropped or coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    ...edgeServerOptions,
  });
  // Callback style: an async hook costs every answer a promise and a microtask turn.
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', req.id);
    done(null, payload);
  });
  installErrorHandler(app);
  installEdgeGuards(app);
  const metrics = installMetrics(app);
  services.blobs.useMetrics(metrics);
  services.gateways.useAuthMetric(
    new Counter({
      name: 'tips_master_gateway_auth_total',
      help: 'Gateway API authentications by mode (signature: TIPS-GW-1; channel: the mTLS certificate alone, registration routes) and result',
      labelNames: ['mode', 'result'] as const,
      registers: [metrics],
    }),
  );
  installUpdateMetrics(metrics, services.updates, services.notifications);
  installMetalListMetrics(metrics, services.metals);
  installLifecycleMetrics(metrics, services.enrollment, services.directives);
  services.notifications.useLog(app.log);
  services.bus.useLog(app.log);
  installBusMetrics(metrics, services.bus);
  const uploadIdleTimeoutMs = deps.uploadIdleTimeoutMs ?? 60_000;
  const graceMs = reconcileGraceMs(uploadIdleTimeoutMs);
  installGlazeReconciler(app, services.glazes, metrics, { graceMs, intervalMs: graceMs, clock: deps.clock ?? systemClock });
  installProvisioningMetrics(app, services.provisioning, metrics);
  installVoucherMetrics(metrics, services.vouchers);
  installRendezvousMetrics(metrics, services.rendezvous);
  installBootstrapMetrics(metrics, services.bootstrap);
  services.bootstrap.useLog((obj, msg) => app.log.info(obj, msg));
  installTelemetryMetrics(metrics, services.telemetry);
  installDeviceMgmtMetrics(metrics, services.devices);
  services.devices.useLog((obj, msg) => app.log.info(obj, msg));
  installLwm2mSweeper(app, services.devices, deps.lwm2m?.sweepMs ?? 5000);
  installConstrainedMetrics(metrics, services.constrained);
  services.vouchers.useLog((obj, msg) => app.log.info(obj, msg));
  installEngineSync(app, services.provisioning, metrics, deps.engineSyncMs ?? 15_000);
  installSessionMetrics(metrics, services.sessions);
  const live = new LiveFeed(metrics);
  // LwM2M devices register, update and wake over CoAP, not through /api/v1: the domain tells the feed.
  services.devices.useChanges((ownerId) => live.publish(ownerId, { kind: 'metal', resource: 'lwm2m', at: new Date().toISOString() }));
  const interfaceStates = new InterfaceStateIndex(services.gateways);
  services.events.on('metal.interfaces.changed', async () => interfaceStates.invalidate());
  services.events.on('metal.deleted', async () => interfaceStates.invalidate());
  live.install(app);

  // Statuses the framework and the edge give on every route are documented centrally.
  documentResponses(app, { onResponseMismatch: deps.onResponseMismatch });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'TIPS master API', version: deps.version ?? '0.1.0', description: 'Owners/operators: /api/v1. Metals: /api/metal/v1. Gateways: /api/gateway/v1.' },
      components: { securitySchemes },
    },
    transform: documentRequestBodies,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      await deps.db.selectFrom('owners').select('id').limit(1).execute();
    } catch {
      return reply.code(503).send({ status: 'database unavailable', bus: services.bus.bus.status() });
    }
    // Bus down is degraded, not unready: this replica still answers correctly from the database,
    // with its time-bound caches (a load balancer that took every replica out on a bus outage
    // would turn a slower propagation into a full outage).
    const bus = services.bus.bus.status();
    return { status: bus === 'up' ? 'ready' : 'degraded', bus };
  });

  app.decorateRequest('owner', null as unknown as Owner);
  app.decorateRequest('consoleSession', null);
  // Console sign-in: the API token comes in the body, so this route is outside the token check.
  await app.register(
    async (scope) => {
      documentScope(scope, { security: [], refusals: { 401: 'Not a valid API token' } });
      sessionSignInRoutes(scope, services.sessions);
    },
    { prefix: '/api/v1' },
  );
  await app.register(
    async (scope) => {
      documentScope(scope, {
        security: [{ ownerToken: [] }, { consoleSession: [] }],
        refusals: {
          401: 'No valid API token or console session (a client certificate is not one)',
          403: 'A write with the console session cookie that lacks the X-Tips-Csrf header or comes from another origin',
        },
      });
      scope.addHook('onRequest', async (req) => {
        const h = req.headers.authorization;
        const token = h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
        refuseCertificateWithoutToken(req, token);
        // An application token (issue 11) reads one device's telemetry and nothing else: 403 on every other route.
        if (TelemetryService.isAppToken(token)) {
          req.appToken = await services.telemetry.authenticateApp(token, req.method, req.routeOptions.url);
          req.owner = { id: req.appToken.ownerId, name: `app-token:${req.appToken.tokenId}`, isAdmin: false, createdAt: '' };
          return;
        }
        req.owner = await authenticateOwner(req, services.sessions, (t) => services.owners.authenticate(t), token);
      });
      ownerRoutes(scope, services.owners);
      metalRoutes(scope, services.metals, services.spaces, {
        matching: (ownerId, q) => services.updates.metalsMatching(ownerId, q),
        describe: (ownerId, metalId) => services.updates.view(ownerId, metalId),
        schema: MetalUpdatesSchema,
        retiredAt: (metalId) => services.enrollment.retiredAt(metalId),
        lwm2m: { describe: (metalId) => services.devices.view(metalId), schema: MetalLwm2mSchema },
      }, (metalId) => services.provisioning.currentOf(metalId), {
        inState: (ownerId, state) => interfaceStates.metalsInState(ownerId, state, (macs) => services.metals.idsHoldingMacs(ownerId, macs)),
        blocked: (metalId) => services.discovery.isBlocked(metalId),
      });
      updateOwnerRoutes(scope, services.updates);
      spaceRoutes(scope, services.spaces);
      glazeRoutes(scope, services.glazes, {
        uploadIdleTimeoutMs,
        authorizeUpload: async (req, spaceRefs) => {
          const ids: string[] = [];
          for (const ref of spaceRefs) ids.push((await services.spaces.get(req.owner.id, ref)).id);
          const header = (name: string) => {
            const v = req.headers[name];
            return typeof v === 'string' ? v : undefined;
          };
          await services.tokens.authorizeUpload(
            req.owner.id,
            ids,
            { token: header('x-tips-token'), nonce: header('x-tips-pop-nonce'), signature: header('x-tips-pop-signature') },
            deps.requireUploadToken === true,
          );
        },
      });
      enrollmentRoutes(scope, services.enrollment);
      tokenRoutes(scope, services.tokens);
      keyRoutes(scope, services.keys);
      directiveOwnerRoutes(scope, services.directives);
      gatewayOwnerRoutes(scope, services.gateways, deps.publicUrls);
      discoveryOwnerRoutes(scope, services.discovery);
      provisioningOwnerRoutes(scope, services.provisioning);
      voucherRoutes(scope, services.vouchers, deps.publicUrls && (() => deps.publicUrls!().url), (owner, guid, reason) => services.bootstrap.recordImportRefusal(owner, guid, reason));
      bootstrapRoutes(scope, services.bootstrap);
      sessionRoutes(scope, services.sessions);
      liveRoutes(scope, live);
      interfaceStateRoutes(scope, services.gateways, interfaceStates);
      defaultSpaceRoutes(scope, services.metals, services.spaces);
      telemetryOwnerRoutes(scope, services.telemetry, async (ownerId, metalId) => (await services.updates.view(ownerId as never, metalId as never)).profile);
      deviceMgmtOwnerRoutes(scope, services.devices);
      constrainedOwnerRoutes(scope, services.constrained);
    },
    { prefix: '/api/v1' },
  );
  // Gateways authenticate with TIPS-GW-1 request signatures, and over TLS with their certificate too; owner tokens mean nothing here.
  await app.register(
    async (scope) => {
      documentScope(scope, { security: [{ gatewaySignature: [] }], refusals: { 401: 'The TIPS-GW-1 signature (or the TLS client certificate) does not authenticate an enrolled gateway' } });
      installGatewayAuth(scope, services.gateways);
      await gatewayApiRoutes(scope, services.gateways);
      discoveryGatewayRoutes(scope, services.discovery);
      await provisioningGatewayRoutes(scope, services.provisioning);
    },
    { prefix: '/api/gateway/v1' },
  );
  app.addHook('preClose', async () => services.gateways.closeAll());
  app.addHook('onClose', async () => deps.readPool?.close());
  // Metals: mutual TLS only — the certificate our CA issued is the identity (S6); tokens mean nothing here.
  await app.register(
    async (scope) => {
      documentScope(scope, {
        security: [{ metalCertificate: [] }],
        refusals: { 401: 'No valid metal client certificate (missing, unknown, revoked or expired)', 403: 'The metal is blocked (T16) or retired (S14: metal_retired)' },
      });
      metalScope(scope, services.enrollment);
      directiveMetalRoutes(scope, services.directives);
      tokenMetalRoutes(scope, services.tokens, { ttlMinutes: Math.min(60, Math.ceil(services.updates.reauthSeconds / 60) + 1) });
      // The Update Manager (Phases 2–3): a one-hop PoP token on every request besides mTLS.
      await scope.register(async (updates) => updateMetalRoutes(updates, services.updates, { masterUri: () => deps.publicUrls?.().tlsUrl ?? undefined }));
      // Information exchange (issue 11): heartbeats and telemetry, under the same PoP token as the Update Manager's routes.
      await scope.register(async (t) => {
        t.addHook('onRequest', async (req) => services.updates.authorize(req.metal, req.headers.authorization));
        telemetryMetalRoutes(t, services.telemetry);
      });
    },
    { prefix: '/api/metal/v1' },
  );
  // Zero-touch onboarding (issue 11): the rendezvous server (TO0/TO1) and the owner's TO2. No
  // credential: registrations are proven by the voucher chain and the owner's signature, devices by
  // the key their voucher binds.
  await app.register(
    async (scope) => {
      documentScope(scope, { security: [], refusals: {} });
      rendezvousRoutes(scope, services.rendezvous);
    },
    { prefix: '/api/rendezvous/v1' },
  );
  await app.register(
    async (scope) => {
      documentScope(scope, { security: [], refusals: {} });
      onboardingDeviceRoutes(scope, services.bootstrap);
    },
    { prefix: '/api/onboarding/v1' },
  );
  // EST (RFC 7030) for enrollment and renewal, HTTPS only.
  await app.register(
    async (scope) => {
      documentScope(scope, { security: [], refusals: { 403: 'EST is served over HTTPS only' } });
      estRoutes(scope, services.enrollment);
    },
    { prefix: '/.well-known/est' },
  );
  installConsole(app, deps.webDir);
  return { app, services, metrics };
}
