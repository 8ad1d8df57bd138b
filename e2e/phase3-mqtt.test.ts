// Phase 3 push over MQTT with peers we did not write: openssl makes the metal keys and CSRs, curl
// enrolls them and speaks the metal API, mosquitto_sub subscribes with a metal's certificate — to the
// master's embedded broker, and to a real Mosquitto broker the master publishes to (--mqtt-url).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Mosquitto, startMosquitto } from '../apps/master/src/bus/test-servers.ts';
import { type RunningMaster, startMaster, tips } from './helpers.ts';

const ADMIN = `tips_${randomBytes(24).toString('base64url')}`;

interface Lab {
  work: string;
  master: RunningMaster;
  httpsUrl: string;
  env: NodeJS.ProcessEnv;
}

function must(lab: Lab, cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: lab.work, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
function curl(lab: Lab, path: string, args: string[]) {
  const out = join(lab.work, `c-${randomBytes(4).toString('hex')}`);
  const r = spawnSync('curl', ['-sS', '--cacert', 'ca/root.pem', '-o', out, '-w', '%{http_code}', ...args, `${lab.httpsUrl}${path}`], { cwd: lab.work, encoding: 'utf8', timeout: 60_000 });
  return { status: Number(r.stdout), body: readFileSync(out, 'utf8') };
}
function cli(lab: Lab, args: string[]) {
  const r = tips(args, lab.env);
  if (r.status !== 0) throw new Error(`tips ${args.join(' ')} → ${r.status}\n${r.stderr}`);
  return args.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
}

/** Declares a metal, makes its key and CSR with openssl, enrolls it with curl; returns its TIPS ID. */
function enrolledMetal(lab: Lab, name: string, mac: string): string {
  const metal = cli(lab, ['metal', 'create', '--name', name, '--iface', `eth0=${mac},ethernet,pxe`, '--json']);
  const secret = cli(lab, ['enrollment', 'secret', 'create', '--metal', name, '--json']);
  must(lab, 'openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-subj', `/CN=${metal.id}`, '-addext', `subjectAltName=URI:urn:tips:metal:${metal.id}`, '-outform', 'DER', '-out', `${name}.der`]);
  must(lab, 'openssl', ['base64', '-in', `${name}.der`, '-out', `${name}.b64`]);
  const r = curl(lab, '/.well-known/est/simpleenroll', ['-u', `${secret.id}:${secret.secret}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${name}.b64`]);
  if (r.status !== 200) throw new Error(`enroll ${name}: ${r.status} ${r.body}`);
  writeFileSync(join(lab.work, `${name}.p7.b64`), r.body);
  must(lab, 'openssl', ['base64', '-d', '-in', `${name}.p7.b64`, '-out', `${name}.p7`]);
  must(lab, 'openssl', ['pkcs7', '-inform', 'DER', '-in', `${name}.p7`, '-print_certs', '-out', `${name}.pem`]);
  return metal.id;
}

async function startLab(prefix: string, args: string[]): Promise<Lab> {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const master = await startMaster(['--data-dir', join(work, 'data'), '--ca-dir', join(work, 'ca'), ...args], { TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN });
  const httpsUrl = /TLS listening on (\S+)/.exec(master.output())![1]!;
  return { work, master, httpsUrl, env: { TIPS_URL: master.url, TIPS_TOKEN: ADMIN, TIPS_CONFIG: join(work, 'no-config.json') } };
}

interface Subscriber {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

/** mosquitto_sub with a metal's certificate; `-d` prints the SUBACK, so we know when it listens. */
function subscribe(lab: Lab, url: string, metal: string, topic: string, extra: string[] = []): Subscriber {
  const u = new URL(url);
  // stdbuf: mosquitto_sub's stdout is a pipe here, which C stdio would buffer until exit.
  const proc = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', '-h', u.hostname, '-p', u.port, '--cafile', 'ca/root.pem', '--cert', `${metal}.pem`, '--key', `${metal}.key`, '-i', `${metal}-${randomBytes(3).toString('hex')}`, '-q', '1', '-t', topic, '-C', '1', '-W', '90', ...extra], {
    cwd: lab.work,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out: () => out, exited };
}

async function until(what: string, ok: () => boolean, ms = 60_000, show: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${show()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const payloadOf = (s: Subscriber) => {
  const line = s.out().split('\n').find((l) => l.startsWith('{'));
  return line ? JSON.parse(line) : undefined;
};

/** Both brokers get the same test: a Glaze set on a Phase 3 Space reaches each member on its own topic only. */
async function fanOutTest(lab: Lab, brokerUrl: string, tag: string) {
  const a = enrolledMetal(lab, `${tag}-a`, `02:e3:${tag === 'emb' ? '01' : '02'}:00:00:0a`);
  const b = enrolledMetal(lab, `${tag}-b`, `02:e3:${tag === 'emb' ? '01' : '02'}:00:00:0b`);
  cli(lab, ['space', 'create', '--name', `${tag}-apps`, '--phase', '3', '--json']);
  for (const m of [a, b]) cli(lab, ['space', 'add', `${tag}-apps`, m, '--iface', 'eth0', '--json']);
  writeFileSync(join(lab.work, 'web.img'), 'web 1.4');
  const glaze = cli(lab, ['glaze', 'push', join(lab.work, 'web.img'), '--name', `${tag}-web`, '--version', '1.4', '--handler', 'systemd-service', '--space', `${tag}-apps`, '--no-progress', '--json']);
  expect(glaze).toMatchObject({ handler: 'systemd-service', version: '1.4' });

  const own = subscribe(lab, brokerUrl, `${tag}-a`, `tips/metal/${a}`);
  const ownB = subscribe(lab, brokerUrl, `${tag}-b`, `tips/metal/${b}`);
  // pi-a's certificate on pi-b's topic: the broker must not deliver pi-b's notification to it.
  const spy = subscribe(lab, brokerUrl, `${tag}-a`, `tips/metal/${b}`, ['-W', '15']);
  await until('both subscriptions', () => /SUBACK/.test(own.out()) && /SUBACK/.test(ownB.out()), 60_000, () => `${own.out()}\n${ownB.out()}\n${lab.master.output()}`);
  await until('the spy SUBACK or refusal', () => /SUBACK|denied|Error/i.test(spy.out()));
  // A metal may not publish: pi-a tries to forge a notification on pi-b's topic.
  spawnSync('mosquitto_pub', ['-h', new URL(brokerUrl).hostname, '-p', new URL(brokerUrl).port, '--cafile', 'ca/root.pem', '--cert', `${tag}-a.pem`, '--key', `${tag}-a.key`, '-q', '1', '-t', `tips/metal/${b}`, '-m', '{"forged":true}'], { cwd: lab.work, timeout: 20_000 });

  cli(lab, ['space', 'set', `${tag}-apps`, '--glaze', `${tag}-web@1.4`, '--json']);
  expect(await own.exited).toBe(0);
  expect(await ownB.exited).toBe(0);
  const expected = { glazes: [glaze.id], spaceId: expect.stringMatching(/^spc_/), reason: 'glaze_set', notBefore: null };
  expect(payloadOf(own)).toEqual(expected);
  expect(payloadOf(ownB)).toEqual(expected);
  await spy.exited;
  expect(spy.out()).not.toContain('glaze_set');
  expect(spy.out()).not.toContain('forged');
  return { a, b, spy };
}

describe('T15 S9 S10 Phase 3 notifications on the embedded broker (TLS, ACL by client certificate)', () => {
  let lab: Lab;
  let brokerUrl: string;
  beforeAll(async () => {
    lab = await startLab('tips-p3-emb-', ['--tls-port', '0', '--reauth-period', '10']);
    brokerUrl = /TIPS master MQTT (mqtts:\S+)/.exec(lab.master.output())![1]!;
  });
  afterAll(async () => {
    await lab?.master.stop();
    if (lab?.work) rmSync(lab.work, { recursive: true, force: true });
  });

  it("each metal's notification reaches only its own topic; another metal's topic is refused; metals cannot publish", async () => {
    const { spy } = await fanOutTest(lab, brokerUrl, 'emb');
    expect(spy.out()).toMatch(/denied/i);
    const metrics = await (await fetch(`${lab.master.url}/metrics`)).text();
    expect(metrics).toMatch(/tips_master_notifications_published_total\{reason="glaze_set",result="ok"\} 2/);
  });

  it('refuses a client without a certificate of ours', async () => {
    const u = new URL(brokerUrl);
    const r = spawnSync('mosquitto_sub', ['-h', u.hostname, '-p', u.port, '--cafile', 'ca/root.pem', '-t', 'tips/metal/#', '-C', '1', '-W', '10'], { cwd: lab.work, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
  });

  it('the work answer names the broker and topic; a token older than --reauth-period is refused (reauth_required)', async () => {
    const a = cli(lab, ['metal', 'show', 'emb-a', '--json']).id;
    const t = curl(lab, '/api/metal/v1/tokens/issue', ['--cert', 'emb-a.pem', '--key', 'emb-a.key', '-X', 'POST']);
    expect(t.status, t.body).toBe(201);
    const cwt = JSON.parse(t.body).cwt;
    const w = curl(lab, '/api/metal/v1/work?phase=3', ['--cert', 'emb-a.pem', '--key', 'emb-a.key', '-H', `Authorization: PoP ${cwt}`]);
    expect(w.status, w.body).toBe(200);
    expect(JSON.parse(w.body).notify).toEqual({ url: brokerUrl, topic: `tips/metal/${a}` });
    expect(JSON.parse(w.body).reauthAfterSeconds).toBe(10);
    await new Promise((r) => setTimeout(r, 11_500));
    const stale = curl(lab, '/api/metal/v1/work?phase=3', ['--cert', 'emb-a.pem', '--key', 'emb-a.key', '-H', `Authorization: PoP ${cwt}`]);
    expect(stale.status).toBe(401);
    expect(JSON.parse(stale.body).error.code).toBe('reauth_required');
    const events = cli(lab, ['metal', 'tamper-events', 'emb-a', '--all', '--json']);
    expect(events.map((e: { code: string }) => e.code)).toContain('reauth_required');
  }, 60_000);

  it('S14: retiring a metal closes its open MQTT connection at once, and it cannot connect again', async () => {
    const b = cli(lab, ['metal', 'show', 'emb-b', '--json']).id;
    const sub = subscribe(lab, brokerUrl, 'emb-b', `tips/metal/${b}`, ['-W', '60']);
    await until('the SUBACK', () => /SUBACK/.test(sub.out()), 60_000, sub.out);
    const before = sub.out().length;
    cli(lab, ['metal', 'retire', 'emb-b', '--json']);
    // Closed by the broker: mosquitto_sub sees the connection go (and its reconnect is refused), long before -W 60.
    const code = await Promise.race([sub.exited, new Promise<'open'>((r) => setTimeout(() => r('open'), 15_000))]);
    if (code === 'open') sub.proc.kill();
    expect(code, sub.out().slice(before)).not.toBe('open');
    expect(code).not.toBe(0);
    expect(sub.out()).not.toContain('glaze_set');
    // The master's log line may reach us a moment after the subscriber saw the connection go.
    await until('the master logged the closed connection', () => /mqtt connection closed: metal access revoked/.test(lab.master.output()), 10_000);
    const again = spawnSync('mosquitto_sub', ['-h', new URL(brokerUrl).hostname, '-p', new URL(brokerUrl).port, '--cafile', 'ca/root.pem', '--cert', 'emb-b.pem', '--key', 'emb-b.key', '-t', `tips/metal/${b}`, '-C', '1', '-W', '10'], { cwd: lab.work, encoding: 'utf8', timeout: 30_000 });
    expect(again.status).not.toBe(0);
  }, 60_000);
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('T15 S10 the same against an external Mosquitto broker (--mqtt-url)', () => {
  let lab: Lab;
  let mosquitto: ChildProcess | undefined;
  let brokerUrl: string;
  let log = '';
  beforeAll(async () => {
    const port = await freePort();
    brokerUrl = `mqtts://localhost:${port}`;
    lab = await startLab('tips-p3-ext-', ['--tls-port', '0', '--mqtt-url', brokerUrl]);
    const conf = /Mosquitto configuration: (\S+)\)/.exec(lab.master.output())![1]!;
    // The master wrote the broker's configuration; as root, Mosquitto would drop to its own user,
    // which cannot read the CA directory (0700): the test keeps it as the user running the test.
    const testConf = join(lab.work, 'mosquitto-test.conf');
    writeFileSync(testConf, `${process.getuid?.() === 0 ? 'user root\n' : ''}persistence false\nlog_dest stdout\n${readFileSync(conf, 'utf8')}`);
    mosquitto = spawn('stdbuf', ['-oL', '/usr/sbin/mosquitto', '-c', testConf], { stdio: ['ignore', 'pipe', 'pipe'] });
    mosquitto.stdout!.on('data', (d) => {
      log += d;
    });
    mosquitto.stderr!.on('data', (d) => {
      log += d;
    });
    await until('mosquitto listening', () => /Opening ipv[46] listen socket on port/.test(log) || mosquitto!.exitCode !== null, 30_000, () => log);
    if (mosquitto.exitCode !== null) throw new Error(`mosquitto exited: ${log}`);
    // The master's client (CN tips-master) connects by itself, retrying until the broker is up.
    await until('the master connected to mosquitto', () => /New client connected .* as tips-master/.test(log) || /u'tips-master'/.test(log), 30_000);
  });
  afterAll(async () => {
    mosquitto?.kill('SIGTERM');
    await lab?.master.stop();
    if (lab?.work) rmSync(lab.work, { recursive: true, force: true });
  });

  it("each metal's notification reaches only its own topic; Mosquitto's ACL keeps a metal off another's topic and from publishing", async () => {
    const acl = readFileSync(join(lab.work, 'ca', 'mosquitto', 'acl'), 'utf8');
    expect(acl).toContain('pattern read tips/metal/%u');
    // Mosquitto 2.0 grants the SUBACK but never delivers what the ACL denies (checked in fanOutTest),
    // and drops a metal's PUBLISH (pi-b's subscriber would otherwise have read the forged message first).
    await fanOutTest(lab, brokerUrl, 'ext');
  });
});

describe('T15 T2 B5 across replicas: a metal on replica B’s embedded broker hears a change made through replica A (bus: a Mosquitto)', () => {
  let lab: Lab;
  let replicaB: RunningMaster;
  let bus: Mosquitto;
  let admin: pg.Client;
  let dbName: string;
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: inject('pgUrl') });
    await admin.connect();
    dbName = `p3_replicas_${randomBytes(5).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${dbName}`);
    const url = new URL(inject('pgUrl'));
    url.pathname = `/${dbName}`;
    bus = await startMosquitto();
    const shared = ['--tls-port', '0', '--database-url', url.toString(), '--bus', bus.url];
    lab = await startLab('tips-p3-rep-', shared);
    // Replica B: its own embedded broker, the same database, CA and bus.
    replicaB = await startMaster(['--data-dir', join(lab.work, 'data-b'), '--ca-dir', join(lab.work, 'ca'), ...shared], { TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN });
    for (const m of [lab.master, replicaB]) {
      const deadline = Date.now() + 20_000;
      while ((await (await fetch(`${m.url}/readyz`)).json()).bus !== 'up') {
        if (Date.now() > deadline) throw new Error(`bus not up: ${m.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  afterAll(async () => {
    await replicaB?.stop();
    await lab?.master.stop();
    await bus?.stop();
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin?.end();
    if (lab?.work) rmSync(lab.work, { recursive: true, force: true });
  });

  it('the Glaze is set through replica A; the metals subscribed at replica B’s broker get their notification, and only their own', async () => {
    const brokerB = /TIPS master MQTT (mqtts:\S+)/.exec(replicaB.output())![1]!;
    expect(brokerB).not.toBe(/TIPS master MQTT (mqtts:\S+)/.exec(lab.master.output())![1]);
    // Enrolled, declared and set through A (lab); subscribed at B.
    await fanOutTest(lab, brokerB, 'rep');
    const metrics = await (await fetch(`${replicaB.url}/metrics`)).text();
    expect(metrics).toMatch(/tips_master_bus_messages_total\{direction="in",topic="tips.metal.notify"\} [1-9]/);
    expect(metrics).toMatch(/tips_master_bus_up\{bus="mqtt"\} 1/);
  });
});
