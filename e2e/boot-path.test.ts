// Issue 8, test 1: clients we did not write walk the Phase 1 boot path through the real gateway and
// the real master, over network namespaces: busybox udhcpc as the PXE ROM (vendor class PXEClient)
// and as iPXE (user class 77 "iPXE"), tftp-hpa and atftp (blksize negotiation) for the first stage,
// curl for the per-metal script. An undeclared MAC, a Blocked metal and a Pending interface get none.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { until } from '@tips/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayLab, type Metal, randomMac } from './gateway-topology.ts';

const ADDR = { masterIp: '10.96.0.1', gatewayUplinkIp: '10.96.0.2', gatewayLanIp: '10.76.0.1' };
const LAN = ADDR.gatewayLanIp;
const BOOT_PORT = 8080;
const UNDIONLY = '/usr/lib/ipxe/undionly.kpxe';
const PXE_BIOS = ['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000'];
/** Option 77 = "iPXE" as iPXE sends it (raw text). */
const IPXE_USER_CLASS = ['-x', `0x4d:${Buffer.from('iPXE').toString('hex')}`];

const GLAZE_BYTES = randomBytes(256 * 1024);
let lab: GatewayLab;

function bound(m: Metal): string[] {
  return readFileSync(m.events, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('bound '));
}

/** tftp-hpa, plain RFC 1350: the bytes received, or null. */
async function tftpHpa(m: Metal, file: string, timeoutSec = 4): Promise<Buffer | null> {
  const out = `/tmp/tips-boot-${process.pid}-${randomBytes(4).toString('hex')}`;
  const r = await m.ns.exec('sh', ['-c', `timeout ${timeoutSec} tftp -v -m binary "$1" -c get "$2" "$3"; cat "$3" 2>/dev/null | base64 -w0; rm -f "$3"`, 'tftp', LAN, file, out], {
    timeoutMs: (timeoutSec + 10) * 1000,
  });
  const data = Buffer.from(r.stdout.split('\n').at(-1) ?? '', 'base64');
  return r.stdout.includes('Received') && data.length > 0 ? data : null;
}

/** atftp with blksize 1428 (and tsize): the trace and the bytes received. */
async function atftp(m: Metal, file: string, timeoutSec = 6): Promise<{ trace: string; data: Buffer | null }> {
  const out = `/tmp/tips-boot-${process.pid}-${randomBytes(4).toString('hex')}`;
  const r = await m.ns.exec(
    'sh',
    ['-c', `timeout ${timeoutSec} atftp --trace --option "blksize 1428" --option "tsize enable" -g -r "$2" -l "$3" "$1" >"$3.log" 2>&1; code=$?; cat "$3.log"; echo "exit=$code"; base64 -w0 "$3" 2>/dev/null; echo; rm -f "$3" "$3.log"`, 'atftp', LAN, file, out],
    { timeoutMs: (timeoutSec + 10) * 1000 },
  );
  const lines = r.stdout.trimEnd().split('\n');
  const exit = lines.findIndex((l) => l.startsWith('exit='));
  const ok = lines[exit] === 'exit=0';
  return { trace: lines.slice(0, exit).join('\n'), data: ok ? Buffer.from(lines[exit + 1] ?? '', 'base64') : null };
}

/** curl from the metal: exit code and body (exit 52 = connection closed without an answer, 28 = timeout). */
async function curl(m: Metal, path: string, timeoutSec = 4): Promise<{ code: number; body: string }> {
  const r = await m.ns.exec('curl', ['-s', '-m', String(timeoutSec), `http://${LAN}:${BOOT_PORT}${path}`], { timeoutMs: (timeoutSec + 5) * 1000 });
  return { code: r.code, body: r.stdout };
}

/** One udhcpc exchange with iPXE's user class, run to completion on an interface: the bound line. */
async function ipxeDhcp(m: Metal, iface = 'eth0'): Promise<string> {
  const before = bound(m).length;
  const r = await m.ns.exec('env', [`EVENTS=${m.events}`, 'udhcpc', '-q', '-n', '-f', '-i', iface, '-s', lab.udhcpcScript, '-t', '4', '-T', '1', ...PXE_BIOS, ...IPXE_USER_CLASS], {
    timeoutMs: 30_000,
  });
  expect(r.code, r.stderr).toBe(0);
  const lines = bound(m);
  expect(lines.length).toBeGreaterThan(before);
  return lines.at(-1)!;
}

describe('T13 Phase 1 boot path: udhcpc, tftp-hpa, atftp and curl through the real gateway and master (netns)', () => {
  let active: Metal;
  let activeMac: string;

  beforeAll(async () => {
    lab = await GatewayLab.start('boot', ADDR, ['--boot-http-port', String(BOOT_PORT), '--pending-timeout', '60s'], { bootServices: true });
    // The default Phase 1 Space delivers a Glaze.
    const glaze = await (
      await fetch(`${lab.masterUrl}/api/v1/glazes?name=boot-path-os&spaces=${lab.phase1Space}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${lab.adminToken}`, 'content-type': 'application/octet-stream' },
        body: GLAZE_BYTES,
      })
    ).json();
    const glazeId = (glaze as { id: string }).id;
    // Signed by an owner key (hobby mode: the master holds it): Phase 1 only pins a signed Glaze.
    const key = await lab.api<{ id: string }>('POST', '/api/v1/keys', { name: 'boot-path-key', serverHeld: true });
    await lab.api('POST', `/api/v1/glazes/${glazeId}/manifest/sign`, {
      key: key.id,
      sequenceNumber: 1,
      vendorDomain: 'example.com',
      classInfo: 'boot-path',
      component: 'disk',
      uri: `tips:glaze:${glazeId}`,
    });
    await lab.api('PATCH', `/api/v1/spaces/${lab.phase1Space}`, { glaze: glazeId });
    activeMac = randomMac();
    await lab.declareMetal('boot-active', activeMac);
  }, 240_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('the PXE ROM (vendor class PXEClient) gets next-server and undionly.kpxe, then fetches it over TFTP: tftp-hpa, and atftp negotiating blksize 1428', async () => {
    active = await lab.startMetal([activeMac], { udhcpcArgs: PXE_BIOS });
    const ip = await lab.leased(active);
    // udhcpc prints "lease obtained" before its hook script has written the event: poll for the line.
    const first = await until('the hook recorded the bound event', async () => bound(active)[0], 10_000);
    expect(first).toContain(`bound eth0 ${ip} siaddr=${LAN} tftp=${LAN} bootfile=undionly.kpxe boot_file=undionly.kpxe`);
    await lab.rowInState(activeMac, 'active');
    const expected = readFileSync(UNDIONLY);
    // The row turns Active a moment before the gateway reads it; a PXE ROM retries its request the same way.
    const plain = await until('tftp-hpa first stage', async () => (await tftpHpa(active, 'undionly.kpxe')) ?? undefined, 30_000);
    expect(plain.equals(expected)).toBe(true);
    const negotiated = await atftp(active, 'undionly.kpxe');
    expect(negotiated.trace).toMatch(/received OACK <[^>]*blksize: 1428/);
    expect(negotiated.trace).toMatch(/DATA <block: 1, size 1428>/);
    expect(negotiated.data?.equals(expected)).toBe(true);
    // Nothing but the boot programs: a traversal is refused with an error, not a file.
    const traversal = await atftp(active, '../../etc/passwd');
    expect(traversal.data).toBeNull();
    expect(traversal.trace).toContain('error received from server <only boot programs by plain name are served>');
  });

  it('iPXE (user class 77 "iPXE") gets the script URL as boot file; curl fetches the per-metal script and the boot programs over HTTP', async () => {
    active.dhcp[0]!.signal('SIGTERM');
    await active.dhcp[0]!.exited;
    const line = await ipxeDhcp(active);
    expect(line).toContain(`bootfile=http://${LAN}:${BOOT_PORT}/boot/script.ipxe`);
    const script = await curl(active, '/boot/script.ipxe');
    expect(script.code).toBe(0);
    expect(script.body.startsWith('#!ipxe')).toBe(true);
    expect(script.body).toMatch(/tips\.token=[A-Za-z0-9_-]{43}/);
    expect(script.body).toContain(`http://${LAN}:${BOOT_PORT}/boot/installer/vmlinuz`);
    const efi = await active.ns.exec('sh', ['-c', `curl -s -m 5 http://${LAN}:${BOOT_PORT}/boot/undionly.kpxe | sha256sum`]);
    const want = await active.ns.exec('sh', ['-c', `sha256sum < ${UNDIONLY}`]);
    expect(efi.stdout).toBe(want.stdout);
  });

  it("the installer's requests go through the gateway with the attested MAC: work (token from the script), the Glaze (cached, resumable), the report", async () => {
    const script = await curl(active, '/boot/script.ipxe');
    const token = /tips\.token=([A-Za-z0-9_-]+)/.exec(script.body)![1]!;
    const jobId = /tips\.job=([A-Za-z0-9_-]+)/.exec(script.body)![1]!;
    const installerKey = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64url');
    const post = (path: string, type: string, body: string) =>
      active.ns.exec('curl', ['-s', '-m', '10', '-w', '\n%{http_code}', '-H', `content-type: ${type}`, '--data-binary', body, `http://${LAN}:${BOOT_PORT}${path}`], { timeoutMs: 20_000 });
    const answer = (r: { stdout: string }) => ({ status: Number(r.stdout.slice(r.stdout.lastIndexOf('\n') + 1)), body: r.stdout.slice(0, r.stdout.lastIndexOf('\n')) });
    // A wrong token is the master's 401, relayed; nothing is claimed.
    const wrong = answer(await post('/phase1/work', 'application/json', JSON.stringify({ token: randomBytes(32).toString('base64url'), installerKey })));
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body).error.code).toBe('phase1_token_invalid');
    const work = answer(await post('/phase1/work', 'application/json', JSON.stringify({ token, installerKey })));
    expect(work.status, work.body).toBe(200);
    const w = JSON.parse(work.body) as { jobId: string; glaze: { sha256: string; size: number }; glazePath: string; reportPath: string };
    expect(w.jobId).toBe(jobId);
    const sha = createHash('sha256').update(GLAZE_BYTES).digest('hex');
    expect(w.glaze).toMatchObject({ sha256: sha, size: GLAZE_BYTES.length });
    // The Glaze: whole (fills the gateway's cache), then resumed from the middle, then whole again from the cache.
    const digest = async (range?: string) =>
      (await active.ns.exec('sh', ['-c', `curl -s -f -m 20 ${range ? `-r ${range}` : ''} http://${LAN}:${BOOT_PORT}${w.glazePath} | sha256sum`])).stdout.split(' ')[0];
    expect(await digest()).toBe(sha);
    expect(await digest('100000-')).toBe(createHash('sha256').update(GLAZE_BYTES.subarray(100_000)).digest('hex'));
    const cached = readFileSync(`${lab.gatewayDataDir}/boot-cache/glazes/${sha}`);
    expect(cached.equals(GLAZE_BYTES)).toBe(true);
    expect(await digest()).toBe(sha);
    // A report that is not the installer's COSE_Sign1 is refused by the master (relayed), the job stays installing.
    const report = answer(await post(w.reportPath, 'application/cose', 'not-cose'));
    expect(report.status).toBeGreaterThanOrEqual(400);
    const job = await lab.api<{ state: string }>('GET', `/api/v1/provisioning/jobs/${jobId}`);
    expect(job.state).toBe('installing');
  });

  it('an undeclared MAC becomes Blocked and gets none of it: no further DHCP answer, no TFTP, no HTTP', async () => {
    const mac = randomMac();
    const m = await lab.startMetal([mac], { udhcpcArgs: PXE_BIOS });
    await lab.leased(m);
    expect((await lab.rowInState(mac, 'blocked')).reason).toBe('unknown_mac');
    m.dhcp[0]!.signal('SIGTERM');
    await m.dhcp[0]!.exited;
    const again = await m.ns.exec('env', [`EVENTS=${m.events}`, 'udhcpc', '-q', '-n', '-f', '-i', 'eth0', '-s', lab.udhcpcScript, '-t', '3', '-T', '1', ...PXE_BIOS, ...IPXE_USER_CLASS], { timeoutMs: 30_000 });
    expect(again.code).not.toBe(0);
    expect(bound(m).length).toBe(1);
    expect(await tftpHpa(m, 'undionly.kpxe')).toBeNull();
    expect((await atftp(m, 'undionly.kpxe')).data).toBeNull();
    const script = await curl(m, '/boot/script.ipxe');
    expect(script.code).not.toBe(0);
    expect(script.body).toBe('');
  });

  it('a declared metal the operator Blocked gets none of it either', async () => {
    const mac = randomMac();
    const metal = await lab.declareMetal('boot-blocked', mac);
    const m = await lab.startMetal([mac], { udhcpcArgs: PXE_BIOS });
    await lab.leased(m);
    await lab.rowInState(mac, 'active');
    await lab.api('POST', `/api/v1/metals/${metal.id}/block`, { reason: 'stolen' });
    await lab.rowInState(mac, 'blocked');
    expect(await tftpHpa(m, 'undionly.kpxe')).toBeNull();
    const script = await curl(m, '/boot/script.ipxe');
    expect(script.code).not.toBe(0);
    expect(script.body).toBe('');
    m.dhcp[0]!.signal('SIGTERM');
    await m.dhcp[0]!.exited;
    const again = await m.ns.exec('env', [`EVENTS=${m.events}`, 'udhcpc', '-q', '-n', '-f', '-i', 'eth0', '-s', lab.udhcpcScript, '-t', '3', '-T', '1', ...PXE_BIOS, ...IPXE_USER_CLASS], { timeoutMs: 30_000 });
    expect(again.code).not.toBe(0);
  });

  it('with the master unreachable: the Active metal gets its cached script; a Pending interface, which the firewall lets reach the boot ports, gets no answer from the services', async () => {
    await lab.master.stop();
    const cached = await curl(active, '/boot/script.ipxe');
    expect(cached.code).toBe(0);
    expect(cached.body).toMatch(/tips\.token=[A-Za-z0-9_-]{43}/);

    const mac = randomMac();
    const m = await lab.startMetal([mac], { udhcpcArgs: PXE_BIOS });
    await lab.leased(m);
    expect((await lab.rowInState(mac, 'pending')).tipsId).toBeNull();
    // The connection is accepted (nft admits Pending to the boot port) and closed without a byte:
    // curl's exit 52 "empty reply", not a timeout.
    const script = await curl(m, '/boot/script.ipxe');
    expect(script).toEqual({ code: 52, body: '' });
    expect(await tftpHpa(m, 'undionly.kpxe')).toBeNull();
  });
});
