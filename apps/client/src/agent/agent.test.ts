// The agent against a real HTTPS server with mTLS, written here to the shape of contract C (the
// master's side lands separately; e2e/client-phase2.test.ts runs the same flow against tips-master).
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindGlaze, buildEnvelope, type CborValue, classIdFrom, coseSign1Verify, decodeCbor, generateSigningKey, importKey, uuidToString, vendorIdFromDomain } from '@tips/suit';
import { createIntermediateCa, createRootCa, encodeTrustList, TRUST_LIST_COMPONENT, issueCertificate, privateKeyToPem, serialFrom, generateKeyPair } from '@tips/trust';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/config.ts';
import { activate, newGeneration, writeCertificate, writeKey } from '../identity/store.ts';
import { rollbackArchive } from '../install/archive.ts';
import { installHandlers } from '../install/registry.ts';
import { Agent } from './agent.ts';

const METAL = 'mtl_0123456789abcdefghjkmnpqrs';
const OTHER = 'mtl_zzzzzzzzzzzzzzzzzzzzzzzzzz';
const VENDOR = vendorIdFromDomain('acme.example');
const CLASS = classIdFrom(VENDOR, 'pi4');
const operator = generateSigningKey('ed25519');
const stranger = generateSigningKey('ed25519');
const log = pino({ level: 'silent' });

let pki: { caPem: string; chainPem: string; serverCert: string; serverKey: string; metalCert: string; metalKey: string; otherCert: string; otherKey: string };

async function leaf(ca: Awaited<ReturnType<typeof createIntermediateCa>>, id: { kind: 'metal' | 'master'; id: string }, usage: 'client' | 'server') {
  const keys = await generateKeyPair();
  const now = Date.now();
  const cert = await issueCertificate(ca, {
    identity: id,
    publicKey: keys.publicKey,
    serial: serialFrom(webcrypto.getRandomValues(new Uint8Array(16))),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3 * 86_400_000),
    usage,
    ...(usage === 'server' ? { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] } : {}),
  });
  return { cert: `${cert.toString('pem')}\n`, key: await privateKeyToPem(keys.privateKey) };
}

beforeAll(async () => {
  const now = Date.now();
  const opts = (cn: string) => ({ commonName: cn, notBefore: new Date(now - 60_000), notAfter: new Date(now + 30 * 86_400_000), serial: serialFrom(webcrypto.getRandomValues(new Uint8Array(16))) });
  const root = await createRootCa(opts('Test root'));
  const inter = await createIntermediateCa(root, opts('Test intermediate'));
  const server = await leaf(inter, { kind: 'master', id: '' }, 'server');
  const metal = await leaf(inter, { kind: 'metal', id: METAL }, 'client');
  const other = await leaf(inter, { kind: 'metal', id: OTHER }, 'client');
  pki = {
    caPem: `${root.cert.toString('pem')}\n`,
    chainPem: `${root.cert.toString('pem')}\n${inter.cert.toString('pem')}\n`,
    serverCert: server.cert + `${inter.cert.toString('pem')}\n`,
    serverKey: server.key,
    metalCert: metal.cert,
    metalKey: metal.key,
    otherCert: other.cert,
    otherKey: other.key,
  };
});

interface Glaze {
  id: string;
  name: string;
  version: string;
  payload: Buffer;
  manifest: Uint8Array;
  handler: string;
  spaceId: string;
  /** Bytes the server really sends (a tampered mirror). */
  served?: Buffer;
}

function tarball(dir: string, name: string, content: string): Buffer {
  const src = join(dir, `src-${name}`);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'hello.txt'), content);
  execFileSync('tar', ['-czf', join(dir, `${name}.tgz`), '-C', src, '.']);
  return readFileSync(join(dir, `${name}.tgz`));
}

function glaze(dir: string, o: { id: string; name: string; version: string; seq: number; key?: typeof operator; vendor?: Uint8Array; klass?: Uint8Array; component?: string; spaceId?: string }): Glaze {
  const payload = tarball(dir, o.id, `${o.name} ${o.version}`);
  const sha = createHash('sha256').update(payload).digest('hex');
  const manifest = bindGlaze({
    payloadSha256: sha,
    payloadSize: payload.length,
    uri: `/api/metal/v1/glazes/${o.id}/blob`,
    vendorId: o.vendor ?? VENDOR,
    classId: o.klass ?? CLASS,
    component: o.component ?? o.name,
    sequenceNumber: o.seq,
    key: (o.key ?? operator).key,
  });
  return { id: o.id, name: o.name, version: o.version, payload, manifest, handler: 'archive', spaceId: o.spaceId ?? `spc_${o.name}` };
}

/** A contract-C server: records every request, can be told to misbehave. */
class FakeMaster {
  server!: Server;
  url = '';
  glazes: Glaze[] = [];
  calls: string[] = [];
  profiles: unknown[] = [];
  reports: Buffer[] = [];
  tokens = new Map<string, string>();
  cutBlobOnce = new Set<string>();
  refuseWork: { status: number; code: string } | undefined;
  reauthOnce = false;
  /** Phase 3 Spaces' Glazes and the rollback requests GET /work?phase=3 lists. */
  glazes3: Glaze[] = [];
  rollbacks3: { eventId: string; spaceId: string; glazeId: string; requestedAt: string }[] = [];
  trustList: Uint8Array | undefined;
  directives: { id: string; kind: string; envelope: string }[] = [];

  async start() {
    this.server = createServer({ cert: pki.serverCert, key: pki.serverKey, ca: pki.chainPem, requestCert: true, rejectUnauthorized: true }, (req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `https://localhost:${(this.server.address() as { port: number }).port}`;
  }
  stop() {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  }
  private metalOf(req: IncomingMessage): string {
    const cert = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
    return /urn:tips:metal:(mtl_\w+)/.exec(cert.subjectaltname ?? '')?.[1] ?? '';
  }
  private json(res: ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
  private async handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const path = (req.url ?? '').replace('/api/metal/v1', '');
    this.calls.push(`${req.method} ${path}`);
    const metal = this.metalOf(req);
    if (path === '/tokens/issue') {
      const t = `tok_${metal}_${this.calls.length}`;
      this.tokens.set(t, metal);
      return this.json(res, 201, { cwt: t, expiresAt: new Date(Date.now() + 300_000).toISOString() });
    }
    const token = /^PoP (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || this.tokens.get(token) !== metal) return this.json(res, 401, { error: { code: 'unauthenticated', message: 'token' } });
    if (this.reauthOnce) {
      this.reauthOnce = false;
      this.tokens.delete(token);
      return this.json(res, 401, { error: { code: 'reauth_required', message: 'again' } });
    }
    if (req.method === 'PUT' && path === '/profile') {
      this.profiles.push(JSON.parse(body.toString('utf8')));
      return res.writeHead(204).end();
    }
    if (path === '/trust-list') return res.writeHead(200, { 'content-type': 'application/cbor' }).end(this.trustList ?? encodeTrustList({ version: 1, operators: [{ name: 'ops', publicKey: operator.key.publicKey! }], updateServers: [] }));
    if (path === '/directives') return this.json(res, 200, { directives: this.directives });
    const work = /^\/work\?phase=([23])$/.exec(path);
    if (work) {
      if (this.refuseWork) return this.json(res, this.refuseWork.status, { error: { code: this.refuseWork.code, message: 'no' } });
      const phase = Number(work[1]);
      return this.json(res, 200, {
        rollbacks: phase === 3 ? this.rollbacks3 : [],
        items: (phase === 2 ? this.glazes : this.glazes3).map((g) => ({
          spaceId: g.spaceId,
          spaceName: g.spaceId.slice(4),
          phase,
          glaze: { id: g.id, name: g.name, version: g.version, size: g.payload.length, sha256: createHash('sha256').update(g.payload).digest('hex'), handler: g.handler },
          manifest: Buffer.from(g.manifest).toString('base64'),
          blobPath: `/api/metal/v1/glazes/${g.id}/blob`,
        })),
        notify: null,
        reauthAfterSeconds: 120,
      });
    }
    const blob = /^\/glazes\/([^/]+)\/blob$/.exec(path);
    if (blob) {
      const g = [...this.glazes, ...this.glazes3].find((x) => x.id === blob[1]);
      if (!g) return this.json(res, 404, { error: { code: 'glaze_not_found', message: '' } });
      const bytes = g.served ?? g.payload;
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const from = range ? Number(range[1]) : 0;
      if (range) res.writeHead(206, { 'content-range': `bytes ${from}-${bytes.length - 1}/${bytes.length}`, 'content-length': bytes.length - from });
      else res.writeHead(200, { 'content-length': bytes.length });
      if (this.cutBlobOnce.delete(g.id)) {
        res.write(bytes.subarray(from, from + Math.floor(bytes.length / 2)));
        setTimeout(() => res.destroy(), 50);
        return;
      }
      return res.end(bytes.subarray(from));
    }
    if (req.method === 'POST' && path === '/reports') {
      this.reports.push(body);
      return res.writeHead(204).end();
    }
    return this.json(res, 404, { error: { code: 'not_found', message: path } });
  }
}

let dir: string;
let master: FakeMaster;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tips-client-agent-'));
  master = new FakeMaster();
  await master.start();
});
afterEach(async () => {
  await master.stop();
  rmSync(dir, { recursive: true, force: true });
});

function agentFor(cert = pki.metalCert, key = pki.metalKey, tipsId = METAL, extra: Partial<ConstructorParameters<typeof Agent>[0]> = {}) {
  const state = join(dir, 'state');
  writeFileSync(join(dir, 'ca.pem'), pki.caPem);
  const config = parseConfig({
    masterUrl: master.url,
    estUrl: `${master.url}/.well-known/est`,
    caFile: join(dir, 'ca.pem'),
    tipsId,
    enrollmentFile: join(dir, 'enrollment.json'),
    stateDir: state,
    vendorId: uuidToString(VENDOR),
    classId: uuidToString(CLASS),
  });
  if (!existsSync(join(state, 'identity', 'current'))) {
    const g = newGeneration(state);
    writeKey(g, key);
    writeCertificate(g, cert);
    activate(state, g);
  }
  return new Agent({ config, stateDir: state, log, handlers: installHandlers(), renewBeforeMs: 0, ...extra });
}

function reports() {
  const metalPub = importKey(createPublicKey(pki.metalKey));
  return master.reports.map((r) => {
    const v = coseSign1Verify(new Uint8Array(r), [metalPub]);
    return Object.fromEntries(decodeCbor(v.payload) as Map<string, CborValue>);
  });
}

describe('T14 S4 S5 S7 Phase 2 pull: verify, download, install, report', () => {
  it('installs every item of its Spaces, reports each signed by the metal key, registers the profile after the installs', async () => {
    master.glazes = [glaze(dir, { id: 'glz_a', name: 'web', version: '1.0', seq: 10 }), glaze(dir, { id: 'glz_b', name: 'agent', version: '2.0', seq: 20 })];
    const agent = agentFor();
    await agent.recover();
    await agent.cycle();
    expect(readFileSync(join(dir, 'state', 'apps', 'web', 'current', 'hello.txt'), 'utf8')).toBe('web 1.0');
    expect(readFileSync(join(dir, 'state', 'apps', 'agent', 'current', 'hello.txt'), 'utf8')).toBe('agent 2.0');
    expect(reports().map((r) => [r.glazeId, r.spaceId, r.result, r.reason, r.sequence])).toEqual([
      ['glz_a', 'spc_web', 'installed', null, 10],
      ['glz_b', 'spc_agent', 'installed', null, 20],
    ]);
    const last = master.profiles.at(-1) as { glazes: unknown[]; vendorId: string; interfaces: unknown[]; protocols: string[] };
    expect(last.glazes).toEqual([
      { id: 'glz_a', name: 'web', version: '1.0', sequence: 10 },
      { id: 'glz_b', name: 'agent', version: '2.0', sequence: 20 },
    ]);
    expect(last.vendorId).toBe(uuidToString(VENDOR));
    expect(last.protocols).toContain('https');
    // A second cycle installs nothing again and reports nothing again.
    const before = master.reports.length;
    await agent.cycle();
    expect(master.reports.length).toBe(before);
    expect(master.calls.filter((c) => c.includes('/blob')).length).toBe(2);
  });

  it('refuses a rollback, an unlisted signer, another vendor and another class — reported, nothing downloaded or installed', async () => {
    const agent = agentFor();
    master.glazes = [glaze(dir, { id: 'glz_new', name: 'web', version: '2.0', seq: 50 })];
    await agent.cycle();
    master.glazes = [
      glaze(dir, { id: 'glz_old', name: 'web', version: '1.0', seq: 40 }),
      glaze(dir, { id: 'glz_evil', name: 'tool', version: '1.0', seq: 60, key: stranger }),
      glaze(dir, { id: 'glz_vendor', name: 'v', version: '1.0', seq: 60, vendor: vendorIdFromDomain('other.example') }),
      glaze(dir, { id: 'glz_class', name: 'c', version: '1.0', seq: 60, klass: classIdFrom(VENDOR, 'pi5') }),
    ];
    await agent.cycle();
    expect(reports().slice(1).map((r) => [r.glazeId, r.result, r.reason])).toEqual([
      ['glz_old', 'failed', 'suit_rollback'],
      ['glz_evil', 'failed', 'suit_signature_invalid'], // no key of the trust list verifies it (no kid: cannot tell "unknown" from "forged")
      ['glz_vendor', 'failed', 'suit_vendor_mismatch'],
      ['glz_class', 'failed', 'suit_class_mismatch'],
    ]);
    expect(readlinkSync(join(dir, 'state', 'apps', 'web', 'current'))).toBe('2.0');
    for (const n of ['tool', 'v', 'c']) expect(existsSync(join(dir, 'state', 'apps', n))).toBe(false);
    expect(master.calls.filter((c) => c.includes('/blob'))).toEqual(['GET /glazes/glz_new/blob']);
    // Refusals are reported once, not on every pull.
    await agent.cycle();
    expect(master.reports.length).toBe(5);
  });

  it('a payload whose digest is not the manifest digest is refused after download and never installed', async () => {
    const g = glaze(dir, { id: 'glz_t', name: 'web', version: '1.0', seq: 5 });
    g.served = Buffer.from(g.payload);
    g.served[g.served.length - 1] = g.served[g.served.length - 1]! ^ 0xff;
    master.glazes = [g];
    await agentFor().cycle();
    expect(reports().map((r) => r.reason)).toEqual(['suit_digest_mismatch']);
    expect(existsSync(join(dir, 'state', 'apps', 'web'))).toBe(false);
  });

  it('a download cut half-way resumes with a Range request from what is on disk', async () => {
    master.glazes = [glaze(dir, { id: 'glz_r', name: 'web', version: '1.0', seq: 5 })];
    master.cutBlobOnce.add('glz_r');
    await agentFor().cycle();
    expect(reports().map((r) => r.result)).toEqual(['installed']);
    expect(master.calls.filter((c) => c.includes('/blob')).length).toBe(2);
  });

  it('reauth_required: a fresh token and the same request again', async () => {
    master.glazes = [];
    const agent = agentFor();
    await agent.cycle();
    const issued = master.calls.filter((c) => c.endsWith('/tokens/issue')).length;
    master.reauthOnce = true;
    await agent.cycle();
    expect(master.calls.filter((c) => c.endsWith('/tokens/issue')).length).toBe(issued + 1);
    expect(agent.state.status().stopped).toBeNull();
  });

  it('an authorization failure stops Phase 2: recorded, and no further pull until a restart', async () => {
    master.refuseWork = { status: 403, code: 'forbidden' };
    const agent = agentFor();
    await expect(agent.cycle()).rejects.toMatchObject({ code: 'forbidden' });
    expect(agent.state.status().stopped?.code).toBe('forbidden');
    expect(agent.state.status().lastError?.code).toBe('forbidden');
    const pulls = master.calls.filter((c) => c.startsWith('GET /work')).length;
    master.refuseWork = undefined;
    await agent.cycle();
    expect(master.calls.filter((c) => c.startsWith('GET /work')).length).toBe(pulls);
  });
});

describe('T15 Phase 3 pull and rollback requests', () => {
  it('installs the Phase 3 Glazes after Phase 2; a rollback request goes back to the kept version, is reported once, and the Glaze is not reinstalled', async () => {
    const agent = agentFor();
    const v1 = glaze(dir, { id: 'glz_w1', name: 'web', version: '1.3', seq: 13, spaceId: 'spc_apps' });
    const v2 = glaze(dir, { id: 'glz_w2', name: 'web', version: '1.4', seq: 14, spaceId: 'spc_apps' });
    master.glazes3 = [v1];
    await agent.cycle();
    master.glazes3 = [v2];
    await agent.cycle();
    expect(master.calls.filter((c) => c.startsWith('GET /work'))).toEqual(['GET /work?phase=2', 'GET /work?phase=3', 'GET /work?phase=2', 'GET /work?phase=3']);
    expect(readlinkSync(join(dir, 'state', 'apps', 'web', 'current'))).toBe('1.4');
    master.rollbacks3 = [{ eventId: 'evt_1', spaceId: 'spc_apps', glazeId: 'glz_w2', requestedAt: new Date().toISOString() }];
    await agent.cycle();
    expect(readlinkSync(join(dir, 'state', 'apps', 'web', 'current'))).toBe('1.3');
    expect(readFileSync(join(dir, 'state', 'apps', 'web', 'current', 'hello.txt'), 'utf8')).toBe('web 1.3');
    expect(reports().map((r) => [r.glazeId, r.result, r.reason, r.sequence])).toEqual([
      ['glz_w1', 'installed', null, 13],
      ['glz_w2', 'installed', null, 14],
      ['glz_w2', 'rolled_back', 'rollback_requested', 14],
    ]);
    expect(agent.state.installed().map((g) => `${g.name}@${g.version}`)).toEqual(['web@1.3']);
    expect((master.profiles.at(-1) as { glazes: { version: string }[] }).glazes.map((g) => g.version)).toEqual(['1.3']);
    // The master still lists the request (its report may not have landed) and still offers 1.4:
    // neither the rollback nor the install happens again.
    await agent.cycle();
    expect(readlinkSync(join(dir, 'state', 'apps', 'web', 'current'))).toBe('1.3');
    expect(master.reports.length).toBe(3);
    expect(master.calls.filter((c) => c.includes('/blob'))).toEqual(['GET /glazes/glz_w1/blob', 'GET /glazes/glz_w2/blob']);
  });

  it('a kill between the handler going back and the bookkeeping: the next pull finishes the bookkeeping and never rolls back twice', async () => {
    const agent = agentFor();
    master.glazes3 = [glaze(dir, { id: 'glz_k1', name: 'web', version: '1.0', seq: 1, spaceId: 'spc_apps' })];
    await agent.cycle();
    master.glazes3 = [glaze(dir, { id: 'glz_k2', name: 'web', version: '2.0', seq: 2, spaceId: 'spc_apps' })];
    await agent.cycle();
    // What a kill right after the switch leaves: the request written down, current on 1.0, nothing else.
    const entry = agent.state.installed().find((g) => g.id === 'glz_k2')!;
    agent.state.setRollbackInflight({ key: 'evt_k/spc_apps/glz_k2', startedAt: new Date().toISOString(), entry });
    rollbackArchive(join(dir, 'state'), 'web', log);
    expect(readlinkSync(join(dir, 'state', 'apps', 'web', 'current'))).toBe('1.0');
    master.rollbacks3 = [{ eventId: 'evt_k', spaceId: 'spc_apps', glazeId: 'glz_k2', requestedAt: new Date().toISOString() }];
    await agentFor().cycle();
    // Still 1.0 (a second switch would have gone back to 2.0), reported once, bookkeeping done.
    expect(readlinkSync(join(dir, 'state', 'apps', 'web', 'current'))).toBe('1.0');
    expect(reports().slice(2).map((r) => [r.glazeId, r.result, r.reason])).toEqual([['glz_k2', 'rolled_back', 'rollback_requested']]);
    expect(agent.state.installed().map((g) => `${g.name}@${g.version}`)).toEqual(['web@1.0']);
    expect(agent.state.rollbackInflight()).toBeUndefined();
  });

  it('a rollback with nothing kept to go back to is reported failed with a rollback_* reason, and nothing changes', async () => {
    const agent = agentFor();
    master.glazes3 = [glaze(dir, { id: 'glz_only', name: 'web', version: '1.0', seq: 1, spaceId: 'spc_apps' })];
    await agent.cycle();
    master.rollbacks3 = [
      { eventId: 'evt_2', spaceId: 'spc_apps', glazeId: 'glz_only', requestedAt: new Date().toISOString() },
      { eventId: 'evt_3', spaceId: 'spc_apps', glazeId: 'glz_never', requestedAt: new Date().toISOString() },
    ];
    await agent.cycle();
    expect(reports().slice(1).map((r) => [r.glazeId, r.result, r.reason])).toEqual([
      ['glz_only', 'failed', 'rollback_unavailable'],
      ['glz_never', 'failed', 'rollback_not_installed'],
    ]);
    expect(readlinkSync(join(dir, 'state', 'apps', 'web', 'current'))).toBe('1.0');
    expect(agent.state.installed().map((g) => g.id)).toEqual(['glz_only']);
  });

  it('S10: a dead first server fails over to the live one for every call of the cycle', async () => {
    const { createServer: tcp } = await import('node:net');
    const s = tcp();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const dead = `https://localhost:${(s.address() as { port: number }).port}`;
    await new Promise<void>((r) => s.close(() => r()));
    const { ServerList } = await import('./servers.ts');
    master.glazes = [glaze(dir, { id: 'glz_s', name: 'web', version: '1.0', seq: 1 })];
    const agent = agentFor(pki.metalCert, pki.metalKey, METAL, { servers: new ServerList([dead, master.url], { sleep: async () => {} }) });
    await agent.cycle();
    expect(reports().map((r) => r.result)).toEqual(['installed']);
  });
});

const trustListOf = (version: number, ...keys: (typeof operator)[]) => encodeTrustList({ version, operators: keys.map((k, i) => ({ name: `op${i}`, publicKey: k.key.publicKey! })), updateServers: [] });
const signedTrustList = (by: typeof operator | undefined, list: Uint8Array, seq: number) =>
  buildEnvelope({ vendorDomain: 'tips.directive', classInfo: 'trust-list', component: TRUST_LIST_COMPONENT, sequenceNumber: seq, payload: list, delivery: { mode: 'integrated' }, ...(by ? { key: by.key } : {}) });

describe('S5 the trust list changes only by a signed update; the master alone may only narrow it', () => {
  it('a wider list served unsigned is not adopted: a Glaze signed by the added key is refused, the kept list stays', async () => {
    const agent = agentFor();
    await agent.cycle();
    const v1 = readFileSync(join(dir, 'state', 'trust-list.cbor'));
    // The master (or someone who took it over) adds its own key in a higher version, unsigned.
    master.trustList = trustListOf(2, operator, stranger);
    master.glazes = [glaze(dir, { id: 'glz_evil', name: 'tool', version: '1.0', seq: 60, key: stranger })];
    await agent.cycle();
    expect(readFileSync(join(dir, 'state', 'trust-list.cbor'))).toEqual(v1);
    expect(reports().map((r) => [r.glazeId, r.result, r.reason])).toEqual([['glz_evil', 'failed', 'suit_signature_invalid']]);
    expect(existsSync(join(dir, 'state', 'apps', 'tool'))).toBe(false);
  });

  it('a narrower list (a revoked operator) is adopted unsigned; an older one is not', async () => {
    master.trustList = trustListOf(3, operator, stranger);
    const agent = agentFor();
    await agent.cycle();
    master.trustList = trustListOf(4, operator);
    await agent.cycle();
    expect(Buffer.from(readFileSync(join(dir, 'state', 'trust-list.cbor')))).toEqual(Buffer.from(trustListOf(4, operator)));
    master.trustList = trustListOf(2, operator);
    await agent.cycle();
    expect(Buffer.from(readFileSync(join(dir, 'state', 'trust-list.cbor')))).toEqual(Buffer.from(trustListOf(4, operator)));
  });

  it('a wider list signed by a kept operator is adopted; unsigned, stranger-signed or a replayed one are refused and change nothing', async () => {
    const agent = agentFor();
    await agent.cycle();
    const v1 = Buffer.from(readFileSync(join(dir, 'state', 'trust-list.cbor')));
    const wider = trustListOf(7, operator, stranger);
    const enc = (b: Uint8Array) => Buffer.from(b).toString('base64');
    master.directives = [
      { id: 'dir_unsigned', kind: 'trust-list', envelope: enc(signedTrustList(undefined, wider, 7)) },
      { id: 'dir_stranger', kind: 'trust-list', envelope: enc(signedTrustList(stranger, wider, 7)) },
    ];
    await agent.cycle();
    expect(Buffer.from(readFileSync(join(dir, 'state', 'trust-list.cbor')))).toEqual(v1);
    expect(agent.state.refused().map((r) => [r.glazeId, r.reason])).toEqual([
      ['dir_unsigned', 'suit_unsigned'],
      ['dir_stranger', 'suit_signature_invalid'],
    ]);
    master.directives = [{ id: 'dir_ok', kind: 'trust-list', envelope: enc(signedTrustList(operator, wider, 7)) }];
    master.glazes = [glaze(dir, { id: 'glz_s', name: 'tool', version: '1.0', seq: 60, key: stranger })];
    await agent.cycle();
    expect(Buffer.from(readFileSync(join(dir, 'state', 'trust-list.cbor')))).toEqual(Buffer.from(wider));
    expect(reports().map((r) => [r.glazeId, r.result])).toEqual([['glz_s', 'installed']]);
    // The same update again, or an older signed list, changes nothing and is not refused loudly.
    master.directives = [{ id: 'dir_old', kind: 'trust-list', envelope: enc(signedTrustList(operator, trustListOf(6, operator), 6)) }];
    await agent.cycle();
    expect(Buffer.from(readFileSync(join(dir, 'state', 'trust-list.cbor')))).toEqual(Buffer.from(wider));
  });
});

describe('S14 retirement: 403 metal_retired wipes the credentials and stops the agent for good', () => {
  it('key, certificate and enrollment secret are destroyed, the retirement recorded; no request is made after', async () => {
    const agent = agentFor();
    await agent.cycle();
    writeFileSync(join(dir, 'enrollment.json'), JSON.stringify({ secretId: `ens_${'0'.repeat(26)}`, secret: `est_${'a'.repeat(43)}` }), { mode: 0o600 });
    const gen = join(dir, 'state', 'identity', readlinkSync(join(dir, 'state', 'identity', 'current')));
    master.refuseWork = { status: 403, code: 'metal_retired' };
    await expect(agent.cycle()).rejects.toMatchObject({ code: 'forbidden', remoteCode: 'metal_retired' });
    expect(existsSync(join(gen, 'key.pem'))).toBe(false);
    expect(existsSync(gen)).toBe(false);
    expect(existsSync(join(dir, 'state', 'identity', 'current'))).toBe(false);
    expect(existsSync(join(dir, 'enrollment.json'))).toBe(false);
    expect(agent.retired).toBe(true);
    expect(agent.state.status().stopped?.code).toBe('metal_retired');
    const calls = master.calls.length;
    master.refuseWork = undefined;
    await expect(agent.cycle()).rejects.toMatchObject({ remoteCode: 'metal_retired' });
    expect(master.calls.length).toBe(calls);
  });

  it('another 403 (blocked) stops Phase 2 but wipes nothing', async () => {
    master.refuseWork = { status: 403, code: 'metal_blocked' };
    const agent = agentFor();
    await expect(agent.cycle()).rejects.toMatchObject({ code: 'forbidden' });
    expect(existsSync(join(dir, 'state', 'identity', 'current'))).toBe(true);
    expect(agent.retired).toBe(false);
  });
});
