// Issue 9, Phase 3 with the real parts: a long-running `tips-client run` (the bundle, under Debian's
// Node 18 when it can be fetched) against a real tips-master — its embedded MQTT broker for push, an
// external broker that is not there for pull — the `tips` CLI for the operator, and real files for
// the tamper watch. Nothing in the client is faked: it subscribes with its enrolled certificate,
// pulls, verifies, installs through the archive handler, reports, rolls back.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classIdFrom, uuidToString, vendorIdFromDomain } from '@tips/suit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientTestMaster, startClientTestMaster, writeClientFiles } from './client-master.ts';
import { debianNode18 } from './client-node18.ts';
import { ROOT, tips } from './helpers.ts';

const BUNDLE = join(ROOT, 'apps/client/dist/tips-client.cjs');
const VENDOR = uuidToString(vendorIdFromDomain('acme.example'));
const CLASS = uuidToString(classIdFrom(vendorIdFromDomain('acme.example'), 'pi4'));

let node: string[] = [process.execPath];
let warnedNode = false;
function nodeForMetal(): string[] {
  const n18 = debianNode18();
  if (n18) return n18.argv;
  if (!warnedNode) console.warn("tips-client e2e: Debian Node 18 unavailable; running the bundle with this machine's node");
  warnedNode = true;
  return [process.execPath];
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms: number, show: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${show().slice(-6000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One metal's files and its running agent. */
interface RunningClient {
  proc: ChildProcess;
  log: () => string;
  events: (name: string) => Record<string, unknown>[];
  stop: () => Promise<void>;
}

class Lab {
  work = mkdtempSync(join(tmpdir(), 'tips-client-phase3-e2e-'));
  m!: ClientTestMaster;
  env: NodeJS.ProcessEnv = {};
  clients: RunningClient[] = [];
  metals: Record<string, { id: string; config: string; state: string }> = {};

  async start(extraArgs: string[]) {
    this.m = await startClientTestMaster(this.work, extraArgs);
    this.env = { TIPS_URL: this.m.master.url, TIPS_TOKEN: this.m.admin, TIPS_CONFIG: join(this.work, 'no-config.json') };
    this.cli(['key', 'create', '--out', join(this.work, 'ops.pem'), '--register', 'ops', '--json']);
  }
  async stop() {
    for (const c of this.clients) await c.stop();
    await this.m?.master.stop();
    rmSync(this.work, { recursive: true, force: true });
  }
  cli(args: string[]) {
    const r = tips(args, this.env);
    if (r.status !== 0) throw new Error(`tips ${args.join(' ')} → ${r.status}\n${r.stderr}`);
    return args.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
  }
  client(args: string[]) {
    const r = spawnSync(node[0]!, [...node.slice(1), BUNDLE, ...args], { encoding: 'utf8', timeout: 180_000 });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
  /**
   * A signed archive Glaze named `name` (a tarball holding hello.txt) allowed in `space`. Glaze names
   * are unique per owner, and the archive handler keeps versions per Glaze name: a Glaze already
   * called `name` is renamed to `<name>-<its version>` first, so the new one is the next version.
   */
  glaze(space: string, name: string, version: string, seq: number) {
    const old = (this.cli(['glaze', 'list', '--json']) as { items?: { name: string; version: string }[] } | { name: string; version: string }[]);
    const list = Array.isArray(old) ? old : (old.items ?? []);
    const same = list.find((g) => g.name === name);
    if (same) this.cli(['glaze', 'update', name, '--name', `${name}-${same.version}`, '--json']);
    const src = join(this.work, `src-${name}-${version}`);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'hello.txt'), `${name} ${version}`);
    const tgz = join(this.work, `${name}-${version}.tgz`);
    const t = spawnSync('tar', ['-czf', tgz, '-C', src, '.']);
    if (t.status !== 0) throw new Error('tar failed');
    return this.cli([
      'glaze', 'push', tgz, '--name', name, '--version', version, '--handler', 'archive', '--space', space, '--sign-key', join(this.work, 'ops.pem'),
      '--vendor-domain', 'acme.example', '--class', 'pi4', '--component', name, '--seq', String(seq), '--no-progress', '--json',
    ]) as { id: string };
  }
  async metal(name: string, mac: string, space: string) {
    const created = this.cli(['metal', 'create', '--name', name, '--iface', `eth0=${mac},ethernet,pxe`, '--json']);
    const secret = this.cli(['enrollment', 'secret', 'create', '--metal', name, '--json']);
    const state = join(this.work, `state-${name}`);
    const config = writeClientFiles(join(this.work, `etc-${name}`), this.m, { id: created.id, vendorId: VENDOR, classId: CLASS }, { id: secret.id, secret: secret.secret }, state);
    this.metals[name] = { id: created.id, config, state };
    const r = this.client(['enroll', '--config', config]);
    expect(r.status, r.stderr).toBe(0);
    this.cli(['space', 'add', space, name, '--iface', 'eth0', '--json']);
    return this.metals[name]!;
  }
  /** `tips-client run` as a long-running process; its log lines (pino JSON on stderr) are kept. */
  run(name: string, args: string[]): RunningClient {
    const proc = spawn(node[0]!, [...node.slice(1), BUNDLE, 'run', '--config', this.metals[name]!.config, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
    });
    proc.stderr!.on('data', (d) => {
      out += d;
    });
    const events = (event: string) =>
      out
        .split('\n')
        .filter((l) => l.includes(`"event":"${event}"`))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const c: RunningClient = {
      proc,
      log: () => out,
      events,
      stop: async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(t);
      },
    };
    this.clients.push(c);
    return c;
  }
  current(name: string, app: string): string | undefined {
    const link = join(this.metals[name]!.state, 'apps', app, 'current');
    return existsSync(link) ? readlinkSync(link) : undefined;
  }
  async updates(name: string) {
    return (
      await this.m.api<{ updates: { installed: { glazeId: string }[]; history: { glazeId: string; result: string; reason: string | null }[]; profile: { glazes: { version: string }[]; protocols: string[] } | null } }>(
        'GET',
        `/api/v1/metals/${this.metals[name]!.id}`,
      )
    ).updates;
  }
}

beforeAll(() => {
  node = nodeForMetal();
});

describe('T15 S9 T16 issue 9 test 2: a running tips-client gets Phase 3 Glazes by push (embedded broker), rolls back on request, re-authenticates, reports tampering', () => {
  const lab = new Lab();
  let c: RunningClient;
  let root: string;
  beforeAll(async () => {
    // A short re-authentication period: the running agent must outlive several of them.
    await lab.start(['--reauth-period', '10']);
    lab.cli(['space', 'create', '--name', 'apps', '--phase', '3', '--json']);
    await lab.metal('pi-push', '02:c3:00:00:00:01', 'apps');
    root = join(lab.work, 'metal-root');
    mkdirSync(join(root, 'opt/app'), { recursive: true });
    mkdirSync(join(root, 'var/lib/dpkg/updates'), { recursive: true });
    writeFileSync(join(root, 'opt/app/server.conf'), 'listen 80\n');
    writeFileSync(join(root, 'var/lib/dpkg/status'), 'Package: base-files\nStatus: install ok installed\nArchitecture: all\nVersion: 12.4\n');
    // Pulls only when woken: an hour between timer pulls, so what arrives came by the MQTT hint.
    c = lab.run('pi-push', ['--interval', '1h', '--poll-interval', '1h', '--managed-path', join(root, 'opt/app'), '--dpkg-root', root]);
    await until('the MQTT subscription', () => c.events('push_subscribed').length > 0, 90_000, c.log);
    await until('the cycle after subscribing', () => c.events('work').filter((e) => e.phase === 3).length >= 2, 60_000, c.log);
  }, 240_000);
  afterAll(() => lab.stop());

  it('`tips space set … --glaze` reaches the running client over MQTT: it pulls, verifies, installs and reports', async () => {
    const pulls = c.events('work').length;
    const g = lab.glaze('apps', 'web', '1.3', 13);
    lab.cli(['space', 'set', 'apps', '--glaze', 'web', '--json']);
    await until('web 1.3 installed', () => lab.current('pi-push', 'web') === '1.3', 60_000, c.log);
    expect(readFileSync(join(lab.metals['pi-push']!.state, 'apps/web/current/hello.txt'), 'utf8')).toBe('web 1.3');
    await until('the glaze_set hint in the log', () => c.events('push_hint').find((e) => e.reason === 'glaze_set' && (e.glazes as string[])[0] === g.id), 10_000, c.log);
    // The hint woke exactly the pulls that installed it (no timer fired).
    expect(c.events('work').length).toBeGreaterThan(pulls);
    // `tips-client status` says which server answers and that push is up, with the hint's time.
    const st = JSON.parse(lab.client(['status', '--json', '--config', lab.metals['pi-push']!.config]).stdout);
    expect(st.server).toBe(lab.m.httpsUrl);
    expect(st.push).toMatchObject({ state: 'subscribed', topic: expect.stringMatching(/^tips\/metal\/mtl_/), url: expect.stringMatching(/^mqtts:/), lastHintAt: expect.any(String) });
    expect(lab.client(['status', '--config', lab.metals['pi-push']!.config]).stdout).toMatch(/push: +subscribed to tips\/metal\/mtl_\S+ at mqtts:/);
    await until('the signed report', async () => ((await lab.updates('pi-push')).history.some((h) => h.glazeId === g.id && h.result === 'installed') ? true : undefined), 30_000, c.log);
    // S7: the profile says the metal takes hints over MQTT.
    expect((await lab.updates('pi-push')).profile?.protocols).toEqual(['https', 'mqtt']);
  }, 120_000);

  it('the master demands fresh authentication after --reauth-period: the running client re-authenticates and keeps going (not stopped)', async () => {
    await new Promise((r) => setTimeout(r, 12_000));
    const g = lab.glaze('apps', 'web', '1.4', 14);
    lab.cli(['space', 'set', 'apps', '--glaze', 'web', '--json']);
    await until('web 1.4 installed', () => lab.current('pi-push', 'web') === '1.4', 60_000, c.log);
    await until('the report of 1.4', async () => ((await lab.updates('pi-push')).installed.some((i) => i.glazeId === g.id) ? true : undefined), 30_000, c.log);
    const st = JSON.parse(lab.client(['status', '--json', '--config', lab.metals['pi-push']!.config]).stdout);
    expect(st.stopped).toBeNull();
    expect(c.events('phase2_stopped')).toEqual([]);
    // Every request after the first period carried a token issued within it: the master refused none as stale.
    const refused = lab.cli(['metal', 'tamper-events', 'pi-push', '--all', '--json']) as { code: string }[];
    expect(refused.filter((e) => e.code !== 'rollback_requested')).toEqual([]);
  }, 120_000);

  it('`tips metal rollback --glaze` reaches the running client: it goes back to 1.3 through the handler, reports rolled_back, and does not reinstall 1.4', async () => {
    const before = (await lab.updates('pi-push')).history.length;
    const r = lab.cli(['metal', 'rollback', 'pi-push', '--glaze', 'web', '--json']);
    expect(r.notified).toBe(1);
    await until('web back on 1.3', () => lab.current('pi-push', 'web') === '1.3', 60_000, c.log);
    expect(readFileSync(join(lab.metals['pi-push']!.state, 'apps/web/current/hello.txt'), 'utf8')).toBe('web 1.3');
    // (Log lines come through a pipe: read them until the hint is there, rather than racing the file system.)
    const hint = await until('the rollback hint in the log', () => c.events('push_hint').find((e) => e.reason === 'rollback'), 10_000, c.log);
    expect(hint).toMatchObject({ reason: 'rollback', glazes: [expect.stringMatching(/^glz_/)] });
    const u = await until(
      'the rolled_back report',
      async () => {
        const x = await lab.updates('pi-push');
        return x.history.length > before && x.history[0]!.result === 'rolled_back' ? x : undefined;
      },
      30_000,
      c.log,
    );
    expect(u.history[0]).toMatchObject({ result: 'rolled_back', reason: 'rollback_requested' });
    await until('the profile lists 1.3', async () => ((await lab.updates('pi-push')).profile?.glazes.map((x) => x.version).join() === '1.3' ? true : undefined), 30_000, c.log);
    // The Space still names 1.4; the next pull (a hint from another `space set` of the same Glaze) leaves 1.3 running.
    lab.cli(['space', 'set', 'apps', '--glaze', 'web', '--json']);
    await new Promise((res) => setTimeout(res, 4_000));
    expect(lab.current('pi-push', 'web')).toBe('1.3');
  }, 120_000);

  it('T16: the tamper watch started by `run` reports a changed managed file within 10 s, with what changed', async () => {
    const file = join(root, 'opt/app/server.conf');
    writeFileSync(file, 'listen 80\nnc -l -p 4444 -e /bin/sh\n');
    const since = Date.now();
    const events = await until(
      'the tamper event',
      () => lab.m.api<{ items: { kind: string; detail: { changes: { path: string; kind: string; detail: string }[] } }[] }>('GET', `/api/v1/metals/pi-push/events?kind=tamper`).then((x) => (x.items.length ? x.items : undefined)),
      10_000,
      c.log,
    );
    expect(Date.now() - since).toBeLessThan(10_000);
    expect(events[0]!.detail.changes).toEqual([{ path: file, kind: 'modified', detail: expect.stringMatching(/^content changed/) }]);
    // The client logs the report once the master has answered it: its stdout may arrive after the event is listed.
    await until('the client logged the report', () => c.events('tamper_reported').length > 0, 10_000, c.log);
    expect(c.events('tamper_reported')).toHaveLength(1);
  }, 60_000);
});

describe('T15 S10 pull when push is unavailable, and the update-server list failing over', () => {
  const lab = new Lab();
  let c: RunningClient;
  let deadHttps: string;
  beforeAll(async () => {
    // The master publishes to an external broker that is not there: push is unavailable.
    const deadBroker = await freePort();
    await lab.start(['--mqtt-url', `mqtts://localhost:${deadBroker}`]);
    lab.cli(['space', 'create', '--name', 'tools', '--phase', '3', '--json']);
    await lab.metal('pi-pull', '02:c3:00:00:00:02', 'tools');
    deadHttps = `https://localhost:${await freePort()}`;
    c = lab.run('pi-pull', ['--server', deadHttps, '--interval', '1h', '--poll-interval', '2s', '--no-tamper']);
    await until('a first cycle', () => c.events('work').filter((e) => e.phase === 3).length >= 1, 90_000, c.log);
  }, 240_000);
  afterAll(() => lab.stop());

  it('the dead first server is skipped for the live one, and which one answered is logged', () => {
    expect(c.events('server_unreachable').map((e) => e.server)).toContain(deadHttps);
    const chosen = c.events('server_selected');
    expect(chosen.length).toBeGreaterThanOrEqual(1);
    expect(chosen[0]!.server).toBe(lab.m.httpsUrl);
  });

  it('with the broker unreachable the client keeps reconnecting with backoff and gets the new Glaze by polling', async () => {
    await until('a failed MQTT connection', () => c.events('push_reconnect').length > 0, 60_000, c.log);
    const g = lab.glaze('tools', 'tool', '2.0', 20);
    lab.cli(['space', 'set', 'tools', '--glaze', 'tool', '--json']);
    await until('tool 2.0 installed by pull', () => lab.current('pi-pull', 'tool') === '2.0', 60_000, c.log);
    expect(c.events('push_hint')).toEqual([]);
    expect(c.events('push_subscribed')).toEqual([]);
    // S10: status names the live server (not the dead first one) and push as reconnecting, with why.
    const st = JSON.parse(lab.client(['status', '--json', '--config', lab.metals['pi-pull']!.config]).stdout);
    expect(st.server).toBe(lab.m.httpsUrl);
    expect(st.push).toMatchObject({ state: 'connecting', why: expect.any(String), lastHintAt: null });
    await until('the signed report', async () => ((await lab.updates('pi-pull')).installed.some((i) => i.glazeId === g.id) ? true : undefined), 30_000, c.log);
    // Reconnection waits grow (exponential backoff with jitter, each within [d/2, d]).
    const waits = c.events('push_reconnect').map((e) => e.retryInMs as number);
    if (waits.length >= 3) expect(waits[2]!).toBeGreaterThan(waits[0]!);
  }, 120_000);

  it('a rollback request reaches the client by pull alone (the MQTT hint is lost)', async () => {
    const g = lab.glaze('tools', 'tool', '2.1', 21);
    lab.cli(['space', 'set', 'tools', '--glaze', 'tool', '--json']);
    await until('tool 2.1', () => lab.current('pi-pull', 'tool') === '2.1', 60_000, c.log);
    await until('its report', async () => ((await lab.updates('pi-pull')).installed.some((i) => i.glazeId === g.id) ? true : undefined), 30_000, c.log);
    const r = lab.cli(['metal', 'rollback', 'pi-pull', '--glaze', 'tool', '--json']);
    expect(r.notified).toBe(0);
    await until('tool back on 2.0', () => lab.current('pi-pull', 'tool') === '2.0', 60_000, c.log);
    await until('the rolled_back report', async () => ((await lab.updates('pi-pull')).history[0]?.result === 'rolled_back' ? true : undefined), 30_000, c.log);
  }, 120_000);
});

describe('T15 S9 the same push against an external Mosquitto broker (--mqtt-url)', () => {
  const lab = new Lab();
  let c: RunningClient;
  let mosquitto: ChildProcess | undefined;
  let log = '';
  beforeAll(async () => {
    const port = await freePort();
    await lab.start(['--mqtt-url', `mqtts://localhost:${port}`]);
    const conf = /Mosquitto configuration: (\S+)\)/.exec(lab.m.master.output())![1]!;
    // As root Mosquitto would drop to its own user, which cannot read the CA directory (0700).
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
    await until('the master connected to mosquitto', () => /tips-master/.test(log), 30_000, () => log);
    lab.cli(['space', 'create', '--name', 'edge', '--phase', '3', '--json']);
    await lab.metal('pi-mosq', '02:c3:00:00:00:03', 'edge');
    c = lab.run('pi-mosq', ['--interval', '1h', '--poll-interval', '1h', '--no-tamper']);
    await until('the MQTT subscription at Mosquitto', () => c.events('push_subscribed').length > 0, 90_000, () => `${c.log()}\n${log}`);
    await until('the cycle after subscribing', () => c.events('work').filter((e) => e.phase === 3).length >= 2, 60_000, c.log);
  }, 240_000);
  afterAll(async () => {
    await lab.stop();
    mosquitto?.kill('SIGTERM');
  });

  it('`tips space set` reaches the running client through Mosquitto (ACL by certificate CN): it pulls and installs', async () => {
    const g = lab.glaze('edge', 'app', '1.0', 1);
    lab.cli(['space', 'set', 'edge', '--glaze', 'app', '--json']);
    await until('the hint through Mosquitto', () => c.events('push_hint').find((e) => (e.glazes as string[])[0] === g.id), 60_000, () => `${c.log()}\n${log}`);
    await until('app 1.0 installed', () => lab.current('pi-mosq', 'app') === '1.0', 60_000, c.log);
    // Mosquitto knew the metal by its certificate's CN (its TIPS ID).
    expect(log).toContain(lab.metals['pi-mosq']!.id);
  }, 120_000);
});
