// The web console in a real browser (D6, T3, T4, T9, T11, T12, T13, T16): Debian's Chromium driven by
// playwright-core against a real tips-master process, with a real tips-gateway enrolled to it in a
// network-namespace lab (e2e/gateway-topology.ts) and metals that are namespaces running busybox
// udhcpc on its LAN. Every change reaches the page the way it would in production: the operator's
// clicks go through the public owner API with the session cookie; the gateway sees DHCP, asks the
// master, enforces and reports its table; the page learns of it over the live event stream,
// without a reload. With TIPS_SCREENSHOTS=<dir> (npm run screenshots) each view is
// also saved as a PNG there.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../scripts/build.mjs';
import { launchChromium, ownerApi, seriousViolations } from './console-kit.ts';
import { GatewayLab, type Metal } from './gateway-topology.ts';
import { TIPS, tips } from './helpers.ts';

const ADDR = { masterIp: '10.95.0.1', gatewayUplinkIp: '10.95.0.2', gatewayLanIp: '10.73.0.1' };
const BOOT_PORT = 8089;
const EVIL_PORT = 8090;
const SHOTS = process.env.TIPS_SCREENSHOTS ? resolve(process.env.TIPS_SCREENSHOTS) : undefined;
const MAC = '02:c0:00:00:00:01';
const INTRUDER = '02:c0:00:00:00:66';
const LIVE = 20_000;

let dir: string;
let lab: GatewayLab;
let TOKEN = '';
/** The master in the lab's cloud namespace, reached over the lab's host link (the browser too). */
const master = { url: '', output: () => lab.master.output };
let pi: Metal;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let sessionCookie = '';

async function shot(name: string): Promise<void> {
  if (!SHOTS) return;
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function accessible(view: string): Promise<void> {
  expect(await seriousViolations(page), `axe-core on ${view}`).toEqual([]);
}

/** Moves between views the way a user does: the nav link, no reload. */
async function nav(label: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
}

beforeAll(async () => {
  await buildWeb({ quiet: true });
  dir = mkdtempSync(join(tmpdir(), 'tips-console-e2e-'));
  lab = await GatewayLab.start('con', ADDR, ['--boot-http-port', String(BOOT_PORT)], { bootServices: true, masterArgs: ['--tls-port', 'off', '--mqtt-port', 'off', '--log-level', 'info'] });
  TOKEN = lab.adminToken;
  master.url = lab.masterUrl;
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('D6 web console in Chromium against a real master', () => {
  it('shows the sign-in page, refuses a wrong token in words, and signs in with a session cookie (HttpOnly, SameSite=Strict, the token stored nowhere)', async () => {
    await page.goto(master.url);
    await expect.poll(() => page.getByLabel('API token').isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('sign-in');
    await shot('sign-in');
    await page.getByLabel('API token').fill(`tips_${'A'.repeat(43)}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: LIVE }).toContain('not valid');

    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Fleet' }).isVisible(), { timeout: LIVE }).toBe(true);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'tips_session')!;
    expect(session.httpOnly).toBe(true);
    expect(session.sameSite).toBe('Strict');
    sessionCookie = `tips_session=${session.value}`;
    const stored = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }));
    expect(stored).not.toContain(TOKEN.slice(5));
    expect(stored).not.toContain(session.value);
    // The empty fleet tells a new user what to do next.
    await expect.poll(() => page.getByText('Declare your first metal').isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('empty fleet');
    await shot('fleet-empty');
  });

  it('creates a Space and a metal, and makes the Space the metal’s default (T3, T4)', async () => {
    await nav('Spaces');
    await page.getByLabel('Name').fill('lab-base');
    await page.getByRole('button', { name: 'Create Space' }).click();
    await expect.poll(() => page.getByRole('heading', { name: /lab-base/ }).isVisible(), { timeout: LIVE }).toBe(true);

    await nav('Fleet');
    await page.locator('summary', { hasText: 'Declare a metal' }).click();
    await page.getByLabel('Name', { exact: true }).fill('pi-1');
    await page.getByLabel('MAC address').fill(MAC);
    await page.getByRole('button', { name: 'Declare metal' }).click();
    const row = page.locator('tr[data-metal="pi-1"]');
    await expect.poll(() => row.textContent(), { timeout: LIVE }).toContain('Not seen');

    await nav('Spaces');
    await page.getByRole('link', { name: 'lab-base' }).click();
    await page.getByLabel('Metal (name or TIPS ID)').fill('pi-1');
    await page.getByRole('button', { name: 'Add member' }).click();
    await expect.poll(() => page.getByRole('table', { name: 'Members' }).textContent(), { timeout: LIVE }).toContain('yes');
    await accessible('Space');
    await shot('space');
    await nav('Spaces');
    await expect.poll(() => page.getByRole('table', { name: 'Spaces' }).isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('Spaces');
    const owner = await ownerApi<{ spaces: { spaceName: string; isDefault: boolean }[] }>(master.url, TOKEN, 'GET', '/api/v1/metals/pi-1');
    expect(owner.spaces).toEqual([expect.objectContaining({ spaceName: 'lab-base', isDefault: true })]);
  });

  it('uploads a Glaze with a progress bar that climbs to 100 % (T12)', async () => {
    await nav('Glazes');
    await expect.poll(() => page.getByText('No Glazes yet').isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('empty Glazes');
    const size = 8 * 1024 * 1024;
    await page.getByLabel('Image file').setInputFiles({ name: 'base.img', mimeType: 'application/octet-stream', buffer: randomBytes(size) });
    await page.getByLabel('Version').fill('1.0');
    await page.getByLabel(/lab-base/).check();
    // Every value the progress bar takes, recorded in the page as it changes.
    await page.evaluate(() => {
      const w = window as unknown as { progress: number[] };
      w.progress = [];
      new MutationObserver(() => {
        const p = document.querySelector('progress');
        if (p && w.progress[w.progress.length - 1] !== p.value) w.progress.push(p.value);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Uploaded' }).isVisible(), { timeout: 60_000 }).toBe(true);
    const values = await page.evaluate(() => (window as unknown as { progress: number[] }).progress);
    expect(values[0]).toBe(0);
    expect(values[values.length - 1]).toBe(size);
    expect([...values].sort((a, b) => a - b)).toEqual(values);
    expect(await page.locator('progress').getAttribute('max')).toBe(String(size));
    const glazes = await ownerApi<{ items: { name: string; size: number; spaces: string[] }[] }>(master.url, TOKEN, 'GET', '/api/v1/glazes');
    expect(glazes.items).toEqual([expect.objectContaining({ name: 'base.img', size, spaces: [expect.stringMatching(/^spc_/)] })]);
    await expect.poll(() => page.getByRole('table', { name: 'Glazes' }).textContent(), { timeout: LIVE }).toContain('base.img@1.0');
    await accessible('Glazes');
    await shot('glazes');
  });

  it('enrolls a gateway: shows the one-time token and the exact tips-gateway enroll command (T11)', async () => {
    await nav('Gateways');
    // The lab's tips-gateway is enrolled and its channel is open.
    await expect.poll(() => page.getByRole('table', { name: 'Gateways' }).textContent(), { timeout: LIVE }).toContain('gw-lab');
    await page.getByLabel('Name').fill('gw-shown');
    await page.getByRole('button', { name: 'Enroll a gateway' }).click();
    const command = page.getByTestId('enroll-command');
    await expect.poll(() => command.isVisible(), { timeout: LIVE }).toBe(true);
    const token = (await page.getByTestId('enrollment-token').textContent())!.trim();
    // The master's public URL (it listens on every address of its host, so it names the host).
    expect((await command.textContent())!.trim()).toMatch(new RegExp(`^tips-gateway enroll --master http://[^ ]+:8080 --token ${token} --data-dir /var/lib/tips-gateway --name gw-shown$`));
    await accessible('Gateways');
    await shot('gateways');
  });

  it('a metal turns Active live when the real gateway sees its DHCP and the master lets it in, without a reload (T5, T6, T11)', async () => {
    await nav('Fleet');
    const row = page.locator('tr[data-metal="pi-1"]');
    await expect.poll(() => row.textContent(), { timeout: LIVE }).toContain('Not seen');
    await page.evaluate(() => {
      (window as unknown as { sameDocument: boolean }).sameDocument = true;
    });
    // The metal powers on: udhcpc in its namespace on the gateway's LAN. tips-gateway puts it in
    // its table (Pending), asks TIPS-D, which decides by the T6 rule (declared MAC, default Phase 1
    // Space, not blocked): Active; the gateway reports its table and the row changes in the page.
    pi = await lab.startMetal([MAC]);
    const ip = await lab.leased(pi);
    await expect.poll(() => row.locator('.badge').allTextContents(), { timeout: LIVE }).toEqual(['Active']);
    expect(await row.textContent()).toContain('gw-lab');
    expect((await lab.row(MAC))?.state).toBe('active');
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
    await accessible('fleet');
    await shot('fleet');

    await nav('Gateways');
    await page.getByRole('link', { name: 'gw-lab' }).click();
    await expect.poll(() => page.getByRole('table', { name: 'Interface table' }).textContent(), { timeout: LIVE }).toContain(ip);
    await accessible('gateway table');
    await shot('gateway-table');
  });

  it('blocking the metal (after a confirmation) tells its gateway; its rows turn Blocked live (T16)', async () => {
    await nav('Fleet');
    await page.getByRole('link', { name: 'pi-1' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'pi-1' }).isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('metal');
    await page.getByRole('button', { name: 'Block', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('block confirmation');
    // Cancel changes nothing: the gateway's own table still has the metal Active.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await new Promise((r) => setTimeout(r, 1000));
    expect((await lab.row(MAC))?.state).toBe('active');

    await page.getByRole('button', { name: 'Block', exact: true }).click();
    await dialog.getByLabel('Reason (optional)').fill('lost in transit');
    await dialog.getByRole('button', { name: 'Block at every gateway' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Block sent to 1 gateway' }).isVisible(), { timeout: LIVE }).toBe(true);
    // tips-gateway gets the block over its channel, enforces it, and reports its table.
    await expect.poll(async () => (await lab.row(MAC))?.state, { timeout: LIVE }).toBe('blocked');
    const rows = page.getByRole('table', { name: 'Interfaces and their state per gateway' });
    await expect.poll(() => rows.locator('.badge').allTextContents(), { timeout: LIVE }).toEqual(['Blocked']);
    await shot('metal');
    await nav('Fleet');
    await expect.poll(() => page.locator('tr[data-metal="pi-1"] .badge').allTextContents(), { timeout: LIVE }).toEqual(['Blocked']);
  });

  it('a refused registration appears in the failures table and the histogram, live (T9)', async () => {
    await nav('Discovery');
    await expect.poll(() => page.getByText('No failed registrations').isVisible(), { timeout: LIVE }).toBe(true);
    const chart = page.locator('figure.chart [role="img"]');
    expect(await chart.getAttribute('data-total')).toBe('0');
    await accessible('empty discovery');
    // An undeclared machine on the LAN asks DHCP: the gateway registers it, TIPS-D refuses it.
    await lab.startMetal([INTRUDER]);
    const table = page.getByRole('table', { name: 'Failed registrations' });
    await expect.poll(() => table.locator(`tr[data-mac="${INTRUDER}"]`).count(), { timeout: LIVE }).toBeGreaterThan(0);
    expect(await table.textContent()).toContain('unknown_mac');
    await expect.poll(async () => Number(await chart.getAttribute('data-total')), { timeout: LIVE }).toBeGreaterThan(0);
    expect(await page.locator('figure.chart canvas').count()).toBeGreaterThan(0);
    await accessible('discovery');
    await shot('discovery');
  });

  it('a write from another origin with the session cookie is refused (CSRF), and changes nothing', async () => {
    // Another origin on the master's host (another port, in the lab's cloud namespace): same site, so
    // the SameSite=Strict cookie is sent; the Origin check and the missing CSRF header must refuse the write.
    const html = `<!doctype html><title>evil</title><script>
        fetch(${JSON.stringify(`${master.url}/api/v1/metals/pi-1/unblock`)}, { method: 'POST', mode: 'no-cors', credentials: 'include' })
          .then(() => { document.title = 'sent'; }, () => { document.title = 'failed'; });
      </script>`;
    const evil = lab.cloud.spawn('node', ['-e', `require('node:http').createServer((q, r) => { r.setHeader('content-type', 'text/html'); r.end(${JSON.stringify(html)}); }).listen(${EVIL_PORT}, '0.0.0.0', () => console.log('evil ready'))`], { label: 'evil origin' });
    await evil.waitFor(/evil ready/, 20_000);
    const evilPage = await context.newPage();
    await evilPage.goto(master.url.replace(/:\d+$/, `:${EVIL_PORT}/`));
    await expect.poll(() => evilPage.title(), { timeout: LIVE }).not.toBe('evil');
    await evilPage.close();
    // The master saw the cookie and refused the write for its origin (not for a missing session).
    await expect.poll(() => master.output(), { timeout: LIVE }).toContain('csrf_failed');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await lab.row(MAC))?.state).toBe('blocked');
    // Still blocked: unblocking through the API now works, which it would not had the attack succeeded;
    // the gateway lets the metal register again and it is Active.
    expect(await ownerApi(master.url, TOKEN, 'POST', '/api/v1/metals/pi-1/unblock')).toMatchObject({ tipsId: expect.stringMatching(/^mtl_/) });
    await expect.poll(async () => (await lab.row(MAC))?.state, { timeout: LIVE }).toBe('active');
  });

  it('filters the fleet by interface state and name prefix on the server; the Glazes view names the manifest signer (T11, T12)', async () => {
    await nav('Fleet');
    const row = page.locator('tr[data-metal="pi-1"]');
    await expect.poll(() => row.isVisible(), { timeout: LIVE }).toBe(true);
    // Unblocked, the gateway has it Active again: the state filter finds pi-1 there only.
    await expect.poll(() => row.locator('.badge').allTextContents(), { timeout: LIVE }).toEqual(['Active']);
    await page.getByLabel('Interface state').selectOption('active');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => row.isVisible(), { timeout: LIVE }).toBe(true);
    await page.getByLabel('Interface state').selectOption('blocked');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.getByText('No metal matches these filters').isVisible(), { timeout: LIVE }).toBe(true);
    await page.getByLabel('Interface state').selectOption('');
    await page.getByLabel('Name starts with, or TIPS ID').fill('pi-');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => row.isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('fleet filtered');
    await page.getByRole('button', { name: 'Clear' }).click();

    await nav('Glazes');
    const signer = page.getByRole('table', { name: 'Glazes' }).getByTestId('signer');
    await expect.poll(() => signer.textContent(), { timeout: LIVE }).toContain('not signed');
    await ownerApi(master.url, TOKEN, 'POST', '/api/v1/keys', { name: 'release-key', serverHeld: true });
    await ownerApi(master.url, TOKEN, 'POST', '/api/v1/glazes/base.img/manifest/sign', { key: 'release-key', sequenceNumber: 4, vendorDomain: 'tips.local', classInfo: 'base', component: 'os', uri: 'https://example.com/base.img' });
    // The signature is an owner write: the view refetches live and names the key, its kid and the sequence number.
    await expect.poll(() => signer.textContent(), { timeout: LIVE }).toContain('release-key');
    expect(await signer.textContent()).toContain('seq 4');
    await accessible('Glazes signed');
    await shot('glazes');
  });

  it('Phase 1 jobs: the fleet list and the metal page show a job live with its state, engine, Glaze and timestamps (T13)', async () => {
    await nav('Phase 1');
    await expect.poll(() => page.getByText('No Phase 1 jobs yet').isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('empty Phase 1 jobs');
    await ownerApi(master.url, TOKEN, 'PATCH', '/api/v1/spaces/lab-base', { glaze: 'base.img' });
    // The metal's iPXE fetches its script from the gateway's LAN address; the gateway attests the MAC
    // from its lease and asks the master, which starts the job (queued → booting).
    const script = await pi.ns.exec('curl', ['-s', '-m', '10', `http://${ADDR.gatewayLanIp}:${BOOT_PORT}/boot/script.ipxe`], { timeoutMs: 20_000 });
    expect(script.stdout).toMatch(/^#!ipxe/);
    const jobs = page.getByRole('table', { name: 'Phase 1 jobs' });
    const jobRow = jobs.locator('tbody tr').first();
    await expect.poll(() => jobRow.getAttribute('data-state'), { timeout: LIVE }).toBe('booting');
    const text = (await jobRow.textContent())!;
    expect(text).toContain('builtin');
    expect(text).toContain('base.img');
    await jobRow.locator('summary').click();
    await expect.poll(() => jobRow.getByRole('list', { name: /Transitions of/ }).textContent(), { timeout: LIVE }).toContain('booting');
    await accessible('Phase 1 jobs');
    await shot('jobs');
    await page.getByLabel('State', { exact: true }).selectOption('failed');
    await expect.poll(() => page.getByText('No failed jobs').isVisible(), { timeout: LIVE }).toBe(true);

    await nav('Fleet');
    await page.getByRole('link', { name: 'pi-1' }).click();
    await expect.poll(() => page.getByRole('table', { name: 'Phase 1 jobs of this metal' }).textContent(), { timeout: LIVE }).toContain('booting');
    expect(await page.getByTestId('metal-status').textContent()).toContain('Not blocked');
    // Phases 2–3 have not run on this metal: each section says what comes next.
    expect(await page.getByText('Nothing installed through Phases 2–3 yet').isVisible()).toBe(true);
    expect(await page.getByText('No signed report from this metal yet').isVisible()).toBe(true);
    await accessible('metal with jobs');
    await shot('metal-jobs');
  });

  it('tamper events: the fleet-wide view with its empty state (T16); the CLI reads what the console reads', async () => {
    await nav('Tamper');
    await expect.poll(() => page.getByText('No tamper events').isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('tamper events');
    await shot('tamper');

    const env = { TIPS_URL: master.url, TIPS_TOKEN: TOKEN, TIPS_CONFIG: join(dir, 'no-config.json') };
    const states = tips('metal states pi-1 --json', env);
    expect(states.status, states.stderr).toBe(0);
    expect(JSON.parse(states.stdout).items).toEqual([expect.objectContaining({ mac: MAC, gatewayName: 'gw-lab', state: 'active' })]);
    const defaults = tips('metal default-spaces pi-1 --json', env);
    expect(JSON.parse(defaults.stdout).items).toEqual([expect.objectContaining({ spaceName: 'lab-base' })]);
    expect(JSON.parse(tips('metal list --state active --prefix pi --json', env).stdout).map((m: { name: string }) => m.name)).toEqual(['pi-1']);
    expect(JSON.parse(tips('metal list --state blocked --json', env).stdout)).toEqual([]);
    expect(JSON.parse(tips('tamper-events --json', env).stdout)).toEqual([]);
    for (const cmd of ['events', 'metal states', 'metal default-spaces', 'tamper-events']) expect(tips(`${cmd} --help`, env).stdout).toContain('Usage: tips');
    // `tips events` reads the live stream: a write made meanwhile arrives as one JSON line.
    const follower = spawn(process.execPath, [TIPS, 'events', '--follow', '--limit', '1', '--json'], { env: { ...process.env, ...env } });
    let out = '';
    follower.stdout.on('data', (d) => {
      out += String(d);
    });
    const exited = new Promise<number | null>((r) => follower.once('exit', r));
    await expect
      .poll(async () => {
        await ownerApi(master.url, TOKEN, 'PATCH', '/api/v1/metals/pi-1', { labels: { site: `lab-${Date.now()}` } });
        return out;
      }, { timeout: LIVE, interval: 1000 })
      .toContain('"kind":"write"');
    expect(await exited).toBe(0);
    expect(JSON.parse(out.trim().split('\n')[0]!)).toMatchObject({ kind: 'write', resource: 'metals' });
  });

  it('signs out: the session is deleted and the old cookie is refused', async () => {
    expect((await fetch(`${master.url}/api/v1/me`, { headers: { cookie: sessionCookie } })).status).toBe(200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => page.getByLabel('API token').isVisible(), { timeout: LIVE }).toBe(true);
    expect((await context.cookies()).filter((c) => c.name === 'tips_session')).toEqual([]);
    expect((await fetch(`${master.url}/api/v1/me`, { headers: { cookie: sessionCookie } })).status).toBe(401);
    await page.reload();
    await expect.poll(() => page.getByLabel('API token').isVisible(), { timeout: LIVE }).toBe(true);
  });

  it('is readable on a phone: the fleet fits a 390 px viewport without sideways scrolling of the page', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    await p.goto(master.url);
    await p.getByLabel('API token').fill(TOKEN);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => p.locator('tr[data-metal="pi-1"]').isVisible(), { timeout: LIVE }).toBe(true);
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    if (SHOTS) await p.screenshot({ path: join(SHOTS, 'fleet-phone.png'), fullPage: true });
    await phone.close();
  });
});
