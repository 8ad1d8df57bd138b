// Information exchange (issue 11): a real tips-client posts telemetry and heartbeats over mTLS + PoP to
// a real tips-master; the owner mints an application token for that one device (`tips app-token`);
// curl, holding only that token, reads that device and is refused everything else — and after revoke.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientTestMaster, runClient, startClientTestMaster, tipsOk, writeClientFiles } from './client-master.ts';
import { tips } from './helpers.ts';

let work: string;
let m: ClientTestMaster;
let env: NodeJS.ProcessEnv;
const node = [process.execPath];
const metals: Record<string, { id: string; config: string; state: string }> = {};
const cli = (args: string[]) => tipsOk(env, args);

/** curl, as the application: a bearer token and nothing else. */
function curl(token: string, path: string, opts: { method?: string; body?: unknown } = {}) {
  const out = join(work, `curl-${Math.random().toString(36).slice(2)}`);
  const args = ['-sS', '-o', out, '-w', '%{http_code}', '-X', opts.method ?? 'GET', '-H', `authorization: Bearer ${token}`];
  if (opts.body !== undefined) args.push('-H', 'content-type: application/json', '--data', JSON.stringify(opts.body));
  const r = spawnSync('curl', [...args, `${m.master.url}${path}`], { encoding: 'utf8', timeout: 60_000 });
  const text = readFileSync(out, 'utf8');
  return { status: Number(r.stdout), body: text ? JSON.parse(text) : undefined };
}

async function enrolled(name: string, mac: string) {
  const created = cli(['metal', 'create', '--name', name, '--iface', `eth0=${mac},ethernet,pxe`, '--json']);
  const secret = cli(['enrollment', 'secret', 'create', '--metal', name, '--json']);
  const state = join(work, `${name}-state`);
  const config = writeClientFiles(join(work, `${name}-etc`), m, { id: created.id }, { id: secret.id, secret: secret.secret }, state);
  const e = runClient(node, ['enroll', '--config', config]);
  expect(e.status, e.stderr).toBe(0);
  metals[name] = { id: created.id, config, state };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tips-telemetry-e2e-'));
  m = await startClientTestMaster(work);
  env = { TIPS_URL: m.master.url, TIPS_TOKEN: m.admin, TIPS_CONFIG: join(work, 'no-config.json') };
  // An operator key, so the master has a trust list for tips-client run.
  cli(['key', 'create', '--out', join(work, 'ops.pem'), '--register', 'ops', '--json']);
  await enrolled('pi-tel', '02:c5:00:00:00:01');
  await enrolled('pi-other', '02:c5:00:00:00:02');
}, 240_000);
afterAll(async () => {
  await m?.master.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('S6 S11 Z2 issue 11 information exchange: one device\'s data, readable by a token scoped to it and by no other', { timeout: 240_000 }, () => {
  it('tips-client posts a heartbeat each poll and telemetry on demand; the owner reads them with tips metal telemetry/heartbeat', () => {
    const pi = metals['pi-tel']!;
    const sent = runClient(node, ['telemetry', 'send', 'temp=41.5', 'fan=true', 'mode=eco', '--json', '--config', pi.config]);
    expect(sent.status, sent.stderr).toBe(0);
    expect(JSON.parse(sent.stdout).id).toMatch(/^tel_/);
    writeFileSync(join(work, 'values.json'), JSON.stringify({ disk: 0.73, rev: 'b2' }));
    expect(runClient(node, ['telemetry', 'send', '--file', join(work, 'values.json'), '--config', pi.config]).status).toBe(0);
    const other = runClient(node, ['telemetry', 'send', 'secret=other-device', '--config', metals['pi-other']!.config]);
    expect(other.status, other.stderr).toBe(0);
    // Refused before anything is sent: a usage error (exit 2); and by the master: a 400 naming the key (exit 1).
    expect(runClient(node, ['telemetry', 'send', 'novalue', '--config', pi.config]).status).toBe(2);
    const bad = runClient(node, ['telemetry', 'send', '9lives=1', '--config', pi.config]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('invalid_telemetry');

    const run = runClient(node, ['run', '--once', '--config', pi.config]);
    expect(run.status, run.stderr).toBe(0);
    const hb = cli(['metal', 'heartbeat', 'pi-tel', '--json']);
    expect(hb).toMatchObject({ metal: { id: pi.id, name: 'pi-tel' }, heartbeat: { values: { installed: 0 } } });
    expect(hb.profile).toMatchObject({ protocols: ['https'] });
    const samples = cli(['metal', 'telemetry', 'pi-tel', '--json']);
    expect(samples.map((s: { values: object }) => s.values)).toEqual([{ temp: 41.5, fan: true, mode: 'eco' }, { disk: 0.73, rev: 'b2' }]);

    // The metal API is mTLS + the PoP token like every metal route: the metal's own certificate without a token is 401.
    const id = join(pi.state, 'identity', readlinkSync(join(pi.state, 'identity', 'current')));
    const noPop = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', m.caFile, '--cert', join(id, 'cert.pem'), '--key', join(id, 'key.pem'), '-H', 'content-type: application/json', '--data', JSON.stringify({ at: new Date().toISOString(), values: { x: 1 } }), `${m.httpsUrl}/api/metal/v1/telemetry`], { encoding: 'utf8' });
    expect(noPop.stdout).toBe('401');
    expect(cli(['metal', 'telemetry', 'pi-tel', '--json'])).toHaveLength(2);
  });

  it('an application token reads its one device, is refused every other route and device, and nothing after revoke', () => {
    const pi = metals['pi-tel']!;
    const other = metals['pi-other']!;
    const app = cli(['app-token', 'create', '--metal', 'pi-tel', '--scope', 'telemetry:read', '--ttl', '1h', '--json']);
    expect(app).toMatchObject({ metalId: pi.id, scope: ['telemetry:read'] });
    const listed = cli(['app-token', 'list', '--json']);
    expect(listed).toEqual([{ id: app.id, metalId: pi.id, name: 'app-pi-tel', scope: ['telemetry:read'], createdAt: app.createdAt, expiresAt: app.expiresAt }]);
    expect(tips(['app-token', 'create', '--metal', 'pi-tel', '--scope', 'telemetry:write'], env).status).not.toBe(0);
    expect(tips(['app-token', 'create', '--metal', 'pi-tel', '--ttl', 'soon'], env).status).toBe(2);

    const read = curl(app.secret, `/api/v1/metals/${pi.id}/telemetry?limit=1`);
    expect(read.status).toBe(200);
    expect(read.body.items[0].values).toEqual({ temp: 41.5, fan: true, mode: 'eco' });
    const next = curl(app.secret, `/api/v1/metals/pi-tel/telemetry?limit=1&cursor=${read.body.nextCursor}`);
    expect(next.body.items[0].values).toEqual({ disk: 0.73, rev: 'b2' });
    expect(curl(app.secret, `/api/v1/metals/${pi.id}/telemetry?since=${encodeURIComponent(next.body.items[0].receivedAt)}`).body.items).toEqual([]);
    expect(curl(app.secret, `/api/v1/metals/${pi.id}/heartbeat`).body).toMatchObject({ metal: { id: pi.id }, heartbeat: { values: { installed: 0 } } });

    // Another device: 403, its data never in the answer. Every other route: 403. Nothing changed.
    const otherRead = curl(app.secret, `/api/v1/metals/${other.id}/telemetry`);
    expect(otherRead.status).toBe(403);
    expect(JSON.stringify(otherRead.body)).not.toContain('other-device');
    for (const [method, path, body] of [
      ['GET', '/api/v1/me'],
      ['GET', '/api/v1/metals'],
      ['GET', `/api/v1/metals/${pi.id}`],
      ['GET', '/api/v1/app-tokens'],
      ['POST', '/api/v1/app-tokens', { metal: other.id, scope: ['telemetry:read'] }],
      ['POST', '/api/v1/tokens', { name: 'escalate' }],
      ['DELETE', `/api/v1/metals/${other.id}`],
    ] as const) {
      const r = curl(app.secret, path, { method, body });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.code).toBe('forbidden');
    }
    expect(cli(['app-token', 'list', '--json'])).toHaveLength(1);
    expect(cli(['metal', 'show', 'pi-other', '--json']).id).toBe(other.id);
    // The token is no metal credential either.
    expect(curl(app.secret, '/api/metal/v1/whoami').status).toBe(401);

    expect(cli(['app-token', 'revoke', app.id])).toContain(`revoked ${app.id}`);
    expect(curl(app.secret, `/api/v1/metals/${pi.id}/telemetry`).status).toBe(401);
    expect(curl(app.secret, `/api/v1/metals/${pi.id}/heartbeat`).status).toBe(401);
    expect(cli(['app-token', 'list', '--json'])).toEqual([]);
    // The metals log no secret.
    expect(m.master.output()).not.toContain(app.secret);
  });
});
