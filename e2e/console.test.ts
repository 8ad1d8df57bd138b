// The web console in a real browser (D6, T3, T4, T9, T11, T12, T13, T16): Debian's Chromium driven by
// playwright-core against a real tips-master process, with a real tips-gateway enrolled to it in a
// network-namespace lab (e2e/gateway-topology.ts) and metals that are namespaces running busybox
// udhcpc on its LAN. Every change reaches the page the way it would in production: the operator's
// clicks go through the public owner API with the session cookie; the gateway sees DHCP, asks the
// master, enforces and reports its table; the page learns of it over the live event stream,
// without a reload. The onboarding view imports vouchers made by `tips factory`; the LwM2M view
// drives the testbed's LwM2M device over DTLS-PSK with the key the page issued (in queue mode too: a
// read queued from the page is answered at the device's next update, shown live); installations and a
// tamper event reach the master over EST and mTLS (openssl, curl) as a metal's agent sends them.
// With TIPS_SCREENSHOTS=<dir> (npm run screenshots) each view is also saved as a PNG there.
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createDtlsClient } from '@tips/dtls';
import { armorVoucher, decodeVoucher, guidToString } from '@tips/onboarding';
import { importKey } from '@tips/suit';
import { Lwm2mSim } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signInstallReport } from '../apps/client/src/updates/report.ts';
import { voucherFor } from '../apps/master/src/domains/vouchers/test-helpers.ts';
import { buildWeb } from '../scripts/build.mjs';
import { launchChromium, ownerApi, seriousViolations } from './console-kit.ts';
import { GatewayLab, type Metal } from './gateway-topology.ts';
import { TIPS, tips } from './helpers.ts';

const ADDR = { masterIp: '10.95.0.1', gatewayUplinkIp: '10.95.0.2', gatewayLanIp: '10.73.0.1' };
const BOOT_PORT = 8089;
const EVIL_PORT = 8090;
/** Fixed ports are safe: the cloud namespace is this run's own. */
const TLS_PORT = 8448;
const COAP_PORT = 5684;
const SHOTS = process.env.TIPS_SCREENSHOTS ? resolve(process.env.TIPS_SCREENSHOTS) : undefined;
const MAC = '02:c0:00:00:00:01';
const INTRUDER = '02:c0:00:00:00:66';
const LIVE = 20_000;
type Lwm2mFirmware = { firmware: { jobId: string; status: string } | null };

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
let savedTlsHostname: string | undefined;
const sims: Lwm2mSim[] = [];

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
  // The master's HTTPS certificate names its cloud address: metals reach it there (EST, mTLS).
  savedTlsHostname = process.env.TIPS_TLS_HOSTNAME;
  process.env.TIPS_TLS_HOSTNAME = ADDR.masterIp;
  lab = await GatewayLab.start('con', ADDR, ['--boot-http-port', String(BOOT_PORT)], {
    bootServices: true,
    masterArgs: ['--tls-port', String(TLS_PORT), '--mqtt-port', 'off', '--coap-port', String(COAP_PORT), '--log-level', 'info'],
  });
  TOKEN = lab.adminToken;
  master.url = lab.masterUrl;
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  for (const sim of sims) await sim.close().catch(() => {});
  if (savedTlsHostname === undefined) delete process.env.TIPS_TLS_HOSTNAME;
  else process.env.TIPS_TLS_HOSTNAME = savedTlsHostname;
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

  it('onboarding: an onboarding key, vouchers from `tips factory` imported file by file (each refusal names its broken link, nothing else changes), failed onboardings, a bootstrapping profile (Z1 Z3 Z4)', async () => {
    await nav('Onboarding');
    await expect.poll(() => page.getByText('No vouchers yet').isVisible(), { timeout: LIVE }).toBe(true);
    expect(await page.getByText('No bootstrapping profiles yet').isVisible()).toBe(true);
    await accessible('empty onboarding');
    await page.getByLabel('Key name').fill('fleet');
    await page.getByRole('button', { name: 'Make key' }).click();
    const pemBox = page.getByTestId('onboarding-key-pem');
    await expect.poll(() => pemBox.textContent(), { timeout: LIVE }).toContain('BEGIN PUBLIC KEY');

    // Vouchers as `tips factory` makes them (manufacturer → distributor → owner; e2e/cli-onboarding
    // runs the CLI itself): one signed over to this owner, one that ends at a distributor, one whose
    // last signature is damaged (its last byte), sent as CBOR.
    const pem = (await pemBox.textContent())!.trim();
    const guidOf = (v: Uint8Array) => guidToString(decodeVoucher(v).header.guid);
    const mine = voucherFor(pem).voucher;
    const theirs = voucherFor(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey).voucher;
    const tampered = Buffer.from(voucherFor(pem).voucher);
    tampered[tampered.length - 1]! ^= 0xff;
    await page.getByLabel('Voucher files').setInputFiles([
      { name: 'good.voucher', mimeType: 'text/plain', buffer: Buffer.from(armorVoucher(mine)) },
      { name: 'distributor.voucher', mimeType: 'text/plain', buffer: Buffer.from(armorVoucher(theirs)) },
      { name: 'tampered.cbor', mimeType: 'application/cbor', buffer: tampered },
    ]);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    const results = page.getByRole('list', { name: 'Import results' }).locator('li');
    await expect.poll(() => results.count(), { timeout: LIVE }).toBe(3);
    expect(await results.nth(0).textContent()).toBe(`good.voucher: imported: device ${guidOf(mine)}`);
    expect(await results.nth(1).textContent()).toMatch(/^distributor\.voucher: refused \(voucher_wrong_owner\): entry 1: the chain ends at key sha256:/);
    expect(await results.nth(2).textContent()).toMatch(/^tampered\.cbor: refused \(entry_signature_invalid\): entry 1: not signed by /);
    // Only the good one was written; the two refused devices each have a failed onboarding saying why.
    const vouchers = page.getByRole('table', { name: 'Vouchers' });
    await expect.poll(() => vouchers.locator('tbody tr').count(), { timeout: LIVE }).toBe(1);
    expect(await vouchers.locator(`tr[data-guid="${guidOf(mine)}"]`).textContent()).toMatch(/imported.*fleet/);
    expect((await ownerApi<{ items: { guid: string }[] }>(master.url, TOKEN, 'GET', '/api/v1/vouchers')).items.map((v) => v.guid)).toEqual([guidOf(mine)]);
    const onboardings = page.getByRole('table', { name: 'Onboardings' });
    await expect.poll(() => onboardings.locator('tbody tr').count(), { timeout: LIVE }).toBe(2);
    expect(await onboardings.locator(`tr[data-guid="${guidOf(theirs)}"]`).textContent()).toMatch(/failed.*voucher refused: voucher_wrong_owner/);
    expect(await onboardings.locator(`tr[data-guid="${guidOf(tampered)}"]`).textContent()).toMatch(/failed.*voucher refused: entry_signature_invalid/);
    await page.getByLabel('Onboarding status').selectOption('enrolled');
    await expect.poll(() => page.getByText('No enrolled onboarding.').isVisible(), { timeout: LIVE }).toBe(true);
    await page.getByLabel('Onboarding status').selectOption('');

    // A profile: devices of vendor acme become members of lab-base (their default Space).
    await page.locator('summary', { hasText: 'Make a bootstrapping profile' }).click();
    await page.getByLabel('Profile name').fill('acme-sensors');
    await page.getByLabel('Device vendor (from the voucher; empty: any)').fill('acme');
    await page.getByLabel('lab-base (Phase 1)').check();
    // tpm2 without PCRs is refused in words, and no profile is made.
    await page.getByLabel('Verifier').selectOption('tpm2');
    await page.getByRole('button', { name: 'Make profile' }).click();
    await expect.poll(() => page.getByRole('alert').filter({ hasText: 'The profile was not made' }).textContent(), { timeout: LIVE }).toContain('pcrs');
    expect((await ownerApi<{ items: unknown[] }>(master.url, TOKEN, 'GET', '/api/v1/bootstrap/profiles')).items).toEqual([]);
    await page.getByLabel('Verifier').selectOption('software-key');
    await page.getByRole('button', { name: 'Make profile' }).click();
    const row = page.getByRole('table', { name: 'Bootstrapping profiles' }).locator('tr[data-profile="acme-sensors"]');
    await expect.poll(() => row.textContent(), { timeout: LIVE }).toMatch(/vendor=acme.*lab-base.*software-key/);
    const [profile] = (await ownerApi<{ items: { spaces: string[]; match: unknown }[] }>(master.url, TOKEN, 'GET', '/api/v1/bootstrap/profiles')).items;
    expect(profile).toMatchObject({ match: { vendor: 'acme' }, spaces: [expect.stringMatching(/^spc_/)] });
    // Edited in place (PATCH): a class condition and a lower priority; the Spaces stay.
    await page.getByRole('button', { name: 'Edit acme-sensors' }).click();
    const edit = page.getByRole('region', { name: 'Edit profile acme-sensors' });
    await edit.getByLabel('Device class (empty: any)').fill('sensor');
    await edit.getByLabel('Priority (lower is tried first)').fill('10');
    await edit.getByRole('button', { name: 'Save profile' }).click();
    await expect.poll(() => row.textContent(), { timeout: LIVE }).toMatch(/^acme-sensors10vendor=acme, class=sensorlab-base/);
    expect((await ownerApi<{ items: unknown[] }>(master.url, TOKEN, 'GET', '/api/v1/bootstrap/profiles')).items).toEqual([{ ...profile, priority: 10, match: { vendor: 'acme', class: 'sensor' } }]);
    // The CLI changes the same profile: the class condition dropped, the vendor kept.
    const cli = { TIPS_URL: master.url, TIPS_TOKEN: TOKEN, TIPS_CONFIG: join(dir, 'no-config.json') };
    const updated = tips(['bootstrap', 'profile', 'update', 'acme-sensors', '--class', '', '--json'], cli);
    expect(updated.status, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ priority: 10, match: { vendor: 'acme' } });
    await expect.poll(() => row.textContent(), { timeout: LIVE }).toMatch(/^acme-sensors10vendor=acmelab-base/);
    await accessible('onboarding');
    await shot('onboarding');
  });

  it('LwM2M: the page issues a PSK (shown once), a device registers with it over DTLS, is read, takes a firmware update through object 5, has a read and a firmware update queued in queue mode and answered at its next update, live; the key is revoked (Z5 S13)', async () => {
    await nav('LwM2M');
    await expect.poll(() => page.getByText('No LwM2M device has registered').isVisible(), { timeout: LIVE }).toBe(true);
    await accessible('empty LwM2M');
    // A sensor in a Phase 2 Space whose Glaze is a small firmware signed with the server-held release key.
    const sensor = await ownerApi<{ id: string }>(master.url, TOKEN, 'POST', '/api/v1/metals', { name: 'sensor-1', interfaces: [{ name: 'eth0', mac: '02:c0:00:00:00:51', type: 'ethernet', pxe: false }] });
    await ownerApi(master.url, TOKEN, 'POST', '/api/v1/spaces', { name: 'sensors', phase: 2 });
    await ownerApi(master.url, TOKEN, 'POST', '/api/v1/spaces/sensors/members', { metal: 'sensor-1', interfaces: ['eth0'] });
    const fw = await fetch(`${master.url}/api/v1/glazes?name=fw.bin&version=2&spaces=sensors`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: randomBytes(3000) });
    expect(fw.status, await fw.clone().text()).toBe(201);
    await ownerApi(master.url, TOKEN, 'POST', '/api/v1/glazes/fw.bin@2/manifest/sign', { key: 'release-key', sequenceNumber: 1, vendorDomain: 'tips.local', classInfo: 'sensor', component: 'firmware', uri: 'coaps://master/fw.bin' });
    await ownerApi(master.url, TOKEN, 'PATCH', '/api/v1/spaces/sensors', { glaze: 'fw.bin@2' });

    await page.getByLabel('Metal (name or TIPS ID)').fill('sensor-1');
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await expect.poll(() => page.getByTestId('lwm2m-registration').textContent(), { timeout: LIVE }).toContain('Not registered over LwM2M yet');
    await page.getByRole('button', { name: 'Issue a PSK' }).click();
    await expect.poll(() => page.getByTestId('psk-identity').isVisible(), { timeout: LIVE }).toBe(true);
    const identity = (await page.getByTestId('psk-identity').textContent())!.trim();
    const key = (await page.getByTestId('psk-key').textContent())!.trim();
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    await accessible('LwM2M device, key shown');

    // The device: the testbed's LwM2M client over DTLS-PSK with the identity and key the page showed.
    const releaseKey = (await ownerApi<{ items: { name: string; publicKey: string }[] }>(master.url, TOKEN, 'GET', '/api/v1/keys')).items.find((k) => k.name === 'release-key')!;
    const link = await createDtlsClient({ host: new URL(master.url).hostname, port: COAP_PORT, psk: { identity, key: new Uint8Array(Buffer.from(key, 'hex')) } });
    const sim = new Lwm2mSim({ endpoint: sensor.id, link, lifetime: 300, trust: [{ ...importKey(releaseKey.publicKey), name: 'release-key' }], blockSize: 512, ackTimeoutMs: 1000 });
    sims.push(sim);
    expect(await sim.register('1.1')).toBe('2.01');
    const reg = page.getByTestId('lwm2m-registration');
    await expect.poll(() => reg.textContent(), { timeout: LIVE }).toContain('Online');
    expect(await reg.textContent()).toMatch(/300 s.*U/);

    await page.getByLabel('Object, instance or resource path').fill('/3/0/9');
    await page.getByRole('button', { name: 'Read', exact: true }).click();
    await expect.poll(() => page.getByRole('table', { name: 'Values read' }).locator('tr[data-path="/3/0/9"]').textContent(), { timeout: LIVE }).toBe('/3/0/987');

    await page.getByLabel("Glaze (signed, the Glaze of one of the metal's Spaces)").selectOption({ label: 'fw.bin@2' });
    await page.getByRole('button', { name: 'Update firmware' }).click();
    await expect.poll(() => page.getByTestId('lwm2m-firmware').textContent(), { timeout: 30_000 }).toContain('succeeded');
    expect(sim.firmwareImage?.length).toBe(3000);

    // Queue mode (binding UQ, Core §6.5): the device sleeps between registration updates. A read from the
    // page is queued (202: said in words, not an error) and listed as queued; the device's next update
    // sends it, and the page shows the answer — live, without a reload.
    expect(await sim.update(['b=UQ'])).toBe('2.04');
    await expect.poll(() => reg.textContent(), { timeout: LIVE }).toContain('Queue mode');
    const queue = page.getByRole('table', { name: 'Queued operations' });
    const queueRead = async (path: string) => {
      await page.getByLabel('Object, instance or resource path').fill(path);
      await page.getByRole('button', { name: 'Read', exact: true }).click();
      const notice = page.getByTestId('lwm2m-read-queued');
      await expect.poll(() => notice.textContent(), { timeout: LIVE }).toMatch(new RegExp(`^Read of ${path} queued, will be sent when the device next updates \\(operation lwq_`));
      const id = (await notice.locator('.mono').textContent())!.trim();
      const row = queue.locator(`tr[data-op="${id}"]`);
      await expect.poll(() => row.textContent(), { timeout: LIVE }).toMatch(new RegExp(`^read ${path}.*Queued.*sent when the device next updates`));
      return row;
    };
    const asleep = await queueRead('/3/0/9');
    expect(await page.getByRole('table', { name: 'Values read' }).count()).toBe(0);
    // A firmware update is queued the same way (checked now, delivered at the update).
    await page.getByRole('button', { name: 'Update firmware' }).click();
    const fwNotice = page.getByTestId('lwm2m-firmware-queued');
    await expect.poll(() => fwNotice.textContent(), { timeout: LIVE }).toMatch(/^Firmware update queued, will be sent when the device next updates/);
    const fwRow = queue.locator(`tr[data-op="${(await fwNotice.locator('.mono').textContent())!.trim()}"]`);
    await expect.poll(() => fwRow.textContent(), { timeout: LIVE }).toMatch(/^firmware fw\.bin@2.*Queued/);
    sim.firmwareImage = undefined;
    expect(await sim.update()).toBe('2.04');
    await expect.poll(() => asleep.textContent(), { timeout: LIVE }).toMatch(/^read \/3\/0\/9.*Done\/3\/0\/9 = 87/);
    await expect.poll(() => fwRow.textContent(), { timeout: LIVE }).toMatch(/^firmware fw\.bin@2.*Donefirmware job fwj_\S+ started/);
    const queuedJob = /firmware job (fwj_\S+) started/.exec((await fwRow.textContent())!)![1];
    await expect.poll(async () => (await ownerApi<Lwm2mFirmware>(master.url, TOKEN, 'GET', '/api/v1/metals/sensor-1/lwm2m')).firmware, { timeout: 30_000 }).toMatchObject({ jobId: queuedJob, status: 'succeeded' });
    expect(sim.firmwareImage).toHaveLength(3000);
    // Out of queue mode (an Update with b=U): what was queued goes out at that very update.
    const leaving = await queueRead('/3/0/0');
    await shot('lwm2m-device');
    expect(await sim.update(['b=U'])).toBe('2.04');
    await expect.poll(() => leaving.textContent(), { timeout: LIVE }).toMatch(/^read \/3\/0\/0.*Done\/3\/0\/0 = \S/);
    await expect.poll(() => page.getByTestId('lwm2m-read-queued').textContent(), { timeout: LIVE }).toMatch(/^Read of \/3\/0\/0 was sent at the device's update: done/);
    await expect.poll(() => reg.textContent(), { timeout: LIVE }).toContain('Online');
    await accessible('LwM2M device');

    // Revoked after a confirmation: the key is gone from the page and never shown again.
    await page.getByRole('button', { name: `Revoke ${identity}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click();
    await expect.poll(() => page.getByRole('table', { name: 'Pre-shared keys' }).locator(`tr[data-identity="${identity}"]`).textContent(), { timeout: LIVE }).toContain('Revoked');
    expect(await page.content()).not.toContain(key);
    expect((await ownerApi<{ items: { revokedAt: string | null }[] }>(master.url, TOKEN, 'GET', '/api/v1/metals/sensor-1/psk')).items).toEqual([expect.objectContaining({ revokedAt: expect.any(String) })]);

    await page.getByRole('link', { name: 'All LwM2M devices' }).click();
    const row = page.getByRole('table', { name: 'LwM2M devices' }).locator('tr[data-metal="sensor-1"]');
    await expect.poll(() => row.textContent(), { timeout: LIVE }).toMatch(/Online.*300 s.*U.*succeeded/);
    const listed = tips(['lwm2m', 'list', '--json'], { TIPS_URL: master.url, TIPS_TOKEN: TOKEN, TIPS_CONFIG: join(dir, 'no-config.json') });
    expect(listed.status, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ metalName: 'sensor-1', online: true, lifetime: 300, firmware: expect.objectContaining({ status: 'succeeded' }) })]);
    await accessible('LwM2M devices');
    await shot('lwm2m');
  });

  it('installations and a tamper event, sent the way a metal sends them (EST enrollment, then mTLS with a PoP token), show on the metal page and in the tamper events (S7 T14 T16)', async () => {
    // pi-2: declared and in the sensors Space (Glaze fw.bin@2); it talks to the master from the cloud network.
    const pi2 = await ownerApi<{ id: string }>(master.url, TOKEN, 'POST', '/api/v1/metals', { name: 'pi-2', interfaces: [{ name: 'eth0', mac: '02:c0:00:00:00:52', type: 'ethernet', pxe: true }] });
    await ownerApi(master.url, TOKEN, 'POST', '/api/v1/spaces/sensors/members', { metal: 'pi-2', interfaces: ['eth0'] });
    const space = await ownerApi<{ id: string; glazeId: string }>(master.url, TOKEN, 'GET', '/api/v1/spaces/sensors');
    writeFileSync(join(dir, 'root.pem'), (await ownerApi<{ rootPem: string }>(master.url, TOKEN, 'GET', '/api/v1/enrollment/ca')).rootPem);
    const secret = await ownerApi<{ id: string; secret: string }>(master.url, TOKEN, 'POST', '/api/v1/enrollment/secrets', { metal: pi2.id });
    const file = (name: string) => join(dir, name);
    const openssl = (args: string[]) => {
      const r = spawnSync('openssl', args, { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    };
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('pi2.key'), '-subj', `/CN=${pi2.id}`, '-addext', `subjectAltName=URI:urn:tips:metal:${pi2.id}`, '-outform', 'DER', '-out', file('pi2.der')]);
    openssl(['base64', '-in', file('pi2.der'), '-out', file('pi2.b64')]);
    const https = `https://${ADDR.masterIp}:${TLS_PORT}`;
    const curl = async (args: string[]) => (await lab.cloud.execOk('curl', ['-sS', '--cacert', file('root.pem'), ...args], { timeoutMs: 30_000 })).stdout;
    expect(await curl(['-u', `${secret.id}:${secret.secret}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${file('pi2.b64')}`, '-o', file('pi2.p7.b64'), '-w', '%{http_code}', `${https}/.well-known/est/simpleenroll`])).toBe('200');
    openssl(['base64', '-d', '-in', file('pi2.p7.b64'), '-out', file('pi2.p7.der')]);
    openssl(['pkcs7', '-inform', 'DER', '-in', file('pi2.p7.der'), '-print_certs', '-out', file('pi2.pem')]);
    const mtls = ['--cert', file('pi2.pem'), '--key', file('pi2.key')];
    const { cwt } = JSON.parse(await curl([...mtls, '-X', 'POST', `${https}/api/metal/v1/tokens/issue`])) as { cwt: string };
    expect(cwt).toBeTruthy();
    const at = new Date().toISOString();
    writeFileSync(file('report.cose'), signInstallReport({ glazeId: space.glazeId, spaceId: space.id, result: 'installed', reason: null, sequence: 1, at }, readFileSync(file('pi2.key'), 'utf8')));
    const pop = ['-H', `authorization: PoP ${cwt}`];
    expect(await curl([...mtls, ...pop, '-H', 'content-type: application/cose', '--data-binary', `@${file('report.cose')}`, '-o', '/dev/null', '-w', '%{http_code}', `${https}/api/metal/v1/reports`])).toBe('204');
    const change = { path: '/var/lib/dpkg/status', kind: 'package', detail: 'installed outside TIPS: tiny 1.0 (all)' };
    expect(await curl([...mtls, ...pop, '-H', 'content-type: application/json', '--data-binary', JSON.stringify({ changes: [change] }), '-o', '/dev/null', '-w', '%{http_code}', `${https}/api/metal/v1/tamper`])).toBe('202');

    await nav('Tamper');
    const event = page.getByRole('table', { name: 'Tamper events' }).locator('tr[data-metal="pi-2"]');
    await expect.poll(() => event.textContent(), { timeout: LIVE }).toContain('/var/lib/dpkg/status');
    expect(await event.textContent()).toMatch(/package.*tiny 1\.0 \(all\).*Blocked/);
    await accessible('tamper events');
    await shot('tamper-events');

    await event.getByRole('link', { name: 'pi-2' }).click();
    const installed = page.getByRole('table', { name: 'Installed Glazes per Space' });
    await expect.poll(() => installed.textContent(), { timeout: LIVE }).toContain('sensors');
    expect(await installed.textContent()).toMatch(/fw\.bin.*1/);
    expect(await page.getByRole('table', { name: 'Report history' }).textContent()).toMatch(new RegExp(`installed.*${space.glazeId} seq 1.*sensors`));
    expect(await page.getByRole('table', { name: 'Events of this metal' }).textContent()).toContain('/var/lib/dpkg/status');
    expect(await page.getByTestId('metal-status').textContent()).toContain('Blocked');
    await accessible('metal with installations');
    await shot('metal-installations');
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

  it('is readable on a phone: the fleet, onboarding and LwM2M views fit a 390 px viewport without sideways scrolling of the page', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    await p.goto(master.url);
    await p.getByLabel('API token').fill(TOKEN);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => p.locator('tr[data-metal="pi-1"]').isVisible(), { timeout: LIVE }).toBe(true);
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    if (SHOTS) await p.screenshot({ path: join(SHOTS, 'fleet-phone.png'), fullPage: true });
    // The onboarding and LwM2M views too (their wide tables scroll inside their own box).
    for (const [path, heading] of [['/onboarding', 'Onboarding'], ['/lwm2m', 'Constrained devices (LwM2M)']] as const) {
      await p.goto(`${master.url}${path}`);
      await expect.poll(() => p.getByRole('heading', { name: heading, level: 1 }).isVisible(), { timeout: LIVE }).toBe(true);
      expect(await p.evaluate(() => document.documentElement.scrollWidth), path).toBeLessThanOrEqual(390);
    }
    await phone.close();
  });
});
