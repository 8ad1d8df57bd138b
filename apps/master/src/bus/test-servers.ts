// Tests only: real brokers for the bus adapters — a NATS cluster of Debian's nats-server and
// Debian's Mosquitto — on free loopback ports, in a temp directory removed by stop().
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

async function until(what: string, ok: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not ready within ${ms} ms`);
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

export interface NatsNode {
  url: string;
  process: ChildProcess;
  /** kill -9 (what a crashed node looks like to its peers and clients). */
  kill(): Promise<void>;
}

export interface NatsCluster {
  nodes: NatsNode[];
  /** `--bus` for this cluster: every node's URL, comma-separated. */
  busUrl: string;
  stop(): Promise<void>;
}

/** Starts `size` nats-server nodes routed into one cluster; resolves when every node sees all the others. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tips-nats-'));
  const ports = await Promise.all(Array.from({ length: size * 3 }, () => freePort()));
  const client = ports.slice(0, size);
  const cluster = ports.slice(size, 2 * size);
  const monitor = ports.slice(2 * size);
  const nodes: NatsNode[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const conf = join(dir, `n${i}.conf`);
      writeFileSync(
        conf,
        [
          `server_name: tips-n${i}`,
          `listen: 127.0.0.1:${client[i]}`,
          `http: 127.0.0.1:${monitor[i]}`,
          'cluster {',
          '  name: tips',
          `  listen: 127.0.0.1:${cluster[i]}`,
          `  routes: [${cluster
            .filter((_, j) => j !== i)
            .map((p) => `nats-route://127.0.0.1:${p}`)
            .join(', ')}]`,
          '}',
          '',
        ].join('\n'),
      );
      const p = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      p.stderr!.on('data', (d: Buffer) => {
        log = (log + d.toString()).slice(-4000);
      });
      p.once('exit', (code) => {
        if (code !== null && code !== 0) process.stderr.write(`nats-server n${i} exited ${code}: ${log}\n`);
      });
      nodes.push({
        url: `nats://127.0.0.1:${client[i]}`,
        process: p,
        kill: async () => {
          p.kill('SIGKILL');
          await exited(p);
        },
      });
    }
    for (let i = 0; i < size; i++) {
      await until(`nats-server n${i}`, () => accepts(client[i]!));
      await until(`nats-server n${i} routes`, async () => {
        const r = await fetch(`http://127.0.0.1:${monitor[i]}/routez`).catch(() => undefined);
        return ((r?.ok ? ((await r.json()) as { num_routes?: number }) : {}).num_routes ?? 0) >= size - 1;
      });
    }
  } catch (err) {
    for (const n of nodes) await n.kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    nodes,
    busUrl: nodes.map((n) => n.url).join(','),
    stop: async () => {
      for (const n of nodes) await n.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Mosquitto {
  url: string;
  port: number;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** Debian's Mosquitto on a free loopback port, anonymous (the bus test's broker; production gives it users and TLS). */
export async function startMosquitto(port?: number): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'tips-mosquitto-'));
  const p0 = port ?? (await freePort());
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${p0} 127.0.0.1`, 'allow_anonymous true', 'persistence false', ''].join('\n'));
  const p = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    await until('mosquitto', () => accepts(p0));
  } catch (err) {
    p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const kill = async () => {
    p.kill('SIGKILL');
    await exited(p);
  };
  return {
    url: `mqtt://127.0.0.1:${p0}`,
    port: p0,
    kill,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
