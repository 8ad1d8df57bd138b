/**
 * bench/lwm2m-scale: N simulated LwM2M devices registered and observed on one master (issue 12).
 *
 *   node --import tsx bench/lwm2m-scale.ts      # TIPS_BENCH_DEVICES (default 10000), _CONCURRENCY (default 64)
 *
 * The master's services on a fresh SQLite data dir; its CoAP endpoint as tips-master builds it (DTLS
 * 1.2 PSK via @tips/dtls, the constrained domain, the LwM2M routes). Each device is the testbed's
 * Lwm2mSim (its own CoAP code) on its own DTLS client socket and PSK (issued by the constrained
 * domain). Phases, timed one after the other: DTLS handshake + Register; the server observes
 * /3/0/9 on every device (Observe, SenML-CBOR); one registration Update from every device. Memory:
 * heap and RSS growth across the run divided by N — devices and master share this process, so the
 * figure is an upper bound of the master's per-device cost (the split is estimated below).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDtlsClient, createDtlsServer } from '@tips/dtls';
import { Lwm2mSim } from '@tips/testbed';
import pino from 'pino';
import { createServices } from '../apps/master/src/app.ts';
import { FsBlobStore } from '../apps/master/src/blob/fs-blob-store.ts';
import { openDatabase } from '../apps/master/src/db/database.ts';
import { startConstrained } from '../apps/master/src/domains/constrained/coap.ts';
import { installLwm2mCoap } from '../apps/master/src/domains/devicemgmt/coap.ts';

const N = Number(process.env.TIPS_BENCH_DEVICES ?? 10_000);
const C = Number(process.env.TIPS_BENCH_CONCURRENCY ?? 64);
const logger = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'tips-lwm2m-bench-'));

async function pool<T>(items: T[], n: number, fn: (t: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
const services = createServices({ db, blobs: await FsBlobStore.open(join(dir, 'glazes')), lwm2m: { graceSeconds: 60 } });
const admin = (await services.owners.ensureAdmin())!;
const owner = admin.owner;
const transport = await createDtlsServer({ host: '127.0.0.1', port: 0, logger, psk: (id) => services.constrained.pskLookup(id), maxSessions: N + 100, maxHandshakesInFlight: C * 2 });
const port = transport.address().port;
const ep = startConstrained({ transport, ...services, logger });
const channel = installLwm2mCoap(ep.coap, services.devices, { principal: (p) => services.constrained.principal(p), baseUri: () => `coaps://127.0.0.1:${port}` });

console.log(`preparing ${N} metals and PSKs…`);
const creds: { id: string; identity: string; key: Uint8Array }[] = [];
for (let i = 0; i < N; i++) {
  const m = await services.metals.create(owner.id, { name: `dev-${i}`, interfaces: [{ name: 'eth0', mac: `02:01:${[(i >> 16) & 255, (i >> 8) & 255, i & 255, 1].map((x) => x.toString(16).padStart(2, '0')).join(':')}`, type: 'ethernet' }] });
  const { credential, key } = await services.constrained.issuePsk(owner.id, m.id);
  creds.push({ id: m.id, identity: credential.identity, key: new Uint8Array(Buffer.from(key, 'hex')) });
}
global.gc?.();
const before = process.memoryUsage();
const sims: Lwm2mSim[] = [];

let t0 = performance.now();
await pool(creds, C, async (c) => {
  const link = await createDtlsClient({ host: '127.0.0.1', port, psk: { identity: c.identity, key: c.key } });
  const sim = new Lwm2mSim({ endpoint: c.id, link, lifetime: 3600, ackTimeoutMs: 5000 });
  sims.push(sim);
  const code = await sim.register();
  if (code !== '2.01') throw new Error(`register ${c.id}: ${code}`);
});
const registerS = (performance.now() - t0) / 1000;

t0 = performance.now();
let notified = 0;
await pool(creds, C, async (c) => {
  await channel.observe(c.id as never, [3, 0, 9], () => {
    notified++;
  });
});
const observeS = (performance.now() - t0) / 1000;

t0 = performance.now();
await pool(sims, C, async (s) => {
  const code = await s.update();
  if (code !== '2.04') throw new Error(`update: ${code}`);
});
const updateS = (performance.now() - t0) / 1000;
global.gc?.();
const after = process.memoryUsage();
const counts = await services.devices.counts();

console.log(JSON.stringify({ devices: N, concurrency: C, registered: counts.registered, online: counts.online, observed: notified }));
console.log(`handshake + register: ${registerS.toFixed(1)} s  (${(N / registerS).toFixed(0)} devices/s)`);
console.log(`observe /3/0/9:       ${observeS.toFixed(1)} s  (${(N / observeS).toFixed(0)} observations/s)`);
console.log(`registration updates: ${updateS.toFixed(1)} s  (${(N / updateS).toFixed(0)} updates/s)`);
console.log(`heap +${mib(after.heapUsed - before.heapUsed)} MiB, RSS +${mib(after.rss - before.rss)} MiB: ${((after.heapUsed - before.heapUsed) / N / 1024).toFixed(1)} KiB heap, ${((after.rss - before.rss) / N / 1024).toFixed(1)} KiB RSS per device (devices and master together)`);

for (const s of sims) await s.close().catch(() => {});
await ep.close();
await db.destroy();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
