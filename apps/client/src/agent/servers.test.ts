import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ClientError } from '../errors.ts';
import { backoffDelay, ServerList, serverOrder } from './servers.ts';

const down = (base: string) => new ClientError('master_unreachable', `${base}: connect ECONNREFUSED`);

/** A logger whose lines the test reads. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

describe('S10 backoff: exponential with jitter', () => {
  it('doubles per attempt up to the ceiling, and the jitter stays within [d/2, d]', () => {
    const o = { baseMs: 100, maxMs: 1_000 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, { ...o, random: () => 0.999999 }))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(a, { ...o, random: () => 0 }))).toEqual([50, 100, 200, 400, 500]);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, o);
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(800);
    }
  });

  it('two metals with different random draws do not come back at the same moment', () => {
    const a = backoffDelay(5, { baseMs: 1000, maxMs: 60_000, random: () => 0.1 });
    const b = backoffDelay(5, { baseMs: 1000, maxMs: 60_000, random: () => 0.9 });
    expect(a).not.toBe(b);
  });
});

describe('S10 the server list: tried in order, failing over only when unreachable', () => {
  it('orders --server flags, then the configured servers, then masterUrl, without duplicates', () => {
    expect(serverOrder(['https://gw:8443/', 'https://m1'], ['https://m1', 'https://m2'], 'https://m1/')).toEqual(['https://gw:8443', 'https://m1', 'https://m2']);
    expect(serverOrder([], [], 'https://m')).toEqual(['https://m']);
  });

  it('a dead first server passes the request to the next; which one answered is logged once', async () => {
    const { log, lines } = capture();
    const asked: string[] = [];
    const s = new ServerList(['https://dead', 'https://live'], { log, sleep: async () => {} });
    const ask = (base: string) => {
      asked.push(base);
      if (base === 'https://dead') throw down(base);
      return Promise.resolve(`answer from ${base}`);
    };
    expect(await s.attempt('GET /work', ask)).toBe('answer from https://live');
    expect(s.current()).toBe('https://live');
    // The next request goes straight to the server that answered (no timeout on the dead one first).
    expect(await s.attempt('GET /work', ask)).toBe('answer from https://live');
    expect(asked).toEqual(['https://dead', 'https://live', 'https://live']);
    const selected = lines.filter((l) => l.event === 'server_selected');
    expect(selected).toHaveLength(1);
    expect(selected[0]).toMatchObject({ server: 'https://live', previous: null });
    expect(lines.filter((l) => l.event === 'server_unreachable').map((l) => l.server)).toEqual(['https://dead']);
  });

  it('after the sticky period the preferred server is asked first again', async () => {
    let t = 0;
    let deadAlive = false;
    const asked: string[] = [];
    const s = new ServerList(['https://a', 'https://b'], { sleep: async () => {}, stickyMs: 1_000, now: () => t });
    const ask = async (base: string) => {
      asked.push(base);
      if (base === 'https://a' && !deadAlive) throw down(base);
      return base;
    };
    expect(await s.attempt('x', ask)).toBe('https://b');
    t = 500;
    expect(await s.attempt('x', ask)).toBe('https://b');
    deadAlive = true;
    t = 2_000;
    expect(await s.attempt('x', ask)).toBe('https://a');
    expect(asked).toEqual(['https://a', 'https://b', 'https://b', 'https://a']);
  });

  it('a refusal is an answer: no failover, the error reaches the caller', async () => {
    const asked: string[] = [];
    const s = new ServerList(['https://a', 'https://b'], { sleep: async () => {} });
    const refused = new ClientError('unauthenticated', 'POST /tokens/issue → 401', 'certificate_revoked');
    await expect(
      s.attempt('x', async (base) => {
        asked.push(base);
        throw refused;
      }),
    ).rejects.toBe(refused);
    expect(asked).toEqual(['https://a']);
  });

  it('every server down: whole rounds with growing backoff between them, then the last error', async () => {
    const slept: number[] = [];
    const asked: string[] = [];
    const s = new ServerList(['https://a', 'https://b'], { rounds: 3, baseMs: 100, maxMs: 10_000, random: () => 0.999999, sleep: async (ms) => void slept.push(ms) });
    await expect(
      s.attempt('x', async (base) => {
        asked.push(base);
        throw down(base);
      }),
    ).rejects.toMatchObject({ code: 'master_unreachable', message: 'https://b: connect ECONNREFUSED' });
    expect(asked).toEqual(['https://a', 'https://b', 'https://a', 'https://b', 'https://a', 'https://b']);
    expect(slept).toEqual([100, 200]);
  });

  it('refuses an empty list', () => {
    expect(() => new ServerList([])).toThrow(/no update server/);
  });
});
