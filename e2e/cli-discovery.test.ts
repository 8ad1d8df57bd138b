import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway } from '../apps/master/src/domains/gateways/test-client.ts';
import type { TestMaster } from '../apps/master/src/testing.ts';
import { cliAgainstTestMaster, startMaster, tips as tipsCli } from './helpers.ts';

// The real `tips` CLI against an in-process master (its test fixtures give owners and tokens).
let m: TestMaster;
let url: string;
let tips: Awaited<ReturnType<typeof cliAgainstTestMaster>>['run'];
beforeAll(async () => {
  ({ m, url, run: tips } = await cliAgainstTestMaster());
});
afterAll(async () => m.close());

describe('T6 T9 T11 T16 tips gateway / discovery / metal block', () => {
  it('adds a gateway, printing its ID, the one-time token and the exact enroll command; lists, shows and removes it', async () => {
    const add = await tips(['gateway', 'add', '--name', 'gw-lab']);
    expect(add.code, add.stderr).toBe(0);
    const token = /^ {2}(tge_[A-Za-z0-9_-]{43})$/m.exec(add.stdout)?.[1];
    expect(token).toBeDefined();
    expect(add.stdout).toMatch(/created gateway gw-lab with ID gwy_[0-9a-z]{26}/);
    // No --public-url on this in-process master: the commands name the address the CLI reached it at.
    expect(add.stdout).toContain(`tips-gateway enroll --master ${url} --token ${token} --data-dir /var/lib/tips-gateway --name gw-lab`);
    const list = await tips(['gateway', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ name: 'gw-lab', enrolled: false, connected: false })]);
    const show = await tips(['gateway', 'show', 'gw-lab']);
    expect(show.stdout).toContain('enrolled:   no (token expires');
    expect((await tips(['gateway', 'remove', 'gw-lab'])).stdout).toBe('removed gateway gw-lab\n');
    const gone = await tips(['gateway', 'show', 'gw-lab']);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toBe('error: gateway_not_found: no gateway "gw-lab" (field: gateway)\n');
  });

  it('lists failures (table, --json, filters, --jsonl) and blocks and unblocks a metal', async () => {
    const gw = await TestGateway.enroll(m.app, m.alice.token, 'gw-hall');
    await m.services.metals.create(m.alice.id, { name: 'pi', interfaces: [{ name: 'eth0', mac: '02:dd:00:00:00:01', type: 'ethernet', pxe: true }] });
    await gw.register({ mac: '02:dd:00:00:00:01', ip: '10.77.0.5', gatewayInterface: 'lan0', interfaceType: 'ethernet' });
    await gw.register({ mac: '02:dd:00:00:00:99', ip: '10.77.0.6', gatewayInterface: 'lan0' });
    await gw.register({ mac: '02:dd:00:00:00:99', ip: '10.77.0.6', gatewayInterface: 'lan0' });

    const human = await tips(['discovery', 'failures']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.split('\n')[0]).toMatch(/^AT\s+GATEWAY\s+IFACE\s+MAC\s+IP\s+TYPE\s+REASON\s+TIPS ID$/);
    expect(human.stdout).toMatch(/02:dd:00:00:00:01\s+10\.77\.0\.5\s+ethernet\s+no_default_space\s+mtl_/);
    // The table names the gateway; the ID stays in --json.
    expect(human.stdout.split('\n').slice(1, -1).every((l) => /^\S+\s+gw-hall\s+lan0\s/.test(l))).toBe(true);
    expect(human.stdout).not.toContain(gw.id);

    const json = JSON.parse((await tips(['discovery', 'failures', '--json', '--gateway', 'gw-hall', '--mac', '02:DD:00:00:00:99'])).stdout);
    expect(json).toHaveLength(2);
    expect(json.every((f: { reason: string; gatewayId: string; gatewayName: string }) => f.reason === 'unknown_mac' && f.gatewayId === gw.id && f.gatewayName === 'gw-hall')).toBe(true);

    const jsonl = await tips(['discovery', 'failures', '--jsonl', '--since', '2000-01-01T00:00:00Z']);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    const lines = jsonl.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.mac)).toEqual(['02:dd:00:00:00:01', '02:dd:00:00:00:99', '02:dd:00:00:00:99']);

    const bad = await tips(['discovery', 'failures', '--reason', 'bored']);
    expect(bad.code).toBe(6);
    expect(bad.stderr).toContain('(field: reason)');
    expect((await tips(['discovery', 'failures'], m.bob.token)).stdout).toBe('(none)\n');

    const block = await tips(['metal', 'block', 'pi', '--reason', 'tamper']);
    expect(block.code, block.stderr).toBe(0);
    expect(block.stdout).toMatch(/^blocked metal pi \(mtl_[0-9a-z]{26}\): 02:dd:00:00:00:01 at 1 gateway\(s\)\n$/);
    expect((await gw.register({ mac: '02:dd:00:00:00:01', ip: '10.77.0.5', gatewayInterface: 'lan0' })).json().reason).toBe('metal_blocked');
    expect(JSON.parse((await tips(['metal', 'unblock', 'pi', '--json'])).stdout)).toMatchObject({ macs: ['02:dd:00:00:00:01'], gateways: 1 });
    expect((await tips(['metal', 'unblock', 'pi'])).code).toBe(5);
  });

  it("T5 prints the enroll commands with the master's public URL (--public-url) and the HTTPS --ca form, not the CLI's own URL", async () => {
    const work = mkdtempSync(join(tmpdir(), 'tips-public-url-'));
    const admin = `tips_${randomBytes(24).toString('base64url')}`;
    const master = await startMaster(['--data-dir', join(work, 'data'), '--public-url', 'http://tips.example.test:8080/', '--tls-hostname', 'tips.example.test'], {
      TIPS_BOOTSTRAP_ADMIN_TOKEN: admin,
    });
    try {
      const tlsPort = /TLS listening on https:\/\/[^:]+:(\d+)/.exec(master.output())?.[1];
      expect(tlsPort).toBeDefined();
      const env = { TIPS_URL: master.url, TIPS_TOKEN: admin, TIPS_CONFIG: join(work, 'no-config.json') };
      const add = tipsCli(['gateway', 'add', '--name', 'gw-site'], env);
      expect(add.status, add.stderr).toBe(0);
      const token = /^ {2}(tge_[A-Za-z0-9_-]{43})$/m.exec(add.stdout)?.[1];
      const tail = `--token ${token} --data-dir /var/lib/tips-gateway --name gw-site`;
      expect(add.stdout).toContain(`  tips-gateway enroll --master http://tips.example.test:8080 ${tail}\n`);
      expect(add.stdout).toContain(`  tips-gateway enroll --master https://tips.example.test:${tlsPort} --ca tips-ca.pem ${tail}\n`);
      expect(add.stdout).toContain('tips ca show > tips-ca.pem');
      expect(add.stdout).not.toContain(master.url);
      const json = JSON.parse(tipsCli(['gateway', 'add', '--name', 'gw-2', '--json'], env).stdout);
      expect(json.enroll).toMatchObject({ master: 'http://tips.example.test:8080', httpsMaster: `https://tips.example.test:${tlsPort}` });
      expect(json.enroll.command).toContain(json.enrollmentToken);
    } finally {
      await master.stop();
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('T3 T4 tips metal update refuses to break a Space membership unless --drop-memberships; space add --help states the PXE rule', async () => {
    await m.services.metals.create(m.alice.id, { name: 'pi-m', interfaces: [{ name: 'eth0', mac: '02:dd:00:00:01:01', type: 'ethernet', pxe: true }] });
    await m.services.spaces.create(m.alice.id, { name: 'os-m', phase: 1 });
    await m.services.spaces.addMember(m.alice.id, 'os-m', { metal: 'pi-m', interfaces: ['eth0'], default: true });
    const refused = await tips(['metal', 'update', 'pi-m', '--iface', 'eth1=02:dd:00:00:01:02,ethernet,pxe']);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/^error: interfaces_in_use: .*"os-m" \(its default Space\): eth0 would vanish.*--drop-memberships.*\n$/);
    expect((await m.services.spaces.defaultSpaceOf((await m.services.metals.get(m.alice.id, 'pi-m')).id))?.spaceName).toBe('os-m');
    expect((await tips(['metal', 'update', 'pi-m', '--name', 'x', '--drop-memberships'])).code).toBe(2);
    const dropped = await tips(['metal', 'update', 'pi-m', '--iface', 'eth1=02:dd:00:00:01:02,ethernet,pxe', '--drop-memberships']);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(await m.services.spaces.membershipsOfMetal((await m.services.metals.get(m.alice.id, 'pi-m')).id)).toEqual([]);
    const help = await tips(['space', 'add', '--help']);
    expect(help.stdout).toContain('phase1_needs_one_pxe_interface');
    expect(help.stdout).toMatch(/marked\s+pxe/);
  });

  it('documents every command with --help', async () => {
    for (const args of [['gateway', 'add'], ['discovery', 'failures'], ['metal', 'block']]) {
      const r = await tips([...args, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Usage: tips');
    }
  });
});
