/**
 * bench/console-fleet: the console's fleet view with 100,000 metals, in Debian's Chromium.
 *
 *   node --import tsx bench/console-fleet.ts     # TIPS_BENCH_METALS, TIPS_BENCH_RUNS to change
 *
 * Writes the metals straight into a fresh SQLite database (as bench/metal-list.ts does: the rows the
 * metals store writes), builds the console, starts a real `tips-master` on that database, signs in
 * through the page, then measures in the browser:
 * - first meaningful paint: from navigation start (a new page, session cookie already set) until the
 *   first metal row of the fleet table is in the DOM, read from the page's own clock;
 * - a page change: from the click on "Next page" until the first row shows the next page's metal;
 * and from Node, the API requests one fleet page makes (metals page of 50, interface states,
 * default Spaces), p50/p99 over sequential requests at random depths; the list's server-side filters
 * (interface state across 10 gateways' tables of 10 000 rows, name prefix). Also the bundle's size.
 * Goal (issue 14): first meaningful paint and a page change each < 1 s.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createServices } from '../apps/master/src/app.ts';
import { FsBlobStore } from '../apps/master/src/blob/fs-blob-store.ts';
import { openDatabase } from '../apps/master/src/db/database.ts';
import { launchChromium } from '../e2e/console-kit.ts';
import { startMaster } from '../e2e/helpers.ts';
import { buildWeb, WEB_DIR } from '../scripts/build.mjs';

const METALS = Number(process.env.TIPS_BENCH_METALS ?? 100_000);
const RUNS = Number(process.env.TIPS_BENCH_RUNS ?? 20);
const PAGE = 50;
/** In the page: clicks "Next page" and resolves with the ms until the first row shows another metal. */
const PAGE_CHANGE = `new Promise((resolve) => {
  const first = () => document.querySelector('tr[data-metal]')?.getAttribute('data-metal');
  const before = first();
  const start = performance.now();
  const obs = new MutationObserver(() => {
    const now = first();
    if (now !== before && now !== undefined) {
      obs.disconnect();
      resolve(performance.now() - start);
    }
  });
  obs.observe(document.body, { subtree: true, childList: true, attributes: true });
  Array.from(document.querySelectorAll('button')).find((b) => b.textContent === 'Next page').click();
})`;

const hex = (n: number) => n.toString(16).padStart(2, '0');
const macOf = (i: number) => `02:${hex((i >> 24) & 255)}:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}:30`;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const ms = (x: number) => `${x.toFixed(0)} ms`;

async function prepare(dir: string): Promise<string> {
  const db = await openDatabase({ kind: 'sqlite', file: join(dir, 'tips.db') });
  try {
    const s = createServices({ db, blobs: await FsBlobStore.open(join(dir, 'glazes')) });
    const admin = await s.owners.ensureAdmin();
    const { owner, token } = await s.owners.createOwnerAsAdmin(admin!.owner, 'bench');
    const base = Date.parse('2026-01-01T00:00:00Z');
    for (let from = 0; from < METALS; from += 500) {
      const n = Math.min(500, METALS - from);
      await db.transaction().execute(async (tx) => {
        const ids = Array.from({ length: n }, () => `mtl_${randomBytes(13).toString('hex').slice(0, 26)}`);
        await tx
          .insertInto('metals')
          .values(
            ids.map((id, k) => {
              const i = from + k;
              const at = new Date(base + Math.floor(i / 3)).toISOString();
              const interfaces = JSON.stringify([{ name: 'eth0', mac: macOf(i), type: 'ethernet', pxe: true }]);
              return { id, owner_id: owner.id, name: `node-${String(i).padStart(6, '0')}`, labels: JSON.stringify({ rack: `r${i % 40}` }), interfaces, created_at: at, updated_at: at };
            }),
          )
          .execute();
        await tx
          .insertInto('metal_interfaces')
          .values(ids.map((id, k) => ({ metal_id: id, owner_id: owner.id, name: 'eth0', mac: macOf(from + k), type: 'ethernet', pxe: 1, position: 0 })))
          .execute();
      });
    }
    // The gateways' tables (T11), 10 000 rows each at most: most interfaces Active, every 20th
    // Pending, every 100th Blocked — what the fleet view's state filter reads.
    for (let g = 0; g * 10_000 < METALS; g++) {
      const made = await s.gateways.create(owner.id, { name: `gw-${g}` });
      const gateway = await s.gateways.enroll({ enrollmentToken: made.enrollmentToken, publicKey: generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString() });
      const rows = [];
      for (let i = g * 10_000; i < Math.min(METALS, (g + 1) * 10_000); i++) {
        rows.push({ mac: macOf(i), state: stateOf(i), ip: null, tipsId: null, reason: null, gatewayInterface: 'br0', updatedAt: base });
      }
      await s.gateways.saveTable(gateway, rows);
    }
    return token;
  } finally {
    await db.destroy();
  }
}
const stateOf = (i: number) => (i % 100 === 7 ? 'blocked' : i % 20 === 3 ? 'pending' : 'active');

async function timed(url: string, cookie: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(url, { headers: { cookie } });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url} → ${r.status}`);
  return performance.now() - t0;
}

const dir = mkdtempSync(join(tmpdir(), 'tips-bench-console-'));
const t0 = performance.now();
const token = await prepare(dir);
process.stdout.write(`prepared ${METALS} metals in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
await buildWeb({ quiet: true });
const master = await startMaster(['--host', '127.0.0.1', '--data-dir', dir, '--tls-port', 'off', '--mqtt-port', 'off']);
const browser = await launchChromium();
try {
  const signIn = await fetch(`${master.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  const setCookies = signIn.headers.getSetCookie().join('\n');
  const secret = /tips_session=([^;]+)/.exec(setCookies)![1]!;
  const csrf = /tips_csrf=([^;]+)/.exec(setCookies)![1]!;
  const cookie = `tips_session=${secret}`;
  const host = new URL(master.url).hostname;
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // The two cookies sign-in leaves in the browser.
  await context.addCookies([
    { name: 'tips_session', value: secret, domain: host, path: '/', httpOnly: true, sameSite: 'Strict' },
    { name: 'tips_csrf', value: csrf, domain: host, path: '/', sameSite: 'Strict' },
  ]);
  // The moment the first metal row enters the DOM, on the page's clock (0 = navigation start).
  // In-page code is passed as strings: tsx's transform would wrap functions in a helper the page lacks.
  await context.addInitScript(`
    new MutationObserver((_m, obs) => {
      if (document.querySelector('tr[data-metal]')) {
        window.firstRowAt = performance.now();
        obs.disconnect();
      }
    }).observe(document, { subtree: true, childList: true });
  `);

  const paints: number[] = [];
  const changes: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const page = await context.newPage();
    await page.goto(master.url);
    // Polled from here: waitForFunction evaluates a string with eval, which the console's CSP forbids.
    let firstRowAt: unknown;
    for (const until = Date.now() + 30_000; firstRowAt === undefined && Date.now() < until; ) {
      firstRowAt = await page.evaluate('window.firstRowAt');
      if (firstRowAt === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    paints.push(Number(firstRowAt));
    // Five page changes a load: click, then wait for the first row to name another metal.
    for (let k = 0; k < 5; k++) changes.push(Number(await page.evaluate(PAGE_CHANGE)));
    await page.close();
  }

  // The API requests behind one fleet page, at random depths of the list.
  const cursors: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 200; i++) {
    const r = (await (await fetch(`${master.url}/api/v1/metals?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ''}`, { headers: { cookie } })).json()) as { nextCursor: string | null };
    if (!r.nextCursor) break;
    cursor = r.nextCursor;
    // Every 10th cursor: deep and shallow pages both.
    if (i % 2 === 0) cursors.push(cursor);
  }
  const list: number[] = [];
  const states: number[] = [];
  const defaults: number[] = [];
  for (let i = 0; i < 300; i++) {
    const c = cursors[Math.floor(Math.random() * cursors.length)]!;
    list.push(await timed(`${master.url}/api/v1/metals?limit=${PAGE}&cursor=${c}`, cookie));
    const n = Math.floor(Math.random() * (METALS - PAGE));
    const macs = Array.from({ length: PAGE }, (_, k) => macOf(n + k)).join(',');
    states.push(await timed(`${master.url}/api/v1/interface-states?macs=${macs}`, cookie));
    const names = Array.from({ length: PAGE }, (_, k) => `node-${String(n + k).padStart(6, '0')}`).join(',');
    defaults.push(await timed(`${master.url}/api/v1/default-spaces?metals=${names}`, cookie));
  }

  // The fleet view's server-side filters (interface state across the gateways' tables, name prefix).
  const filters: [string, number[]][] = [];
  for (const f of ['state=active', 'state=pending', 'state=blocked', 'prefix=node-0999', 'prefix=node-09']) {
    const times: number[] = [];
    for (let i = 0; i < 30; i++) times.push(await timed(`${master.url}/api/v1/metals?limit=${PAGE}&${f}`, cookie));
    filters.push([f, times]);
  }

  const assets = readdirSync(join(WEB_DIR, 'assets')).map((f) => {
    const b = readFileSync(join(WEB_DIR, 'assets', f));
    return { f, raw: b.length, gz: gzipSync(b, { level: 9 }).length };
  });
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const out = [
    `metals: ${METALS}, ${RUNS} loads × 5 page changes, page size ${PAGE}, load average ${load}`,
    `first meaningful paint: p50 ${ms(pct(paints, 50))}, p95 ${ms(pct(paints, 95))}, max ${ms(Math.max(...paints))}`,
    `page change:            p50 ${ms(pct(changes, 50))}, p95 ${ms(pct(changes, 95))}, max ${ms(Math.max(...changes))}`,
    `GET /metals?limit=${PAGE}:        p50 ${pct(list, 50).toFixed(1)} ms, p99 ${pct(list, 99).toFixed(1)} ms`,
    `GET /interface-states (${PAGE}): p50 ${pct(states, 50).toFixed(1)} ms, p99 ${pct(states, 99).toFixed(1)} ms`,
    `GET /default-spaces (${PAGE}):   p50 ${pct(defaults, 50).toFixed(1)} ms, p99 ${pct(defaults, 99).toFixed(1)} ms`,
    ...filters.map(([f, t]) => `GET /metals?${f}:`.padEnd(33) + ` p50 ${pct(t, 50).toFixed(1)} ms, p99 ${pct(t, 99).toFixed(1)} ms`),
    ...assets.map((a) => `bundle ${a.f}: ${(a.raw / 1024).toFixed(1)} KiB, gzip ${(a.gz / 1024).toFixed(1)} KiB`),
    `goal (< 1 s each at p95): ${pct(paints, 95) < 1000 && pct(changes, 95) < 1000 ? 'met' : 'NOT met'}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  await browser.close();
  await master.stop();
  rmSync(dir, { recursive: true, force: true });
}
