// Real traffic for the containment tests (nft.netns.test.ts, e2e/containment.test.ts): services
// that answer with the address and port they were reached on and the peer they saw, and probes that
// say whether a packet got through. Everything runs inside @tips/testbed namespaces.
import type { Namespace, NsProcess } from '@tips/testbed';

/** Size of the file the TFTP service sends: two blocks, so the transfer needs the client's ACKs. */
export const TFTP_FILE_BYTES = 1000;

// Specs: http:ADDR:PORT (IPv4 or IPv6 ADDR; answers "ADDR:PORT from PEER"), udp:ADDR:PORT (echoes the same line),
// tftp:ADDR:PORT (RFC 1350 read requests, data sent from a port of its own as §4 says).
const SERVICES_JS = `
const http = require('node:http'), dgram = require('node:dgram');
const FILE = Buffer.alloc(${TFTP_FILE_BYTES}, 0x42);
const specs = process.argv.slice(1);
let left = specs.length;
const up = () => { if (--left === 0) console.log('ready'); };
for (const spec of specs) {
  const kind = spec.slice(0, spec.indexOf(':'));
  const addr = spec.slice(spec.indexOf(':') + 1, spec.lastIndexOf(':'));
  const port = spec.slice(spec.lastIndexOf(':') + 1);
  if (kind === 'http') {
    http.createServer((req, res) => res.end(req.socket.localAddress + ':' + req.socket.localPort + ' from ' + req.socket.remoteAddress))
      .listen({ port: Number(port), host: addr, ipv6Only: addr.includes(':') }, up);
  } else if (kind === 'udp') {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    s.on('message', (m, r) => s.send(addr + ':' + port + ' from ' + r.address, r.port, r.address));
    s.bind(Number(port), addr, up);
  } else {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    s.on('message', (m, r) => {
      if (m.readUInt16BE(0) !== 1) return;
      const t = dgram.createSocket('udp4');
      let block = 1;
      const send = () => t.send(Buffer.concat([Buffer.from([0, 3, block >> 8, block & 255]), FILE.subarray((block - 1) * 512, block * 512)]), r.port, r.address);
      t.on('message', (a) => {
        if (a.readUInt16BE(0) !== 4 || a.readUInt16BE(2) !== block) return;
        if (block * 512 > FILE.length) return t.close();
        block++;
        send();
      });
      t.bind(0, addr, send);
      setTimeout(() => { try { t.close(); } catch {} }, 5000).unref();
    });
    s.bind(Number(port), addr, up);
  }
}
`;

const UDP_PROBE_JS = `
const [host, port, fromAddr, fromPort, ms] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m) => { console.log(m.toString()); process.exit(0); });
s.bind(Number(fromPort), fromAddr || undefined, () => {
  s.setBroadcast(true);
  s.send('probe', Number(port), host);
  setTimeout(() => process.exit(3), Number(ms));
});
`;

/** Starts the services in the namespace and resolves once all are bound. */
export async function startServices(ns: Namespace, specs: string[]): Promise<NsProcess> {
  const p = ns.spawn('node', ['-e', SERVICES_JS, ...specs], { label: `services@${ns.name}` });
  await p.waitFor(/ready/, 30_000);
  return p;
}

/** HTTP GET from inside the namespace (optionally from one source address): the answer, or null. */
export async function httpFrom(ns: Namespace, host: string, port: number, opts: { from?: string; timeoutSec?: number } = {}): Promise<string | null> {
  const t = opts.timeoutSec ?? 1.5;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  const r = await ns.exec('curl', ['-s', '-g', '-m', String(t), ...(opts.from ? ['--interface', opts.from] : []), url], { timeoutMs: (t + 5) * 1000 });
  return r.code === 0 ? r.stdout : null;
}

/** One UDP datagram (from port `fromPort`, 0 = any) and the echo: the answer, or null. */
export async function udpFrom(ns: Namespace, host: string, port: number, opts: { from?: string; fromPort?: number; timeoutMs?: number } = {}): Promise<string | null> {
  const ms = opts.timeoutMs ?? 1500;
  const r = await ns.exec('node', ['-e', UDP_PROBE_JS, host, String(port), opts.from ?? '', String(opts.fromPort ?? 0), String(ms)], { timeoutMs: ms + 10_000 });
  return r.code === 0 ? r.stdout.trim() : null;
}

/** busybox tftp fetching the TFTP service's file: the number of bytes received, or null. */
export async function tftpFrom(ns: Namespace, host: string, file = 'boot.bin', timeoutSec = 3): Promise<number | null> {
  const out = `/tmp/tips-tftp-${process.pid}-${Math.random().toString(16).slice(2)}`;
  const r = await ns.exec('sh', ['-c', `timeout ${timeoutSec} busybox tftp -g -r "$1" -l "$2" "$3" && wc -c < "$2"; rm -f "$2"`, 'tftp', file, out, host], {
    timeoutMs: (timeoutSec + 5) * 1000,
  });
  const n = Number.parseInt(r.stdout, 10);
  return Number.isNaN(n) ? null : n;
}

/** One ICMP echo from the namespace. */
export async function pingFrom(ns: Namespace, host: string): Promise<boolean> {
  return (await ns.exec('busybox', ['ping', '-c', '1', '-W', '1', host])).code === 0;
}
