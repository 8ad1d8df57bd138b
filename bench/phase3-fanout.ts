/**
 * bench/phase3-fanout: time from a Glaze set on a Phase 3 Space to every subscribed metal holding
 * the notification (T15; issue 9 goal: 10,000 metals in ≤ 5 s on this machine).
 *
 *   node --import tsx bench/phase3-fanout.ts      # TIPS_BENCH_METALS (default 10000), TIPS_BENCH_CONNECT (parallel handshakes, default 200), TIPS_BENCH_SETUP_PARALLEL (enrollments at once, default 4)
 *
 * The master's services on a throw-away SQLite, the embedded broker (aedes behind TLS, the same
 * `startEmbeddedBroker` tips-master runs), N metals in one Phase 3 Space, each enrolled through the
 * enrollment service (a CSR naming it, a certificate recorded like EST does; all share one P-256
 * key to keep setup short — the broker checks each certificate, not the key's uniqueness). A child
 * process (the other core) opens N real TLS connections with those client certificates, speaks
 * MQTT 3.1.1 (CONNECT, SUBSCRIBE to its own topic at QoS 1, PUBACK), and reports when every
 * subscription is acknowledged and when the last notification arrived. The parent then sets the
 * Space's Glaze through the spaces service — the path `tips space set` takes — and measures.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect, type TLSSocket } from 'node:tls';

const METALS = Number(process.env.TIPS_BENCH_METALS ?? 10_000);
const PARALLEL = Number(process.env.TIPS_BENCH_CONNECT ?? 200);
const SETUP_PARALLEL = Number(process.env.TIPS_BENCH_SETUP_PARALLEL ?? 4);

interface ClientPlan {
  port: number;
  caPem: string;
  keyPem: string;
  metals: { id: string; certPem: string }[];
}

const str = (s: string) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
};
function packet(type: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 128;
    len.push(d);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...len]), body]);
}

/** The child: N MQTT-over-TLS subscribers with real client certificates. */
async function clients(plan: ClientPlan): Promise<void> {
  let subscribed = 0;
  let received = 0;
  const sockets: TLSSocket[] = [];
  const one = (m: { id: string; certPem: string }) =>
    new Promise<void>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: plan.port, ca: plan.caPem, cert: m.certPem, key: plan.keyPem, servername: 'localhost' }, () => {
        // Keep-alive 0: connecting 10,000 metals on a loaded machine takes minutes, and these clients send no PINGREQ.
        s.write(packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 2, 0, 0]), str(`${m.id}-${randomBytes(2).toString('hex')}`)])));
      });
      sockets.push(s);
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          if (buf.length < 2) return;
          let len = 0;
          let mul = 1;
          let i = 1;
          for (; i < buf.length; i++) {
            len += (buf[i]! & 127) * mul;
            mul *= 128;
            if ((buf[i]! & 128) === 0) break;
          }
          if (i >= buf.length || buf.length < i + 1 + len) return;
          const type = buf[0]! >> 4;
          const body = buf.subarray(i + 1, i + 1 + len);
          buf = buf.subarray(i + 1 + len);
          if (type === 2) {
            if (body[1] !== 0) reject(new Error(`CONNACK refused ${body[1]} for ${m.id}`));
            // Like any MQTT client, subscribe once the broker accepted the connection.
            else s.write(packet(0x82, Buffer.concat([Buffer.from([0, 1]), str(`tips/metal/${m.id}`), Buffer.from([1])])));
          } else if (type === 9) {
            if (body[2] === 0x80) reject(new Error(`subscription refused for ${m.id}`));
            subscribed++;
            resolve();
          } else if (type === 3) {
            const topicLen = (body[0]! << 8) | body[1]!;
            const pid = body.subarray(2 + topicLen, 4 + topicLen);
            s.write(packet(0x40, Buffer.from(pid)));
            received++;
            if (received === plan.metals.length) process.stdout.write(`done ${Date.now()}\n`);
          }
        }
      });
      s.on('error', reject);
      s.on('close', () => {
        if (subscribed > 0 && received < plan.metals.length) process.stdout.write(`lost ${m.id}\n`);
      });
    });
  // The sockets alone must keep this process alive while it waits; a timer makes sure it does.
  setInterval(() => {}, 60_000);
  const t0 = Date.now();
  for (let i = 0; i < plan.metals.length; i += PARALLEL) await Promise.all(plan.metals.slice(i, i + PARALLEL).map(one));
  process.stdout.write(`ready ${subscribed} ${Date.now() - t0}\n`);
}

async function main(): Promise<void> {
  const { buildApp } = await import('../apps/master/src/app.ts');
  const { FsBlobStore } = await import('../apps/master/src/blob/fs-blob-store.ts');
  const { openDatabase } = await import('../apps/master/src/db/database.ts');
  const { issueServerCertificate, caPem } = await import('../apps/master/src/domains/enrollment/ca.ts');
  const { startEmbeddedBroker } = await import('../apps/master/src/domains/notifications/broker.ts');
  const { generateKeyPair, privateKeyToPem, x509, parseCertificate } = await import('@tips/trust');
  const { systemRandom } = await import('../apps/master/src/ports.ts');

  // The database lives in memory-backed /dev/shm when there is one: setting up 10,000 enrolled metals
  // is ~40,000 small transactions, and their fsyncs (not measured here) would dominate the run.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tips-bench-fanout-'));
  try {
    const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
    const { app, services: s } = await buildApp({ db, blobs: await FsBlobStore.open(join(dir, 'glazes')) });
    const admin = await s.owners.ensureAdmin();
    const owner = (await s.owners.createOwnerAsAdmin(admin!.owner, 'bench')).owner;
    await s.spaces.create(owner.id, { name: 'apps', phase: 3 });
    const keys = await generateKeyPair();
    const keyPem = await privateKeyToPem(keys.privateKey);
    const metals: ClientPlan['metals'] = [];
    const t0 = performance.now();
    const prepare = async (i: number) => {
      const m = await s.metals.create(owner.id, { name: `m${i}`, interfaces: [{ name: 'eth0', mac: `02:${[(i >> 16) & 255, (i >> 8) & 255, i & 255, 0x33, 0x01].map((b) => b.toString(16).padStart(2, '0')).join(':')}`, type: 'ethernet' }] });
      await s.spaces.addMember(owner.id, 'apps', { metal: m.id, interfaces: ['eth0'] });
      const { secret, value } = await s.enrollment.createSecret(owner.id, { metal: m.id });
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: `CN=${m.id}`,
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `urn:tips:metal:${m.id}` }])],
      });
      const { der } = await s.enrollment.enroll({ id: secret.id, secret: value! }, new Uint8Array(csr.rawData));
      metals[i] = { id: m.id, certPem: parseCertificate(der).toString('pem') };
    };
    // Batches run side by side: the signatures (CSR, certificate) use both cores; the writes are SQLite's.
    for (let i = 0; i < METALS; i += SETUP_PARALLEL) {
      await Promise.all(Array.from({ length: Math.min(SETUP_PARALLEL, METALS - i) }, (_, k) => prepare(i + k)));
      if (Math.floor((i + SETUP_PARALLEL) / 500) > Math.floor(i / 500)) process.stderr.write(`  ${i + SETUP_PARALLEL} metals enrolled (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    }
    process.stdout.write(`prepared ${METALS} enrolled metals in one Phase 3 Space in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    const ca = await s.enrollment.ca();
    const server = await issueServerCertificate(ca, { now: new Date(), random: systemRandom, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const pems = caPem(ca);
    const bus = await startEmbeddedBroker({
      host: '127.0.0.1',
      port: 0,
      publicHost: 'localhost',
      certPem: server.chainPem,
      keyPem: server.keyPem,
      clientCaPem: pems.rootPem + pems.intermediatePem,
      authenticateMetal: (peer) => s.enrollment.authenticateMetal(peer),
      log: { info: () => {}, warn: (o, msg) => process.stderr.write(`${msg} ${JSON.stringify(o)}\n`) },
    });
    s.notifications.useBus(bus);
    const glaze = await s.glazes.upload(owner.id, { name: 'web', spaces: ['apps'], version: '1.4' }, Readable.from([new Uint8Array(Buffer.from('web 1.4'))]));

    const planFile = join(dir, 'plan.json');
    writeFileSync(planFile, JSON.stringify({ port: bus.port, caPem: pems.rootPem, keyPem, metals } satisfies ClientPlan));
    const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, 'clients', planFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const waitFor = async (re: RegExp) => {
      while (!re.test(out)) {
        if (child.exitCode !== null) throw new Error(`clients exited ${child.exitCode}: ${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return re.exec(out)!;
    };
    const ready = await waitFor(/ready (\d+) (\d+)/);
    process.stdout.write(`${ready[1]} metals connected over TLS and subscribed in ${(Number(ready[2]) / 1000).toFixed(1)} s; broker counts ${bus.connectedMetals()}\n`);
    const cpu0 = process.cpuUsage();
    const start = Date.now();
    await s.spaces.update(owner.id, 'apps', { glaze: 'web@1.4' });
    const answered = Date.now();
    const sent = await s.updates.lastFanOut;
    const published = Date.now();
    const done = Number((await waitFor(/done (\d+)/))[1]);
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(
      [
        `space set answered after ${answered - start} ms`,
        `${sent} notifications published (QoS 1) after ${published - start} ms`,
        `all ${METALS} received after ${done - start} ms (goal ≤ 5000 ms): ${done - start <= 5000 ? 'pass' : 'FAIL'}`,
        `master CPU during the fan-out: ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms; glaze ${glaze.id}`,
      ].join('\n') + '\n',
    );
    child.kill();
    await bus.close();
    await app.close();
    await db.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'clients') {
  clients(JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as ClientPlan).catch((e) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  });
} else {
  await main();
}
