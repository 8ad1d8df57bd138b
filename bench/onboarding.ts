/**
 * bench/onboarding: zero-touch onboardings per second at one master (issue 11), software keys,
 * vouchers with a chain of 3 entries (manufacturer → distributor → reseller → owner), through EST.
 *
 *   node --import tsx bench/onboarding.ts     # TIPS_BENCH_DEVICES (300), TIPS_BENCH_CONCURRENCY (16)
 *
 * One master in this process (SQLite, the real app over `app.inject`: routing, schema validation,
 * JSON): the vouchers are imported in bulk (each chain verified: 3 entry signatures), then every
 * device runs TO2 hello → proof → prove (metal made in a Phase 1 and a Phase 2 Space, enrollment
 * secret, setup sealed to the device) → EST simpleenroll through the enrollment service (CSR
 * verified, certificate signed and recorded; the TLS handshake of a real EST request is not in it).
 * The devices' own work (their proofs, opening the setup, their CSRs) runs in this process too, so
 * it is timed apart and left out of the master's cost.
 *
 * Reported: onboardings/s of the whole run (devices and master sharing this process's one thread),
 * the master's milliseconds per onboarding broken down — signature work inside TO2, database work
 * inside TO2, the rest of TO2 (HTTP, JSON, validation), EST, the voucher import — and, measured in
 * the same run with node:crypto on the same kinds of keys, the raw cost of the signature operations
 * an onboarding cannot avoid: 5 ECDSA P-256 verifications (3 voucher entries, the device proof, the
 * CSR), 3 signatures (owner proof, sealed setup, certificate) and one ECDH.
 */
import { createECDH, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVoucher, decodeVoucher, deviceFactsDigest, extendVoucher, guidToString, makeSetupKey, openSetup, parseDeviceSetup, rendezvousFromUrls, signProof, verifyVoucherChain } from '@tips/onboarding';
import { buildApp } from '../apps/master/src/app.ts';
import { FsBlobStore } from '../apps/master/src/blob/fs-blob-store.ts';
import { openDatabase } from '../apps/master/src/db/database.ts';
import { makeCsr } from '../apps/master/src/tls/testing.ts';

const DEVICES = Number(process.env.TIPS_BENCH_DEVICES ?? 300);
const CONCURRENCY = Number(process.env.TIPS_BENCH_CONCURRENCY ?? 16);
const GOAL = 100;
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const ms = (n: number) => `${n.toFixed(2)} ms`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tips-bench-onboarding-'));
  const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
  const { app, services } = await buildApp({ db, blobs: await FsBlobStore.open(join(dir, 'glazes')), publicUrls: () => ({ url: 'http://master.bench:8080', tlsUrl: 'https://master.bench:8443' }), logger: false });
  const admin = await services.owners.ensureAdmin();
  const auth = { authorization: `Bearer ${admin!.token}` };
  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
    const r = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
    if (r.statusCode >= 300) throw new Error(`${method} ${url}: ${r.statusCode} ${r.body}`);
    return r.json();
  };
  try {
    const ownerKey = await call('POST', '/api/v1/onboarding-keys', { name: 'fleet' }, auth);
    const p1 = await call('POST', '/api/v1/spaces', { name: 'bench-p1', phase: 1 }, auth);
    const p2 = await call('POST', '/api/v1/spaces', { name: 'bench-p2', phase: 2 }, auth);
    await call('POST', '/api/v1/bootstrap/profiles', { name: 'bench', match: { vendor: 'acme' }, spaces: [p1.id, p2.id] }, auth);

    // The factory and two hops (device work, not timed as master cost).
    const mfr = p256();
    const hops = [p256(), p256()];
    const ownerPublic = createPublicKey(ownerKey.publicKey);
    const devices = Array.from({ length: DEVICES }, (_, i) => {
      const key = p256();
      const { voucher } = createVoucher({ guid: new Uint8Array(randomBytes(16)), deviceInfo: 'vendor=acme;class=sensor', rendezvous: rendezvousFromUrls(['http://rv.bench:8080']), manufacturerKey: mfr.privateKey, deviceKey: key.publicKey, hmacSecret: new Uint8Array(randomBytes(32)) });
      let v = extendVoucher(voucher, mfr.privateKey, hops[0]!.publicKey);
      v = extendVoucher(v, hops[0]!.privateKey, hops[1]!.publicKey);
      v = extendVoucher(v, hops[1]!.privateKey, ownerPublic);
      const mac = `02:be:${[(i >> 16) & 255, (i >> 8) & 255, i & 255, 7].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      return { key, voucher: v, guidBytes: decodeVoucher(v).header.guid, mac };
    });
    if (decodeVoucher(devices[0]!.voucher).entries.length !== 3) throw new Error('expected 3 voucher entries');

    // Two phases in one run: the first half of the devices onboard CONCURRENCY at a time (throughput);
    // the second half one at a time, so each timed span is this onboarding's work alone (breakdown).
    const stages = { signatures: 0, database: 0 };
    let measuring = false;
    services.bootstrap.useTiming((stage, t) => {
      if (measuring) stages[stage] += t;
    });
    let to2Ms = 0;
    let estMs = 0;
    let deviceMs = 0;
    // CPU time of this process (user + system, µs → ms) in the master's spans: what the load of the
    // shared machine cannot bend (one thread; the one-at-a-time phase runs nothing else meanwhile).
    const cpu = { to2: 0, est: 0, import: 0 };
    const cpuNow = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };

    const t0 = performance.now();
    let importMs = 0;
    for (let at = 0; at < DEVICES; at += 1000) {
      const s = performance.now();
      const c = cpuNow();
      await call('POST', '/api/v1/vouchers', { vouchers: devices.slice(at, at + 1000).map((d) => b64(d.voucher)) }, auth);
      cpu.import += cpuNow() - c;
      importMs += performance.now() - s;
    }
    const half = Math.floor(DEVICES / 2);
    let next = 0;
    let end = half;
    const worker = async () => {
      for (let i = next++; i < end; i = next++) {
        const d = devices[i]!;
        const guid = guidToString(d.guidBytes);
        const facts = { interfaces: [{ name: 'eth0', mac: d.mac, type: 'ethernet' as const, pxe: true }], ramMb: 1024, arch: 'aarch64' };
        const add = (x: number) => (measuring ? x : 0);
        let s = performance.now();
        let c = cpuNow();
        const hello = await call('POST', '/api/onboarding/v1/hello', { guid, nonce: b64(randomBytes(16)), device: facts });
        to2Ms += add(performance.now() - s);
        cpu.to2 += add(cpuNow() - c);
        s = performance.now();
        const nonce = new Uint8Array(Buffer.from(hello.nonce, 'base64'));
        const setupKey = makeSetupKey();
        const proof = signProof(d.key.privateKey, 'tips-to2-device', [d.guidBytes, nonce, deviceFactsDigest(facts), setupKey.publicRaw]);
        deviceMs += add(performance.now() - s);
        s = performance.now();
        c = cpuNow();
        const done = await call('POST', '/api/onboarding/v1/prove', { guid, nonce: hello.nonce, proof: b64(proof) });
        to2Ms += add(performance.now() - s);
        cpu.to2 += add(cpuNow() - c);
        s = performance.now();
        const setup = parseDeviceSetup(openSetup(new Uint8Array(Buffer.from(done.setup, 'base64')), verifyVoucherChain(d.voucher).currentOwner, d.guidBytes, nonce, setupKey));
        const csr = await makeCsr({ uris: [`urn:tips:metal:${setup.metalId}`] });
        deviceMs += add(performance.now() - s);
        s = performance.now();
        c = cpuNow();
        await services.enrollment.enroll({ id: setup.enrollment.secretId, secret: setup.enrollment.secret }, csr.der);
        estMs += add(performance.now() - s);
        cpu.est += add(cpuNow() - c);
      }
    };
    const t1 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const wall = performance.now() - t1;
    measuring = true;
    end = DEVICES;
    next = half;
    const t2 = performance.now();
    await worker();
    const sequentialWall = performance.now() - t2;
    void t0;

    const enrolled = (await call('GET', '/api/v1/onboardings?status=enrolled&limit=1000', undefined, auth)).items.length;
    if (enrolled !== Math.min(DEVICES, 999)) throw new Error(`expected every device enrolled, ${enrolled} are`);

    // Raw cost of the signature operations, same kinds of keys, same run.
    const k = p256();
    const data = randomBytes(200);
    const sig = sign('sha256', data, k.privateKey);
    const N = 2000;
    let s = performance.now();
    for (let i = 0; i < N; i++) verify('sha256', data, k.publicKey, sig);
    const verifyMs = (performance.now() - s) / N;
    s = performance.now();
    for (let i = 0; i < N; i++) sign('sha256', data, k.privateKey);
    const signMs = (performance.now() - s) / N;
    s = performance.now();
    const peer = createECDH('prime256v1');
    peer.generateKeys();
    for (let i = 0; i < N; i++) {
      const e = createECDH('prime256v1');
      e.generateKeys();
      e.computeSecret(peer.getPublicKey());
    }
    const ecdhMs = (performance.now() - s) / N;
    const raw = 5 * verifyMs + 3 * signMs + ecdhMs;

    const measured = DEVICES - half;
    const per = (x: number) => x / measured;
    const to2Other = to2Ms - stages.signatures - stages.database;
    const masterPer = per(to2Ms + estMs) + importMs / DEVICES;
    const masterCpu = per(cpu.to2 + cpu.est) + cpu.import / DEVICES;
    const lines = [
      `onboarding bench: ${DEVICES} devices, concurrency ${CONCURRENCY}, vouchers of 3 entries, SQLite, ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)}`,
      `throughput, ${half} devices ${CONCURRENCY} at a time (devices and master share one thread): ${(half / (wall / 1000)).toFixed(1)} onboardings/s (goal ≥ ${GOAL}/s)`,
      `one at a time, ${measured} devices: ${(measured / (sequentialWall / 1000)).toFixed(1)} onboardings/s; the breakdown below is from these`,
      `master per onboarding: ${ms(masterPer)} → ${(1000 / masterPer).toFixed(0)} onboardings/s for one core of master work`,
      `  TO2 signatures (owner proof, device proof, seal)  ${ms(per(stages.signatures))}`,
      `  TO2 database (records, nonces, metal, Spaces, secret) ${ms(per(stages.database))}`,
      `  TO2 rest (HTTP inject, JSON, validation, profile match) ${ms(per(to2Other))}`,
      `  EST (CSR verify, certificate, database)            ${ms(per(estMs))}`,
      `  voucher import (3-entry chain each, bulk)           ${ms(importMs / DEVICES)}`,
      `device side (not in the master figure): ${ms(per(deviceMs))}`,
      `master CPU per onboarding (process user+system, load-proof): ${ms(masterCpu)} → ${(1000 / masterCpu).toFixed(0)} onboardings/s per core — TO2 ${ms(per(cpu.to2))}, EST ${ms(per(cpu.est))}, import ${ms(cpu.import / DEVICES)}`,
      `raw crypto in this run: ECDSA P-256 verify ${ms(verifyMs)}, sign ${ms(signMs)}, ECDH+keygen ${ms(ecdhMs)}; the 5 verifies + 3 signs + 1 ECDH an onboarding needs: ${ms(raw)} (${((raw / masterPer) * 100).toFixed(0)} % of the master's wall time, ${((raw / masterCpu) * 100).toFixed(0)} % of its CPU)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await app.close();
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
