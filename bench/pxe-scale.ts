/**
 * bench/pxe-scale: N simulated metals boot at once through one gateway (issue 8, "PXE at scale").
 *
 *   node --import tsx bench/pxe-scale.ts      # TIPS_BENCH_METALS (100), TIPS_BENCH_KERNEL_MB (8),
 *                                             # TIPS_BENCH_INITRD_MB (32) to change
 *
 * Network namespaces (@tips/testbed, the e2e GatewayLab): the real tips-master in a cloud namespace,
 * the real tips-gateway (DHCP, nftables, TFTP, HTTP boot), and N metal namespaces on its LAN bridge.
 * Every metal declared with a default Phase 1 Space whose Glaze is signed. Each metal, all at once:
 *   1. busybox udhcpc as the PXE ROM (vendor class PXEClient) → lease, next-server, undionly.kpxe;
 *   2. atftp fetches undionly.kpxe over TFTP with blksize 1428 (as iPXE's ROM loader would), retried
 *      until answered (the gateway answers once the row is Active);
 *   3. udhcpc again with user class "iPXE" → the script URL;
 *   4. curl fetches the per-metal script (must hold tips.token=), then the kernel and the initrd
 *      it names — "reached the installer" when the initrd is in.
 * Then, in the same run, the same N metals fetch kernel + initrd at once from the gateway again
 * and from nginx (Debian nginx-light, in a namespace of its own on the same bridge, serving the
 * same files): boot-file throughput of the gateway against nginx.
 * The installer files are the real ones when `${TIPS_CACHE_DIR:-~/.cache/tips}/installer/current`
 * exists, otherwise random files of the sizes above.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Namespace, runOk } from '@tips/testbed';
import { GatewayLab, randomMac } from '../e2e/gateway-topology.ts';

const N = Number(process.env.TIPS_BENCH_METALS ?? 100);
const KERNEL_MB = Number(process.env.TIPS_BENCH_KERNEL_MB ?? 8);
const INITRD_MB = Number(process.env.TIPS_BENCH_INITRD_MB ?? 32);
const ADDR = { masterIp: '10.95.0.1', gatewayUplinkIp: '10.95.0.2', gatewayLanIp: '10.74.0.1' };
const LAN = ADDR.gatewayLanIp;
const NGINX_IP = '10.74.0.2';
const PORT = 8080;

function installerDir(work: string): { dir: string; real: boolean } {
  const real = join(process.env.TIPS_CACHE_DIR || join(homedir(), '.cache', 'tips'), 'installer', 'current');
  if (existsSync(join(real, 'vmlinuz')) && existsSync(join(real, 'initrd.img'))) return { dir: real, real: true };
  const dir = join(work, 'installer');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(KERNEL_MB * 1024 * 1024));
  writeFileSync(join(dir, 'initrd.img'), randomBytes(INITRD_MB * 1024 * 1024));
  return { dir, real: false };
}

// One metal's boot, in its namespace. Prints "<step> <unix seconds>" lines and "fail <step>" on failure.
const BOOT_SH = `
set -u
t() { echo "$1 $(date +%s.%N)"; }
t start
udhcpc -q -n -f -i eth0 -s "$SCRIPT" -t 6 -T 2 -V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000 >/dev/null 2>&1 || { echo "fail dhcp"; exit 1; }
t dhcp
ok=
for i in $(seq 1 60); do
  if atftp --option "blksize 1428" --option "tsize enable" -g -r undionly.kpxe -l "$OUT.kpxe" "$LAN" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.5
done
[ -n "$ok" ] || { echo "fail tftp"; exit 1; }
t tftp
udhcpc -q -n -f -i eth0 -s "$SCRIPT" -t 6 -T 2 -V PXEClient:Arch:00000:UNDI:002001 -x 0x4d:69505845 >/dev/null 2>&1 || { echo "fail dhcp2"; exit 1; }
t dhcp2
curl -sf -m 30 "http://$LAN:${PORT}/boot/script.ipxe" -o "$OUT.ipxe" || { echo "fail script"; exit 1; }
grep -q 'tips.token=' "$OUT.ipxe" || { echo "fail script_token"; exit 1; }
t script
kernel=$(sed -n 's/^kernel \\([^ ]*\\).*/\\1/p' "$OUT.ipxe")
initrd=$(sed -n 's/^initrd \\([^ ]*\\).*/\\1/p' "$OUT.ipxe")
curl -sf -m 300 "$kernel" -o /dev/null || { echo "fail kernel"; exit 1; }
t kernel
curl -sf -m 300 "$initrd" -o /dev/null || { echo "fail initrd"; exit 1; }
t installer
rm -f "$OUT".*
`;

const FETCH_SH = `
t() { echo "$1 $(date +%s.%N)"; }
t start
curl -sf -m 600 "$BASE/boot/installer/vmlinuz" -o /dev/null && curl -sf -m 600 "$BASE/boot/installer/initrd.img" -o /dev/null && t done || echo "fail fetch"
`;

interface Times {
  [step: string]: number;
}

function parse(out: string): { times: Times; fail?: string } {
  const times: Times = {};
  let fail: string | undefined;
  for (const l of out.split('\n')) {
    const [k, v] = l.trim().split(' ');
    if (k === 'fail') fail = v;
    else if (k && v) times[k] = Number(v);
  }
  return { times, ...(fail ? { fail } : {}) };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

async function fetchAll(metals: Namespace[], base: string): Promise<{ seconds: number; ok: number }> {
  const t0 = performance.now();
  const rs = await Promise.all(metals.map((ns) => ns.exec('env', [`BASE=${base}`, 'sh', '-c', FETCH_SH], { timeoutMs: 900_000 })));
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, ok: rs.filter((r) => r.stdout.includes('done')).length };
}

async function main(): Promise<void> {
  // The lab runs the bins from dist/: build them from this tree first.
  await runOk('node', [join(import.meta.dirname, '..', 'scripts', 'build.mjs')], { timeoutMs: 300_000 });
  const work = mkdtempSync(join(tmpdir(), 'tips-pxe-bench-'));
  const inst = installerDir(work);
  const bytesPerMetal = statSync(join(inst.dir, 'vmlinuz')).size + statSync(join(inst.dir, 'initrd.img')).size;
  console.log(`${N} metals; installer ${inst.real ? 'real' : 'synthetic'}: ${(bytesPerMetal / 1048576).toFixed(1)} MiB per metal`);
  const lab = await GatewayLab.start(
    'pxe',
    ADDR,
    ['--boot-http-port', String(PORT), '--installer-dir', inst.dir, '--pending-timeout', '120s', '--tftp-max-transfers', '256'],
    { bootServices: true },
  );
  try {
    // The default Phase 1 Space delivers a signed Glaze.
    const glaze = (await (
      await fetch(`${lab.masterUrl}/api/v1/glazes?name=pxe-bench-os&spaces=${lab.phase1Space}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${lab.adminToken}`, 'content-type': 'application/octet-stream' },
        body: randomBytes(64 * 1024),
      })
    ).json()) as { id: string };
    const key = await lab.api<{ id: string }>('POST', '/api/v1/keys', { name: 'pxe-bench-key', serverHeld: true });
    await lab.api('POST', `/api/v1/glazes/${glaze.id}/manifest/sign`, { key: key.id, sequenceNumber: 1, vendorDomain: 'example.com', classInfo: 'bench', component: 'disk', uri: `tips:glaze:${glaze.id}` });
    await lab.api('PATCH', `/api/v1/spaces/${lab.phase1Space}`, { glaze: glaze.id });

    // nginx on the same bridge, serving the same files.
    const peer = await lab.topo.namespace('nginx');
    await lab.topo.veth(peer, 'eth0', lab.gw, 'ngx0');
    await lab.gw.enslave('ngx0', 'br0');
    await peer.addAddress('eth0', `${NGINX_IP}/24`);
    // Where br_netfilter is loaded, bridged frames would cross the gateway's forward chain (which
    // drops LAN traffic it does not route); metal ↔ nginx is plain L2 on the bridge, as on a switch.
    await lab.gw.sysctl('net.bridge.bridge-nf-call-iptables', '0').catch(() => undefined);
    const www = join(work, 'www');
    mkdirSync(join(www, 'boot'), { recursive: true });
    await runOk('ln', ['-s', inst.dir, join(www, 'boot', 'installer')]);
    const conf = join(work, 'nginx.conf');
    writeFileSync(
      conf,
      `user root;\nworker_processes 2;\npid ${work}/nginx.pid;\nerror_log ${work}/nginx.err;\ndaemon off;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  sendfile on;\n  client_body_temp_path ${work}/ngx-body;\n  proxy_temp_path ${work}/ngx-proxy;\n  fastcgi_temp_path ${work}/ngx-fcgi;\n  uwsgi_temp_path ${work}/ngx-uwsgi;\n  scgi_temp_path ${work}/ngx-scgi;\n  server { listen ${NGINX_IP}:${PORT}; root ${www}; disable_symlinks off; }\n}\n`,
    );
    peer.spawn('nginx', ['-c', conf], { label: 'nginx' });

    console.log('creating metals…');
    const metals: Namespace[] = [];
    for (let i = 0; i < N; i++) {
      const mac = randomMac();
      await lab.declareMetal(`pxe-${i}`, mac);
      const ns = await lab.topo.namespace(`m${i}`);
      await lab.topo.veth(ns, 'eth0', lab.gw, `p${i}`, { aMac: mac });
      await lab.gw.enslave(`p${i}`, 'br0');
      metals.push(ns);
    }
    const load0 = loadavg()[0]!;
    console.log(`booting ${N} metals at once (load average ${load0.toFixed(1)})…`);
    const t0 = performance.now();
    const boots = await Promise.all(
      metals.map((ns, i) => ns.exec('env', [`SCRIPT=${lab.udhcpcScript}`, `EVENTS=${join(work, `m${i}.events`)}`, `LAN=${LAN}`, `OUT=/tmp/pxe-bench-${process.pid}-${i}`, 'sh', '-c', BOOT_SH], { timeoutMs: 900_000 })),
    );
    const wall = (performance.now() - t0) / 1000;
    const parsed = boots.map((b) => parse(b.stdout));
    const done = parsed.filter((p) => p.times.installer !== undefined);
    const fails = new Map<string, number>();
    for (const p of parsed) if (p.fail) fails.set(p.fail, (fails.get(p.fail) ?? 0) + 1);
    const start = Math.min(...parsed.map((p) => p.times.start ?? Number.POSITIVE_INFINITY));
    const at = (step: string) => done.map((p) => p.times[step]! - start);
    const load1 = loadavg()[0]!;

    const gwFetch = await fetchAll(metals, `http://${LAN}:${PORT}`);
    const ngxFetch = await fetchAll(metals, `http://${NGINX_IP}:${PORT}`);
    const mbps = (f: { seconds: number; ok: number }) => (f.ok * bytesPerMetal) / 1048576 / f.seconds;

    const cpu = cpus()[0]?.model ?? 'unknown';
    console.log('');
    console.log(`machine: ${cpus().length} × ${cpu}, node ${process.version}, ${new Date().toISOString()}, load average ${load0.toFixed(1)} → ${load1.toFixed(1)}`);
    console.log(`reached the installer: ${done.length}/${N} in ${wall.toFixed(1)} s${fails.size ? ` (failures: ${[...fails].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`);
    for (const step of ['dhcp', 'tftp', 'dhcp2', 'script', 'kernel', 'installer']) {
      const xs = at(step);
      if (xs.length) console.log(`  ${step.padEnd(9)} p50 ${pct(xs, 50).toFixed(2)} s  p99 ${pct(xs, 99).toFixed(2)} s  max ${Math.max(...xs).toFixed(2)} s`);
    }
    console.log(`boot files (kernel + initrd) to ${N} metals at once:`);
    console.log(`  gateway: ${gwFetch.ok}/${N} in ${gwFetch.seconds.toFixed(1)} s = ${mbps(gwFetch).toFixed(0)} MiB/s`);
    console.log(`  nginx:   ${ngxFetch.ok}/${N} in ${ngxFetch.seconds.toFixed(1)} s = ${mbps(ngxFetch).toFixed(0)} MiB/s`);
    console.log(`  ratio gateway/nginx: ${(mbps(gwFetch) / mbps(ngxFetch)).toFixed(2)}`);
  } finally {
    await lab.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
