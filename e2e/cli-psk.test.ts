import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestMaster } from '../apps/master/src/testing.ts';
import { cliAgainstTestMaster } from './helpers.ts';

// The real `tips` CLI issuing, listing and revoking DTLS PSKs of a metal on an in-process master.
let m: TestMaster;
let tips: Awaited<ReturnType<typeof cliAgainstTestMaster>>['run'];
beforeAll(async () => {
  ({ m, run: tips } = await cliAgainstTestMaster());
  await m.services.metals.create(m.alice.id, { name: 'sensor-7', labels: {}, interfaces: [{ name: 'eth0', mac: '02:00:00:00:77:01', type: 'ethernet' }] });
});
afterAll(async () => m?.close());

describe('S13 tips metal psk issue|list|revoke', () => {
  it('issues a key once, lists without it, revokes; the master then refuses that identity', async () => {
    const help = await tips(['metal', 'psk', '--help']);
    expect(help.stdout).toMatch(/issue[^\n]*<metal>[\s\S]*list[^\n]*<metal>[\s\S]*revoke[^\n]*<metal> <identity>/);
    const issued = await tips(['metal', 'psk', 'issue', 'sensor-7', '--json']);
    expect(issued.code, issued.stderr).toBe(0);
    const cred = JSON.parse(issued.stdout) as { identity: string; key: string };
    expect(cred.key).toMatch(/^[0-9a-f]{32}$/);
    expect(Buffer.from((await m.services.constrained.pskLookup(cred.identity))!).toString('hex')).toBe(cred.key);
    const human = await tips(['metal', 'psk', 'issue', 'sensor-7']);
    expect(human.stdout).toMatch(/^identity: \S+\.2\nkey: +[0-9a-f]{32}\n/);

    const list = await tips(['metal', 'psk', 'list', 'sensor-7', '--json']);
    expect(JSON.parse(list.stdout).map((p: { identity: string }) => p.identity)).toHaveLength(2);
    expect(list.stdout).not.toContain(cred.key);

    const revoked = await tips(['metal', 'psk', 'revoke', 'sensor-7', cred.identity]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(await m.services.constrained.pskLookup(cred.identity)).toBeUndefined();
    expect((await tips(['metal', 'psk', 'list', 'sensor-7'])).stdout).toMatch(new RegExp(`${cred.identity.replace('.', '\\.')}  issued \\S+  revoked`));
    const again = await tips(['metal', 'psk', 'revoke', 'sensor-7', cred.identity, '--json']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('psk_not_found');
    expect((await tips(['metal', 'psk', 'issue', 'no-such-metal'])).code).not.toBe(0);
  });
});
