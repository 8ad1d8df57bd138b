/**
 * The agent's tamper path, run inside a metal's network namespace by e2e/tamper.test.ts: the T16
 * watch over the metal's root, and a report to the master's `POST /api/metal/v1/tamper` with the
 * metal's mTLS identity and a PoP token from `POST /api/metal/v1/tokens/issue`.
 *   node --import tsx e2e/tamper-runner.ts <config.json>
 * config: { stateDir, root, managedPaths, masterUrl, caFile, certFile, keyFile }
 * Prints `WATCHING` once the baseline is in place, then `REPORTED <status> <body>` per report.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import pino from 'pino';
import { startTamperWatch } from '../apps/client/src/tamper/index.ts';

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  stateDir: string;
  root: string;
  managedPaths: string[];
  masterUrl: string;
  caFile: string;
  certFile: string;
  keyFile: string;
};
const tls = { ca: readFileSync(config.caFile), cert: readFileSync(config.certFile), key: readFileSync(config.keyFile) };
const log = pino({ level: 'info' }, pino.destination(2));

function call(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, config.masterUrl), { method, headers, ...tls, agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const watch = await startTamperWatch({
  stateDir: config.stateDir,
  managedPaths: config.managedPaths,
  dpkgRoot: config.root,
  key: createPrivateKey(tls.key),
  debounceMs: 200,
  fullCheckIntervalMs: 30_000,
  retryMs: 1_000,
  log,
  async onTamper(changes) {
    const issued = await call('POST', '/api/metal/v1/tokens/issue', {});
    if (issued.status !== 201) throw new Error(`token issue → ${issued.status} ${issued.body}`);
    const { cwt } = JSON.parse(issued.body) as { cwt: string };
    const r = await call('POST', '/api/metal/v1/tamper', { authorization: `PoP ${cwt}`, 'content-type': 'application/json' }, JSON.stringify({ changes }));
    process.stdout.write(`REPORTED ${r.status} ${r.body}\n`);
    if (r.status !== 202) throw new Error(`tamper report → ${r.status} ${r.body}`);
  },
});
process.stdout.write('WATCHING\n');
process.on('SIGTERM', () => {
  watch.stop();
  process.exit(0);
});
