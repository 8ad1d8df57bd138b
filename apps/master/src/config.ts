import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DatabaseConfig } from './db/database.ts';
import { parseS3Url } from './blob/s3-location.ts';
import { type BusConfig, parseBusUrl } from './bus/bus.ts';
import { API_TOKEN_FORMAT } from './domains/owners/model.ts';
import { DEFAULT_READ_THREADS, MAX_READ_THREADS } from './db/read-pool.ts';

/** Every setting, with its flag, its environment variable and its default (`tips-master --help`). */
export interface MasterConfig {
  host: string;
  port: number;
  dataDir: string;
  database: DatabaseConfig;
  maxGlazeBytes: number;
  logLevel: string;
  bootstrapAdminToken?: string;
  /** HTTPS listener (EST, metal mTLS, owner API); null = off. */
  tlsPort: number | null;
  tlsHostname: string;
  /** root.pem, intermediate.pem, intermediate-key.pem (tips ca init), server certificate. */
  caDir: string;
  /** Refuse gateway requests not made over mTLS (false: the plain HTTP listener is for loopback/dev). */
  gatewayRequireTls: boolean;
  /** Glaze uploads need an S11 upload token with proof of possession besides the API token. */
  requireUploadToken: boolean;
  /** An upload sending no bytes for this many seconds is abandoned and its temp file removed. */
  uploadIdleTimeoutSeconds: number;
  /** SQLite: worker threads with their own read-only connection for snapshot-safe list reads (db/read-pool.ts); 0 = all reads on the event loop. */
  readThreads: number;
  /** Lifetime of metal certificates issued by EST (simpleenroll, simplereenroll), in days. */
  metalCertDays: number;
  /** The URL gateways and operators reach the master at (`tips gateway add` prints it); null = derived from --host/--port. */
  publicUrl: string | null;
  /** The tinkerbell engine (A5): where it writes Hardware/Template/Workflow, or the kubectl it pipes them to, and the gateway URL its worker fetches Glazes from. */
  tinkerbell: { dir: string; kubectl: string | null; glazeBase: string };
  /** How often the jobs of engines that install by themselves (tinkerbell) are read back, in seconds; 0 = never. */
  engineSyncIntervalSeconds: number;
  /** Metal-API requests need an authentication (token) no older than this, in seconds (T15). */
  reauthPeriodSeconds: number;
  /** Embedded MQTT broker port (TLS, client certificates); null = no embedded broker. */
  mqttPort: number | null;
  /** An external broker (mqtts://host:port) the master publishes to instead of the embedded one. */
  mqttUrl: string | null;
  /** Where Glaze payloads live: files under the data dir, or an S3-compatible bucket (T2 scale-out). */
  blobStore: BlobStoreConfig;
  /** How this replica hears of the others' changes: in-process (a lone master), an MQTT broker, a NATS cluster. */
  bus: BusConfig;
  /** CoAP over DTLS for constrained metals (S13, issue 12); null = off (the default; `npm start` uses 5684). */
  coapPort: number | null;
  /** Address the CoAP/DTLS port binds to (default: --host). */
  coapHost: string;
  /** LwM2M: seconds past its lifetime before a silent device counts as offline. */
  lwm2mGraceSeconds: number;
}

export type BlobStoreConfig =
  | { kind: 'file'; dir: string }
  | {
      kind: 's3';
      bucket: string;
      /** '' or ending in '/'. */
      prefix: string;
      /** An S3-compatible endpoint (path-style); null = AWS S3. */
      endpoint: string | null;
      region: string;
      /** Downloads answered with a pre-signed redirect valid this long; null = streamed by the master. */
      presignSeconds: number | null;
    };

export interface RawOptions {
  host?: string;
  port?: string;
  dataDir?: string;
  databaseUrl?: string;
  maxGlazeBytes?: string;
  logLevel?: string;
  tlsPort?: string;
  tlsHostname?: string;
  caDir?: string;
  gatewayRequireTls?: boolean;
  requireUploadToken?: boolean;
  uploadIdleTimeout?: string;
  metalCertDays?: string;
  publicUrl?: string;
  tinkerbellDir?: string;
  tinkerbellKubectl?: string;
  tinkerbellGlazeBase?: string;
  engineSyncInterval?: string;
  reauthPeriod?: string;
  mqttPort?: string;
  mqttUrl?: string;
  blobStore?: string;
  s3Endpoint?: string;
  s3Region?: string;
  coapPort?: string;
  coapHost?: string;
  lwm2mGrace?: string;
  s3Presign?: string | boolean;
  bus?: string;
  readThreads?: string;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: join(homedir(), '.local', 'share', 'tips-master'),
  maxGlazeBytes: 64 * 2 ** 30,
  logLevel: 'info',
  tlsPort: 8443,
  tlsHostname: 'localhost',
  uploadIdleTimeoutSeconds: 60,
  metalCertDays: 7,
  tinkerbellGlazeBase: 'http://tips-gateway:8080',
  engineSyncIntervalSeconds: 15,
  reauthPeriodSeconds: 120,
  mqttPort: 8883,
  s3Region: 'us-east-1',
  s3PresignSeconds: 300,
  readThreads: DEFAULT_READ_THREADS,
};
/** Metal certificates stay short-lived: renewal (simplereenroll) is how a revoked key ages out. */
export const MAX_METAL_CERT_DAYS = 397;

export class ConfigError extends Error {}

function int(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

function bool(name: string, value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new ConfigError(`${name} must be true/false or 1/0, got "${value}"`);
}

/** Flags win over environment variables, which win over defaults. */
export function loadConfig(opts: RawOptions, env: NodeJS.ProcessEnv = process.env): MasterConfig {
  const dataDir = resolve(opts.dataDir ?? env.TIPS_DATA_DIR ?? DEFAULTS.dataDir);
  const url = opts.databaseUrl ?? env.TIPS_DATABASE_URL;
  let database: DatabaseConfig;
  if (!url || url === 'sqlite') database = { kind: 'sqlite', file: join(dataDir, 'tips.db') };
  else if (url.startsWith('sqlite:')) database = { kind: 'sqlite', file: resolve(url.slice('sqlite:'.length)) };
  else if (/^postgres(ql)?:\/\//.test(url)) database = { kind: 'postgres', url };
  else throw new ConfigError(`--database-url must be sqlite:<file> or postgres://…, got "${url.replace(/\/\/[^@]*@/, '//***@')}"`);
  const port = opts.port ?? env.TIPS_PORT;
  const maxGlaze = opts.maxGlazeBytes ?? env.TIPS_MAX_GLAZE_BYTES;
  const tlsPort = opts.tlsPort ?? env.TIPS_TLS_PORT;
  const uploadIdle = opts.uploadIdleTimeout ?? env.TIPS_UPLOAD_IDLE_TIMEOUT;
  const engineSync = opts.engineSyncInterval ?? env.TIPS_ENGINE_SYNC_INTERVAL;
  const readThreads = opts.readThreads ?? env.TIPS_READ_THREADS;
  const bootstrap = env.TIPS_BOOTSTRAP_ADMIN_TOKEN;
  if (bootstrap !== undefined && !API_TOKEN_FORMAT.test(bootstrap)) {
    // The value is a secret: say what is wrong with it, never echo it.
    throw new ConfigError(
      `TIPS_BOOTSTRAP_ADMIN_TOKEN must be tips_ followed by 32–128 base64url characters (A-Z a-z 0-9 - _), e.g. tips_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '='); got ${bootstrap.length} characters${bootstrap.startsWith('tips_') ? '' : ' not starting with tips_'}`,
    );
  }
  return {
    host: opts.host ?? env.TIPS_HOST ?? DEFAULTS.host,
    port: port === undefined ? DEFAULTS.port : int('--port', port, 0, 65535),
    dataDir,
    database,
    maxGlazeBytes: maxGlaze === undefined ? DEFAULTS.maxGlazeBytes : int('--max-glaze-bytes', maxGlaze, 1, Number.MAX_SAFE_INTEGER),
    logLevel: opts.logLevel ?? env.TIPS_LOG_LEVEL ?? DEFAULTS.logLevel,
    bootstrapAdminToken: bootstrap,
    // With --port 0 (tests, several masters on one machine) the HTTPS port defaults to any free one too.
    tlsPort: tlsPort === undefined ? (port !== undefined && Number(port) === 0 ? 0 : DEFAULTS.tlsPort) : tlsPort === 'off' ? null : int('--tls-port', tlsPort, 0, 65535),
    tlsHostname: opts.tlsHostname ?? env.TIPS_TLS_HOSTNAME ?? DEFAULTS.tlsHostname,
    caDir: resolve(opts.caDir ?? env.TIPS_CA_DIR ?? join(dataDir, 'ca')),
    gatewayRequireTls: opts.gatewayRequireTls === true || bool('TIPS_GATEWAY_REQUIRE_TLS', env.TIPS_GATEWAY_REQUIRE_TLS),
    requireUploadToken: opts.requireUploadToken === true || bool('TIPS_REQUIRE_UPLOAD_TOKEN', env.TIPS_REQUIRE_UPLOAD_TOKEN),
    uploadIdleTimeoutSeconds: uploadIdle === undefined ? DEFAULTS.uploadIdleTimeoutSeconds : int('--upload-idle-timeout', uploadIdle, 1, 86_400),
    readThreads: readThreads === undefined ? DEFAULTS.readThreads : int('--read-threads', readThreads, 0, MAX_READ_THREADS),
    metalCertDays: int('--metal-cert-days', opts.metalCertDays ?? env.TIPS_METAL_CERT_DAYS ?? String(DEFAULTS.metalCertDays), 1, MAX_METAL_CERT_DAYS),
    publicUrl: publicUrl(opts.publicUrl ?? env.TIPS_PUBLIC_URL),
    engineSyncIntervalSeconds: engineSync === undefined ? DEFAULTS.engineSyncIntervalSeconds : int('--engine-sync-interval', engineSync, 0, 86_400),
    tinkerbell: {
      dir: resolve(opts.tinkerbellDir ?? env.TIPS_TINKERBELL_DIR ?? join(dataDir, 'tinkerbell')),
      kubectl: opts.tinkerbellKubectl ?? env.TIPS_TINKERBELL_KUBECTL ?? null,
      glazeBase: glazeBase(opts.tinkerbellGlazeBase ?? env.TIPS_TINKERBELL_GLAZE_BASE ?? DEFAULTS.tinkerbellGlazeBase),
    },
    reauthPeriodSeconds: int('--reauth-period', opts.reauthPeriod ?? env.TIPS_REAUTH_PERIOD ?? String(DEFAULTS.reauthPeriodSeconds), 10, 86_400),
    ...mqtt(opts.mqttPort ?? env.TIPS_MQTT_PORT, opts.mqttUrl ?? env.TIPS_MQTT_URL, port !== undefined && Number(port) === 0),
    blobStore: blobStore(opts, env, dataDir),
    bus: busConfig(opts.bus ?? env.TIPS_BUS),
    ...coap(opts.coapPort ?? env.TIPS_COAP_PORT, opts.coapHost ?? env.TIPS_COAP_HOST, opts.host ?? env.TIPS_HOST ?? DEFAULTS.host),
    lwm2mGraceSeconds: int('--lwm2m-grace', opts.lwm2mGrace ?? env.TIPS_LWM2M_GRACE ?? '15', 0, 86_400),
  };
}

function busConfig(value: string | undefined): BusConfig {
  try {
    return parseBusUrl(value);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** The CoAP/DTLS port: off unless asked for (`off` says so explicitly); 0 = any free port. */
function coap(portOpt: string | undefined, host: string | undefined, defaultHost: string): { coapPort: number | null; coapHost: string } {
  const coapHost = host ?? defaultHost;
  if (host !== undefined && host.trim() === '') throw new ConfigError('--coap-host must be an address, got an empty string');
  if (portOpt === undefined || portOpt === 'off') return { coapPort: null, coapHost };
  return { coapPort: int('--coap-port', portOpt, 0, 65535), coapHost };
}

/** `file` (default: <data-dir>/glazes) or `s3://bucket[/prefix]` with its endpoint, region and presigning. */
function blobStore(opts: RawOptions, env: NodeJS.ProcessEnv, dataDir: string): BlobStoreConfig {
  const url = opts.blobStore ?? env.TIPS_BLOB_STORE ?? 'file';
  const endpoint = opts.s3Endpoint ?? env.TIPS_S3_ENDPOINT;
  const region = opts.s3Region ?? env.TIPS_S3_REGION ?? env.AWS_REGION ?? DEFAULTS.s3Region;
  const presign = opts.s3Presign ?? env.TIPS_S3_PRESIGN;
  if (url === 'file') {
    if (endpoint !== undefined || opts.s3Region !== undefined || (presign !== undefined && presign !== false && presign !== 'off')) {
      throw new ConfigError('--s3-endpoint, --s3-region and --s3-presign need --blob-store s3://<bucket>[/<prefix>]');
    }
    return { kind: 'file', dir: join(dataDir, 'glazes') };
  }
  let location: { bucket: string; prefix: string };
  try {
    location = parseS3Url(url);
  } catch (err) {
    throw new ConfigError(`--blob-store must be file or s3://<bucket>[/<prefix>]: ${(err as Error).message}`);
  }
  if (!/^[a-z0-9-]{2,32}$/.test(region)) throw new ConfigError(`--s3-region must be a region name like us-east-1, got "${region.slice(0, 40)}"`);
  let presignSeconds: number | null = null;
  if (presign === true || presign === '' || presign === 'on') presignSeconds = DEFAULTS.s3PresignSeconds;
  else if (presign !== undefined && presign !== false && presign !== 'off') presignSeconds = int('--s3-presign', presign, 1, 7 * 86_400);
  return { kind: 's3', ...location, endpoint: endpoint === undefined || endpoint === '' ? null : s3Endpoint(endpoint), region, presignSeconds };
}

function s3Endpoint(value: string): string {
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    // Reported below.
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username || u.password) {
    // Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never from the URL: do not echo one.
    throw new ConfigError(`--s3-endpoint must be an http:// or https:// URL without credentials or query, e.g. http://127.0.0.1:9000, got "${value.replace(/\/\/[^@]*@/, '//***@')}"`);
  }
  return u.href.replace(/\/+$/, '');
}

/** The embedded broker (default, port 8883; any free one with --port 0), none (`off`), or an external one. */
function mqtt(portOpt: string | undefined, url: string | undefined, anyPort: boolean): { mqttPort: number | null; mqttUrl: string | null } {
  if (url !== undefined && url !== '') {
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      // Reported below.
    }
    if (u?.protocol !== 'mqtts:' || !u.port || u.pathname.replace(/^\/+/, '') !== '' || u.username || u.password) {
      throw new ConfigError(`--mqtt-url must be mqtts://host:port (TLS with the master's client certificate, no credentials), got "${url.replace(/\/\/[^@]*@/, '//***@')}"`);
    }
    if (portOpt !== undefined && portOpt !== 'off') throw new ConfigError('--mqtt-url and --mqtt-port exclude each other: the external broker replaces the embedded one');
    return { mqttPort: null, mqttUrl: `mqtts://${u.host}` };
  }
  if (portOpt === 'off') return { mqttPort: null, mqttUrl: null };
  return { mqttPort: portOpt === undefined ? (anyPort ? 0 : DEFAULTS.mqttPort) : int('--mqtt-port', portOpt, 0, 65535), mqttUrl: null };
}

function publicUrl(value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    // Reported below with the expected form.
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username || u.password) {
    throw new ConfigError(`--public-url must be an http:// or https:// base URL without query or credentials, e.g. https://tips.example.com:8443, got "${value}"`);
  }
  return u.href.replace(/\/+$/, '');
}

function glazeBase(value: string): string {
  if (!/^https?:\/\/[A-Za-z0-9.:[\]-]+(\/[A-Za-z0-9._~-]+)*\/?$/.test(value)) {
    throw new ConfigError(`--tinkerbell-glaze-base must be the gateway boot URL, http://<gateway LAN address>:<port>, got "${value}"`);
  }
  return value.replace(/\/+$/, '');
}

/**
 * The URL gateways and operators reach the master at: --public-url, else the address it listens on
 * (a wildcard address is no destination, so this host's name stands in for it).
 */
export function derivePublicUrl(config: Pick<MasterConfig, 'publicUrl' | 'host'>, port: number, hostname: string): string {
  if (config.publicUrl) return config.publicUrl;
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const host = wildcard ? hostname : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${port}`;
}
