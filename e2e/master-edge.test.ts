import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster, TIPS_MASTER } from './helpers.ts';

/**
 * The real `tips-master` process at its edges: the bootstrap admin token (one-line error, one-line
 * warning), the address it says it listens on, and errors Node's HTTP parser raises before Fastify
 * sees a request — all in the one error shape.
 */
const TOKEN_A = `tips_${'A'.repeat(43)}`;
const TOKEN_B = `tips_${'B'.repeat(43)}`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tips-e2e-edge-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function me(url: string, token: string): Promise<number> {
  return (await fetch(`${url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status;
}

/** Sends raw bytes and returns the raw answer (status line, headers, body). */
function raw(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let out = '';
    const s = connect(Number(port), hostname, () => s.write(request));
    s.on('data', (d) => {
      out += d;
    });
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

function jsonOf(answer: string): { error: { code: string; message: string }; requestId: string } {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
}

describe('D4 S6 TIPS_BOOTSTRAP_ADMIN_TOKEN: one-line error, one-line warning', () => {
  it('refuses a token in a wrong format with one line naming the expected format, exit code 2, and creates nothing', () => {
    const data = join(dir, 'bad');
    const secret = 'hunter2-not-a-token';
    const r = spawnSync(process.execPath, [TIPS_MASTER, '--port', '0', '--tls-port', 'off', '--data-dir', data], {
      env: { ...process.env, TIPS_BOOTSTRAP_ADMIN_TOKEN: secret },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: TIPS_BOOTSTRAP_ADMIN_TOKEN must be tips_ followed by 32–128 base64url characters/);
    expect(lines[0]).not.toContain(secret);
    expect(existsSync(data)).toBe(false);
  });

  it('warns in one line that the token was ignored on a database that already has an admin, and says how to make a new one', async () => {
    const data = join(dir, 'twice');
    const first = await startMaster(['--data-dir', data], { TIPS_BOOTSTRAP_ADMIN_TOKEN: TOKEN_A });
    expect(await me(first.url, TOKEN_A)).toBe(200);
    expect(first.output()).not.toMatch(/warning/);
    await first.stop();

    const second = await startMaster(['--data-dir', data], { TIPS_BOOTSTRAP_ADMIN_TOKEN: TOKEN_B });
    try {
      const warnings = second.output().split('\n').filter((l) => l.startsWith('warning:'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/TIPS_BOOTSTRAP_ADMIN_TOKEN ignored: the database already has an admin.*tips token create/);
      expect(second.output()).not.toContain(TOKEN_B);
      expect(await me(second.url, TOKEN_B)).toBe(401);
      expect(await me(second.url, TOKEN_A)).toBe(200);
    } finally {
      await second.stop();
    }

    // The same token again (automation restarting with its environment): it is in effect, no warning.
    const third = await startMaster(['--data-dir', data], { TIPS_BOOTSTRAP_ADMIN_TOKEN: TOKEN_A });
    try {
      expect(third.output()).not.toMatch(/warning/);
    } finally {
      await third.stop();
    }
  });
});

describe('D4 the master says where it really listens, and answers malformed HTTP in the one error shape', () => {
  let master: RunningMaster;
  beforeAll(async () => {
    master = await startMaster(['--data-dir', join(dir, 'any'), '--host', '0.0.0.0', '--tls-port', 'off']);
  });
  afterAll(async () => master?.stop());

  it('bound to 0.0.0.0 it prints 0.0.0.0, says so, and lists an address that answers', async () => {
    const line = master.output().split('\n').find((l) => l.includes('listening on'))!;
    const port = /listening on http:\/\/0\.0\.0\.0:(\d+) \(every IPv4 address of this host; reach it at /.exec(line)?.[1];
    expect(port, line).toBeDefined();
    const usable = [...line.matchAll(/http:\/\/(\d+\.\d+\.\d+\.\d+):(\d+)/g)].filter((m) => m[1] !== '0.0.0.0');
    expect(usable.length).toBeGreaterThan(0);
    for (const m of usable) {
      expect(m[2]).toBe(port);
      expect((await fetch(`http://${m[1]}:${m[2]}/healthz`)).status).toBe(200);
    }
  });

  it('answers a request line over the limit 414, headers over the limit 431, and bytes that are not HTTP 400 — each in the one shape', async () => {
    const url = master.url.replace('0.0.0.0', '127.0.0.1');
    const uri = await raw(url, `GET /api/v1/metals/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(uri).toMatch(/^HTTP\/1\.1 414 /);
    expect(jsonOf(uri).error.code).toBe('uri_too_long');
    const headers = await raw(url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expect(headers).toMatch(/^HTTP\/1\.1 431 /);
    expect(jsonOf(headers).error.code).toBe('headers_too_large');
    const garbage = await raw(url, 'BLAH\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    for (const answer of [uri, headers, garbage]) {
      const j = jsonOf(answer);
      expect(Object.keys(j).sort()).toEqual(['error', 'requestId']);
      expect(answer.toLowerCase()).toContain(`x-request-id: ${j.requestId}`);
    }
    const badUrl = await fetch(`${url}/api/v1/metals/%ff%fe`);
    expect(badUrl.status).toBe(400);
    expect((await badUrl.json()).error.code).toBe('bad_url');
  });
});
