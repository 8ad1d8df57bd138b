// The OpenAPI document tells the truth: every operation in /openapi.json is called with valid and
// invalid inputs derived from the document itself, and every answer is checked against it — the
// status is documented for that operation, the content type is one it names, the body validates
// against its schema, and the body the handler sent reached the client unchanged (no field the
// schema forgot silently dropped). The walk is generic: a route added later is walked too.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KyselyDeviceMgmtStore } from './domains/devicemgmt/store.kysely.ts';
import { KyselyUpdateStore } from './domains/updates/store.kysely.ts';
import { buildApp } from './app.ts';
import { FsBlobStore } from './blob/fs-blob-store.ts';
import { type Db, openDatabase } from './db/database.ts';
import { TestGateway } from './domains/gateways/test-client.ts';
import type { ResponseMismatch } from './http/openapi-responses.ts';
import { installerKey, parseBootingScript, signedReport } from './domains/provisioning/test-helpers.ts';
import { makeCsr } from './tls/testing.ts';
import { voucherFor } from './domains/vouchers/test-helpers.ts';
import { deviceFactsDigest, makeSetupKey, signProof, signTo1d } from '@tips/onboarding';
import { buildEnvelope, generateSigningKey } from '@tips/suit';
import { encodeTrustList, TRUST_LIST_COMPONENT } from '@tips/trust';

// biome-ignore lint/suspicious/noExplicitAny: the document is JSON walked generically, whatever routes it describes
type Schema = Record<string, any>;
interface Operation {
  method: string;
  path: string;
  op: Schema;
  pointer: string;
}
interface Probe {
  label: string;
  /** The probe sends input the document says is wrong: the answer must be a refusal (4xx). */
  invalid: boolean;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Buffer;
  contentType?: string;
  auth: boolean;
}

// Operations that cannot succeed in-process (app.inject has no TLS), and where their success is proven.
const HTTPS_ONLY = [{ prefix: '/.well-known/est/', why: 'EST answers only over HTTPS (403 here); its successes are covered over TLS in domains/enrollment/routes.test.ts' }];

let app: FastifyInstance;
let db: Db;
let dir: string;
let adminToken: string;
let gateway: TestGateway;
const mismatches: ResponseMismatch[] = [];

/** Objects the walk refers to, made through the API before it starts. */
const fx = {
  metal: '',
  lwq: '',
  space: '',
  glaze: '',
  key: '',
  gateway: '',
  apiToken: '',
  appToken: '',
  secret: '',
  serial: '',
  cwt: '',
  scope: '',
  envelope: Buffer.alloc(0) as Buffer,
  directive: Buffer.alloc(0) as Buffer,
  retireMetal: '',
  pskIdentity: '',
  spareEnrollmentTokens: [] as string[],
  ed25519Pem: generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  // Phase 1: a job booted through the gateway (its token, its installer and report), and a metal
  // the walk reprovisions and boots (so the walk never voids that job's token).
  p1Job: '',
  p1Mac: '02:00:00:00:fe:01',
  p1Token: '',
  p1BootMac: '02:00:00:00:fe:02',
  p1Installer: installerKey(),
  p1Report: Buffer.alloc(0) as Buffer,
  p1BootMetal: '',
  // Ownership vouchers: an onboarding key and a voucher (base64) whose chain ends at it.
  onboardingKey: '',
  voucher: '',
  guid: '',
  // Rendezvous (TO0/TO1) and TO2: a registration, and proofs made over nonces the fixture asked for.
  rvVoucher: '',
  rvTo1d: '',
  rvGuid: '',
  rvProof: '',
  to2Proof: '',
  to2Nonce: '',
  profile: '',
  facts: { interfaces: [{ name: 'eth0', mac: '0a:1b:2c:3d:4e:5f', type: 'ethernet' as const, pxe: true }], ramMb: 1024, arch: 'x86_64' },
};

let counter = 0;
const fresh = () => `w${++counter}`;
const freshMac = () => `02:00:00:00:${((++counter >> 8) & 0xff).toString(16).padStart(2, '0')}:${(counter & 0xff).toString(16).padStart(2, '0')}`;

async function call(method: string, url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  const r = await app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${adminToken}`, ...headers }, payload: payload as string });
  if (r.statusCode >= 300) throw new Error(`fixture ${method} ${url}: ${r.statusCode} ${r.body}`);
  return r;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-openapi-test-'));
  db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
  const blobs = await FsBlobStore.open(join(dir, 'glazes'));
  // Rendezvous registrations the master sends (to whatever host a voucher names) come back to this app.
  const inProcessFetch = (async (url: string | URL, init?: RequestInit) => {
    const u = new URL(String(url));
    const r = await app.inject({ method: (init?.method ?? 'GET') as 'POST', url: u.pathname + u.search, headers: { 'content-type': 'application/json' }, payload: init?.body as string });
    return new Response(r.body, { status: r.statusCode, headers: { 'content-type': String(r.headers['content-type'] ?? 'application/json') } });
  }) as typeof fetch;
  // A TLS URL to hand onboarded devices (TO2 registration needs one; app.inject itself has no TLS).
  const built = await buildApp({ db, blobs, onResponseMismatch: (m) => mismatches.push(m), fetch: inProcessFetch, publicUrls: () => ({ url: 'http://192.0.2.1:8080', tlsUrl: 'https://192.0.2.1:8443' }) });
  app = built.app;
  const admin = await built.services.owners.ensureAdmin();
  if (!admin) throw new Error('fresh database must create an admin');
  adminToken = admin.token;

  fx.metal = (await call('POST', '/api/v1/metals', { name: 'fx-metal', interfaces: [{ name: 'eth0', mac: '02:00:00:00:ff:01', type: 'ethernet', pxe: true }] })).json().id;
  fx.space = (await call('POST', '/api/v1/spaces', { name: 'fx-space', phase: 1 })).json().id;
  await call('POST', `/api/v1/spaces/${fx.space}/members`, { metal: fx.metal, interfaces: ['eth0'], default: true });
  fx.glaze = (await call('POST', `/api/v1/glazes?name=fx-glaze&spaces=${fx.space}`, Buffer.from('glaze bytes'), { 'content-type': 'application/octet-stream' })).json().id;
  fx.key = (await call('POST', '/api/v1/keys', { name: 'fx-key', serverHeld: true })).json().id;
  await call('POST', `/api/v1/glazes/${fx.glaze}/manifest/sign`, { key: fx.key, sequenceNumber: 1, vendorDomain: 'example.com', classInfo: 'fx', component: 'rootfs', uri: 'https://example.com/fx' });
  fx.envelope = (await call('GET', `/api/v1/glazes/${fx.glaze}/manifest`)).rawPayload;
  // A signed trust-list update (directives) and a metal of its own to retire (retiring fx-metal would revoke its secrets).
  const dirKey = generateSigningKey('ed25519');
  await call('POST', '/api/v1/keys', { name: 'fx-directive-key', publicKey: dirKey.publicPem });
  const list = encodeTrustList({ version: 2, operators: [{ name: 'fx', publicKey: dirKey.key.publicKey! }], updateServers: [] });
  fx.directive = Buffer.from(buildEnvelope({ vendorDomain: 'tips.directive', classInfo: 'trust-list', component: TRUST_LIST_COMPONENT, sequenceNumber: 2, payload: list, delivery: { mode: 'integrated' }, key: dirKey.key }));
  fx.retireMetal = (await call('POST', '/api/v1/metals', { name: 'fx-retire', interfaces: [{ name: 'eth0', mac: '02:00:00:00:ff:02', type: 'ethernet', pxe: true }] })).json().id;
  fx.pskIdentity = (await call('POST', `/api/v1/metals/${fx.metal}/psk`)).json().identity;
  fx.apiToken = (await call('POST', '/api/v1/tokens', { name: 'fx-token' })).json().id;
  fx.appToken = (await call('POST', '/api/v1/app-tokens', { metal: fx.metal, scope: ['telemetry:read'] })).json().id;
  fx.secret = (await call('POST', '/api/v1/enrollment/secrets', { metal: fx.metal })).json().id;
  const used = (await call('POST', '/api/v1/enrollment/secrets', { metal: fx.metal })).json();
  const csr = await makeCsr({ uris: [`urn:tips:metal:${fx.metal}`] });
  fx.serial = (await built.services.enrollment.enroll({ id: used.id, secret: used.secret }, csr.der)).record.serial;
  // An installed Glaze, so a rollback request has something to roll back.
  await new KyselyUpdateStore(db).recordReport({ id: 'rpt_fx', ownerId: admin.owner.id, metalId: fx.metal as never, spaceId: fx.space as never, glazeId: fx.glaze as never, result: 'installed', reason: null, sequence: 1, at: new Date().toISOString(), cose: new Uint8Array([0xd2]), createdAt: new Date().toISOString() });
  fx.scope = `pull:glaze:${fx.glaze}`;
  fx.cwt = (await call('POST', '/api/v1/tokens/issue', { audience: 'urn:tips:master', scope: [fx.scope], holder: { publicKey: fx.ed25519Pem } })).json().cwt;
  gateway = await TestGateway.enroll(app, adminToken, 'fx-gateway');
  fx.gateway = gateway.id;
  for (let i = 0; i < 3; i++) fx.spareEnrollmentTokens.push((await call('POST', '/api/v1/gateways', { name: `fx-spare-${i}` })).json().enrollmentToken);
  const p1Space = (await call('POST', '/api/v1/spaces', { name: 'fx-p1-space', phase: 1 })).json().id;
  for (const [name, mac] of [['fx-p1', fx.p1Mac], ['fx-p1-boot', fx.p1BootMac]] as const) {
    const id = (await call('POST', '/api/v1/metals', { name, interfaces: [{ name: 'eth0', mac, type: 'ethernet', pxe: true }] })).json().id;
    await call('POST', `/api/v1/spaces/${p1Space}/members`, { metal: id, interfaces: ['eth0'], default: true });
    if (name === 'fx-p1-boot') fx.p1BootMetal = id;
  }
  const p1Glaze = (await call('POST', `/api/v1/glazes?name=fx-p1-glaze&spaces=${p1Space}`, Buffer.from('phase 1 image'), { 'content-type': 'application/octet-stream' })).json();
  await call('POST', `/api/v1/glazes/${p1Glaze.id}/manifest/sign`, { key: fx.key, sequenceNumber: 1, vendorDomain: 'example.com', classInfo: 'fx', component: 'disk', uri: 'https://example.com/p1' });
  await call('PATCH', `/api/v1/spaces/${p1Space}`, { glaze: p1Glaze.id });
  const bootPath = `/api/gateway/v1/provisioning/boot-script?mac=${encodeURIComponent(fx.p1Mac)}&base=${encodeURIComponent('http://192.0.2.1:8080')}`;
  const booted = await app.inject({ method: 'GET', url: bootPath, headers: gateway.headers('GET', bootPath, undefined) });
  ({ jobId: fx.p1Job, token: fx.p1Token } = parseBootingScript(booted.body));
  fx.p1Report = signedReport(fx.p1Installer.key, { jobId: fx.p1Job, result: 'installed', glazeSha256: p1Glaze.sha256 });
  const onboardingKey = (await call('POST', '/api/v1/onboarding-keys', { name: 'fx-onboarding' })).json();
  fx.onboardingKey = onboardingKey.id;
  const made = voucherFor(onboardingKey.publicKey);
  fx.voucher = Buffer.from(made.voucher).toString('base64');
  fx.guid = (await call('POST', '/api/v1/vouchers', { vouchers: [fx.voucher] })).json().items[0].voucher.guid;
  fx.profile = (await call('POST', '/api/v1/bootstrap/profiles', { name: 'fx-profile', spaces: [fx.space] })).json().id;
  const to2 = (await call('POST', '/api/onboarding/v1/hello', { guid: fx.guid, nonce: Buffer.alloc(16, 1).toString('base64'), device: fx.facts })).json();
  fx.to2Nonce = to2.nonce;
  fx.to2Proof = Buffer.from(
    signProof(made.device.privateKey, 'tips-to2-device', [Buffer.from(fx.guid.replaceAll('-', ''), 'hex'), Buffer.from(to2.nonce, 'base64'), deviceFactsDigest(fx.facts), makeSetupKey().publicRaw]),
  ).toString('base64');
  const rvOwner = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rv = voucherFor(rvOwner.publicKey);
  fx.rvVoucher = Buffer.from(rv.voucher).toString('base64');
  const rvGuid = (await import('@tips/onboarding')).decodeVoucher(rv.voucher).header.guid;
  fx.rvTo1d = Buffer.from(signTo1d(rvOwner.privateKey, { guid: rvGuid, addresses: ['http://192.0.2.1:8080'], expiresAt: Math.floor(Date.now() / 1000) + 3600 })).toString('base64');
  fx.rvGuid = (await call('POST', '/api/rendezvous/v1/registrations', { voucher: fx.rvVoucher, to1d: fx.rvTo1d })).json().guid;
  const rvNonce = (await call('POST', '/api/rendezvous/v1/hello', { guid: fx.rvGuid })).json().nonce;
  fx.rvProof = Buffer.from(signProof(rv.device.privateKey, 'tips-to1-device', [rvGuid, Buffer.from(rvNonce, 'base64')])).toString('base64');
  // LwM2M (Z5): fx-metal registered as the CoAP route registers the metal of a DTLS session, a value it
  // reported, its Space's Glaze set (a firmware update needs one), and a stand-in for the device's CoAP channel.
  const lwm2mDevice = { metalId: fx.metal, ownerId: admin.owner.id };
  const lwm2mReg = await built.services.devices.register(lwm2mDevice, { ep: fx.metal, lt: '86400', lwm2m: '1.1', b: 'UQ' }, Buffer.from('</3/0>,</5/0>'));
  await built.services.devices.recordValues(fx.metal as never, [{ path: [3, 0, 9], value: 87 }]);
  // A queue-mode operation waiting in the database (as a UQ device's read leaves it; the store queues only for a UQ registration).
  const queuedAt = new Date().toISOString();
  fx.lwq = 'lwq_FX0000000000000000';
  await new KyselyDeviceMgmtStore(db).enqueue({ id: fx.lwq, metalId: fx.metal as never, ownerId: admin.owner.id, kind: 'read', target: '/3/0/9', status: 'queued', createdAt: queuedAt, updatedAt: queuedAt }, 8);
  // Then in plain U (nothing flushes it here), so reads answer 200 live through the stand-in channel.
  await built.services.devices.update(lwm2mDevice, lwm2mReg.id, { b: 'U' }, new Uint8Array(0));
  built.services.devices.useChannel({ read: async () => [{ path: [3, 0, 9], value: 87 }], write: async () => {}, writeRaw: async () => {}, execute: async () => {}, observe: async () => {}, baseUri: () => 'coaps://master.test' });
  await call('PATCH', `/api/v1/spaces/${fx.space}`, { glaze: fx.glaze });
  // Decision records, so the JSON-lines exports have lines to check.
  await gateway.register({ mac: '02:00:00:00:ff:01', ip: '192.0.2.1', gatewayInterface: 'eth1' });
  await gateway.register({ mac: '02:00:00:00:ff:99', ip: '192.0.2.2', gatewayInterface: 'eth1' });
});

afterAll(async () => {
  await app?.close();
  await db?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

// ---- inputs derived from the document ----

/** The object a path parameter names, by the collection segment before it. */
function pathFixture(path: string, param: string): string | undefined {
  const segments = path.split('/');
  const before = segments[segments.indexOf(`{${param}}`) - 1];
  const byCollection: Record<string, string> = {
    metals: fx.metal,
    spaces: fx.space,
    members: fx.metal,
    glazes: fx.glaze,
    keys: fx.key,
    gateways: fx.gateway,
    tokens: fx.apiToken,
    secrets: fx.secret,
    certificates: fx.serial,
    jobs: fx.p1Job,
    'onboarding-keys': fx.onboardingKey,
    vouchers: fx.guid,
    profiles: fx.profile,
    onboardings: fx.guid,
    'app-tokens': fx.appToken,
  };
  return before === undefined ? undefined : byCollection[before];
}

/** Values the schema alone cannot give (a fixture's ID, a MAC that is free), by property name. */
const hints: Record<string, (s: Schema) => unknown> = {
  name: () => fresh(),
  mac: () => freshMac(),
  ip: () => `192.0.2.${(counter++ % 250) + 3}`,
  metal: () => fx.metal,
  space: () => fx.space,
  glaze: () => fx.glaze,
  key: () => fx.key,
  phase: (s) => (s.type === 'integer' ? 1 : undefined),
  interfaces: (s) => (s.items?.type === 'string' ? ['eth0'] : undefined),
  audience: () => 'urn:tips:master',
  scope: (s) => (s.type === 'array' ? [fx.scope] : fx.scope),
  token: () => fx.cwt,
  enrollmentToken: () => fx.spareEnrollmentTokens.shift() ?? 'used-up',
  publicKey: () => fx.ed25519Pem,
  sequenceNumber: () => 100 + counter++,
  vendorDomain: () => 'example.com',
  classInfo: () => 'fx',
  component: () => 'rootfs',
  uri: () => 'https://example.com/glaze.img',
  gatewayInterface: () => 'eth1',
  macs: () => '02:00:00:00:ff:01',
  metals: () => fx.metal,
  glazes: (s) => (s.type === 'string' ? fx.glaze : undefined),
  rows: () => [],
  vouchers: () => [fx.voucher],
  items: (s) => (s.items && Object.keys(s.items).length === 0 ? [{ mac: freshMac(), ip: '192.0.2.200', gatewayInterface: 'eth1' }] : undefined),
};

/** Optional fields an operation needs to be meaningful, where the schema cannot say which of several. */
const chosenOptional: Record<string, Record<string, unknown>> = {
  'POST /api/v1/enrollment/secrets': { metal: () => fx.metal },
  'POST /api/v1/keys': { serverHeld: () => true },
  'POST /api/v1/tokens/issue': { holder: () => ({ publicKey: fx.ed25519Pem }) },
  'POST /api/gateway/v1/provisioning/work': { mac: () => fx.p1Mac, token: () => fx.p1Token, installerKey: () => fx.p1Installer.publicRaw },
  'POST /api/rendezvous/v1/registrations': { voucher: () => fx.rvVoucher, to1d: () => fx.rvTo1d },
  'POST /api/rendezvous/v1/hello': { guid: () => fx.rvGuid },
  'POST /api/rendezvous/v1/prove': { guid: () => fx.rvGuid, proof: () => fx.rvProof },
  'POST /api/onboarding/v1/hello': { guid: () => fx.guid, nonce: () => Buffer.alloc(16, 2).toString('base64'), device: () => fx.facts },
  'POST /api/onboarding/v1/prove': { guid: () => fx.guid, nonce: () => fx.to2Nonce, proof: () => fx.to2Proof },
  // Console sign-in takes an owner API token, not the CWT the `token` hint gives.
  'POST /api/v1/session': { token: () => adminToken },
  'POST /api/v1/app-tokens': { scope: () => ['telemetry:read'] },
};

/** Query and path values an operation needs that the property name alone cannot pick. */
const chosenParams: Record<string, Record<string, () => string>> = {
  'GET /api/gateway/v1/provisioning/boot-script': { mac: () => fx.p1BootMac, base: () => 'http://192.0.2.1:8080' },
  'GET /api/gateway/v1/provisioning/jobs/{jobId}/glaze': { mac: () => fx.p1Mac },
  'POST /api/gateway/v1/provisioning/jobs/{jobId}/report': { mac: () => fx.p1Mac },
  'POST /api/v1/metals/{ref}/reprovision': { ref: () => fx.p1BootMetal },
  'POST /api/v1/metals/{ref}/retire': { ref: () => fx.retireMetal },
  'GET /api/v1/metals/{ref}/lwm2m/resources/{obj}/{inst}/{res}': { obj: () => '3', inst: () => '0', res: () => '9' },
  'DELETE /api/v1/metals/{ref}/psk/{identity}': { identity: () => fx.pskIdentity },
  'GET /api/v1/metals/{ref}/lwm2m/queue/{id}': { id: () => fx.lwq },
  // An event stream ends only when asked to: 0 s answers the opening events and ends.
  'GET /api/v1/events': { seconds: () => '0' },
};

/** A valid value for a schema: an example or default if it gives one, else the least that satisfies it. */
function sample(s: Schema, name?: string): unknown {
  const hinted = name === undefined ? undefined : hints[name]?.(s);
  if (hinted !== undefined) return hinted;
  if (s.const !== undefined) return s.const;
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0];
  if (s.example !== undefined) return s.example;
  if (s.default !== undefined) return s.default;
  if (Array.isArray(s.enum)) return s.enum[0];
  const alternatives = s.anyOf ?? s.oneOf;
  if (Array.isArray(alternatives)) return sample(alternatives.find((a: Schema) => a.type !== 'null') ?? alternatives[0], name);
  switch (s.type) {
    case 'string': {
      const choices = /^([\w-]+) \|/.exec(String(s.description ?? ''));
      if (choices) return choices[1];
      return 'x'.repeat(Math.max(1, s.minLength ?? 1));
    }
    case 'integer':
    case 'number':
      return s.minimum ?? 1;
    case 'boolean':
      return true;
    case 'array':
      // One item unless the schema says otherwise: the least a list of something usually means.
      return Array.from({ length: Math.min(Math.max(s.minItems ?? 0, 1), s.maxItems ?? 1) }, () => sample(s.items ?? {}));
    case 'object': {
      const out: Record<string, unknown> = {};
      const props: Record<string, Schema> = s.properties ?? {};
      for (const k of s.required ?? []) out[k] = sample(props[k] ?? {}, k);
      for (const k of Object.keys(props)) {
        if (Object.keys(out).length >= (s.minProperties ?? 0)) break;
        if (!(k in out)) out[k] = sample(props[k]!, k);
      }
      return out;
    }
    default:
      return {};
  }
}

/** A value of another JSON type than the schema wants. */
function wrongType(s: Schema): unknown {
  return s.type === 'string' || s.type === undefined ? 12345 : 'not-a-' + String(s.type);
}

// ---- checking answers against the document ----

const failures: string[] = [];
const succeeded = new Set<string>();
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
let doc: Schema;

const pointerTo = (...segments: string[]) => `#/${segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;
const essence = (ct: string) => ct.split(';')[0]!.trim().toLowerCase();
const params = (ct: string) =>
  ct
    .split(';')
    .slice(1)
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean);

function mediaMatches(key: string, header: string): boolean {
  const [type, sub] = essence(key).split('/');
  const [htype, hsub] = essence(header).split('/');
  if (type !== '*' && type !== htype) return false;
  if (sub !== '*' && sub !== hsub) return false;
  const given = params(header);
  return params(key).every((p) => given.includes(p));
}

function validate(pointer: string, value: unknown): string | undefined {
  const v = ajv.getSchema(`openapi${pointer}`);
  if (!v) return `no schema at ${pointer}`;
  return v(value) ? undefined : ajv.errorsText(v.errors);
}

function checkAnswer(o: Operation, probe: Probe, r: LightMyRequestResponse): void {
  const where = `${o.method} ${o.path} [${probe.label}] → ${r.statusCode}`;
  const fail = (why: string): void => {
    failures.push(`${where}: ${why}`);
  };
  if (r.statusCode >= 500) fail(`server error: ${r.body.slice(0, 200)}`);
  if (probe.invalid && r.statusCode < 400) fail('invalid input was accepted');
  const s = String(r.statusCode);
  const key = [s, `${s[0]}XX`, 'default'].find((k) => o.op.responses?.[k] !== undefined);
  if (key === undefined) {
    fail(`status not documented (documented: ${Object.keys(o.op.responses ?? {}).join(', ')}); body ${r.body.slice(0, 160)}`);
    return;
  }
  const documented = o.op.responses[key] as Schema;
  if (!probe.invalid && r.statusCode < 400) succeeded.add(`${o.method} ${o.path}`);
  if (!documented.content) {
    if (r.rawPayload.length > 0) fail(`documented without a body, but sent ${r.rawPayload.length} bytes`);
    return;
  }
  const header = String(r.headers['content-type'] ?? '');
  const media = Object.keys(documented.content).find((k) => mediaMatches(k, header));
  if (media === undefined) {
    fail(`content type "${header}" not documented (documented: ${Object.keys(documented.content).join(', ')})`);
    return;
  }
  const at = (...rest: string[]) => `${o.pointer}${pointerTo('responses', key, 'content', media, ...rest).slice(1)}`;
  const m = essence(media);
  if (m === 'application/json' || m.endsWith('+json')) {
    let body: unknown;
    try {
      body = JSON.parse(r.body);
    } catch {
      fail(`body is not JSON: ${r.body.slice(0, 120)}`);
      return;
    }
    const err = validate(at('schema'), body);
    if (err) fail(`body does not match the schema: ${err}; body ${r.body.slice(0, 200)}`);
  } else if (documented.content[media]['x-itemSchema'] !== undefined) {
    for (const [i, line] of r.body.split('\n').filter((l) => l !== '').entries()) {
      let item: unknown;
      try {
        item = JSON.parse(line);
      } catch {
        fail(`line ${i + 1} is not JSON`);
        continue;
      }
      const err = validate(at('x-itemSchema'), item);
      if (err) fail(`line ${i + 1} does not match x-itemSchema: ${err}`);
    }
  } else {
    const err = validate(at('schema'), r.body);
    if (err) fail(`body does not match the schema: ${err}`);
  }
}

// ---- sending ----

function security(o: Operation): Schema[] {
  return (o.op.security ?? doc.security ?? []) as Schema[];
}

function needsAuth(o: Operation): boolean {
  const reqs = security(o);
  return reqs.length > 0 && !reqs.some((r) => Object.keys(r).length === 0);
}

async function send(o: Operation, p: Probe): Promise<LightMyRequestResponse> {
  const qs = new URLSearchParams(p.query ?? {}).toString();
  const url = qs ? `${p.path}?${qs}` : p.path;
  const headers: Record<string, string> = { ...(p.headers ?? {}) };
  const body = p.body;
  if (p.auth) {
    const schemes = Object.keys(security(o)[0] ?? {});
    if (schemes.includes('ownerToken')) headers.authorization = `Bearer ${adminToken}`;
    if (schemes.includes('gatewaySignature')) {
      Object.assign(headers, gateway.headers(o.method, url, body));
    }
    // metalCertificate (mutual TLS) cannot be presented in-process: those operations answer their refusal.
  }
  if (p.contentType !== undefined) headers['content-type'] = p.contentType;
  else if (body === undefined) delete headers['content-type'];
  return app.inject({ method: o.method as 'GET', url, headers, ...(body === undefined ? {} : { payload: body }) });
}

function probesFor(o: Operation): Probe[] {
  const pathParams = ((o.op.parameters ?? []) as Schema[]).filter((p) => p.in === 'path');
  const queryParams = ((o.op.parameters ?? []) as Schema[]).filter((p) => p.in === 'query');
  const fill = (values: Record<string, string>) => o.path.replace(/\{(\w+)\}/g, (_m, n: string) => values[n] ?? '');
  const chosen = chosenParams[`${o.method} ${o.path}`] ?? {};
  const validParams: Record<string, string> = Object.fromEntries(
    pathParams.map((p) => [p.name, chosen[p.name]?.() ?? pathFixture(o.path, p.name) ?? String(sample(p.schema ?? {}, p.name))]),
  );
  const validPath = fill(Object.fromEntries(Object.entries(validParams).map(([k, v]) => [k, encodeURIComponent(v)])));
  const query: Record<string, string> = Object.fromEntries(queryParams.filter((p) => p.required || chosen[p.name] !== undefined).map((p) => [p.name, chosen[p.name]?.() ?? String(sample(p.schema ?? {}, p.name))]));
  const auth = true;
  const probes: Probe[] = [];

  const content: Record<string, Schema> = o.op.requestBody?.content ?? {};
  const media = Object.keys(content)[0];
  let validBody: string | Buffer | undefined;
  let jsonBody: Record<string, unknown> | undefined;
  let bodySchema: Schema | undefined;
  if (media !== undefined) {
    bodySchema = content[media]!.schema ?? {};
    if (essence(media) === 'application/json') {
      const value = sample(bodySchema ?? {}) as Record<string, unknown>;
      for (const [k, v] of Object.entries(chosenOptional[`${o.method} ${o.path}`] ?? {})) value[k] = (v as () => unknown)();
      jsonBody = value;
      validBody = JSON.stringify(value);
    } else if (essence(media) === 'application/suit-envelope+cose') {
      validBody = o.path === '/api/v1/directives' ? fx.directive : fx.envelope;
    } else if (essence(media) === 'application/cose') {
      validBody = fx.p1Report;
    } else {
      validBody = Buffer.from('some bytes');
    }
  }
  probes.push({ label: 'valid', invalid: false, path: validPath, query, body: validBody, contentType: media, auth });
  if (o.method === 'GET') {
    probes.push({ label: 'valid, conditional', invalid: false, path: validPath, query, headers: { 'if-none-match': '*' }, auth });
    probes.push({ label: 'valid, first byte', invalid: false, path: validPath, query, headers: { range: 'bytes=0-0' }, auth });
    probes.push({ label: 'range past the end', invalid: false, path: validPath, query, headers: { range: 'bytes=1000000000-' }, auth });
  }
  if (needsAuth(o)) probes.push({ label: 'no credentials', invalid: true, path: validPath, query, body: validBody, contentType: media, auth: false });

  for (const p of pathParams) {
    const withParam = (v: string) => fill({ ...Object.fromEntries(Object.entries(validParams).map(([k, x]) => [k, encodeURIComponent(x)])), [p.name]: v });
    const base = { query, body: validBody, contentType: media, auth };
    probes.push({ label: `unknown ${p.name}`, invalid: true, path: withParam('nope0'), ...base });
    probes.push({ label: `over-long ${p.name}`, invalid: true, path: withParam('a'.repeat(Math.max(p.schema?.maxLength ?? 0, 100) + 1)), ...base });
    probes.push({ label: `malformed percent-encoding in ${p.name}`, invalid: true, path: withParam('%ff%fe'), ...base });
    probes.push({ label: `NUL in ${p.name}`, invalid: true, path: withParam('a%00b'), ...base });
  }
  for (const p of queryParams) {
    if (p.schema?.maxLength !== undefined) probes.push({ label: `over-long query ${p.name}`, invalid: true, path: validPath, query: { ...query, [p.name]: 'a'.repeat(p.schema.maxLength + 1) }, body: validBody, contentType: media, auth });
  }
  if (queryParams.length > 0) probes.push({ label: 'unknown query parameter', invalid: true, path: validPath, query: { ...query, zzUnknown: '1' }, body: validBody, contentType: media, auth });
  if (queryParams.some((p) => p.required)) probes.push({ label: 'missing required query', invalid: true, path: validPath, query: {}, body: validBody, contentType: media, auth });

  if (jsonBody !== undefined && bodySchema !== undefined) {
    const send = (label: string, value: unknown) => probes.push({ label, invalid: true, path: validPath, query, body: JSON.stringify(value), contentType: media, auth });
    if (bodySchema.additionalProperties === false) send('unknown field', { ...jsonBody, zzUnknown: 1 });
    const props: Record<string, Schema> = bodySchema.properties ?? {};
    const first = ((bodySchema.required as string[] | undefined)?.[0] ?? Object.keys(jsonBody)[0]) as string | undefined;
    if (first !== undefined) {
      send(`wrong type for ${first}`, { ...jsonBody, [first]: wrongType(props[first] ?? {}) });
      if ((bodySchema.required as string[] | undefined)?.includes(first)) {
        const { [first]: _drop, ...rest } = jsonBody;
        send(`missing ${first}`, rest);
      }
    }
    for (const [k, s] of Object.entries(props)) {
      if (s.type === 'string' && typeof s.maxLength === 'number') send(`over-long ${k}`, { ...jsonBody, [k]: 'a'.repeat(s.maxLength + 1) });
    }
    send('not an object', [jsonBody]);
  }
  const bodyMethod = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(o.method);
  if (bodyMethod) {
    const base = { path: validPath, query, auth };
    probes.push({ label: 'malformed JSON', invalid: true, ...base, body: '{"name":', contentType: 'application/json' });
    // A route that documents no body may ignore one; one that takes a body must refuse these.
    const takesBody = media !== undefined;
    probes.push({ label: 'empty JSON body', invalid: takesBody, ...base, body: '', contentType: 'application/json' });
    probes.push({ label: 'XML body', invalid: takesBody, ...base, body: '<x/>', contentType: 'application/xml' });
    if (media !== 'application/octet-stream') probes.push({ label: 'octet-stream body', invalid: takesBody, ...base, body: Buffer.from('abc'), contentType: 'application/octet-stream' });
    probes.push({ label: 'body over 1 MiB', invalid: takesBody, ...base, body: JSON.stringify({ zz: 'x'.repeat(1_100_000) }), contentType: 'application/json' });
  }
  return probes;
}

/** Deletions last, the deepest path first, so the objects other operations use exist while they run. */
function order(ops: Operation[]): Operation[] {
  const rank = (o: Operation) => (o.method === 'DELETE' ? 1 : 0);
  return [...ops].sort((a, b) => rank(a) - rank(b) || (rank(a) === 1 ? b.path.split('/').length - a.path.split('/').length : 0));
}

describe('D5 OpenAPI: the document states every answer the master gives', () => {
  it('walks every operation with valid and invalid inputs; each answer is documented (status, content type, body schema) and sent as the handler made it', async () => {
    const r = await app.inject({ url: '/openapi.json' });
    expect(r.statusCode).toBe(200);
    doc = r.json();
    ajv.addSchema(doc, 'openapi');
    const ops: Operation[] = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, Schema>)) {
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'put', 'post', 'patch', 'delete'].includes(method)) continue;
        ops.push({ method: method.toUpperCase(), path, op, pointer: pointerTo('paths', path, method) });
      }
    }
    expect(ops.length).toBeGreaterThan(50);
    for (const o of order(ops)) {
      for (const p of probesFor(o)) {
      const answer = await send(o, p);
      checkAnswer(o, p, answer);
    }
    }

    const cannotSucceedHere = (o: Operation) =>
      HTTPS_ONLY.some((h) => o.path.startsWith(h.prefix)) || (needsAuth(o) && security(o).every((req) => Object.keys(req).includes('metalCertificate')));
    const neverSucceeded = ops.filter((o) => !cannotSucceedHere(o) && !succeeded.has(`${o.method} ${o.path}`)).map((o) => `${o.method} ${o.path}`);
    const dropped = mismatches.map((m) => `${m.method} ${m.url} → ${m.status}: sent ${JSON.stringify(m.sent).slice(0, 300)} but the schema let through ${JSON.stringify(m.serialized).slice(0, 300)}`);
    expect({ failures, neverSucceeded, dropped }).toEqual({ failures: [], neverSucceeded: [], dropped: [] });
  }, 120_000);
});
