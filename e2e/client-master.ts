// A real tips-master with the operator's CA (made by `tips ca init`) and its HTTPS listener, and the
// files the installer would write for a metal (contract B), for the tips-client e2e tests.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, type RunningMaster, startMaster, tips } from './helpers.ts';

/** The tips-client bundle the e2e tests run (what the .deb ships). */
export const CLIENT_BUNDLE = join(ROOT, 'apps/client/dist/tips-client.cjs');

/** Runs the tips-client bundle under `node` (Debian's Node 18 argv, or this node). */
export function runClient(node: string[], args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(node[0]!, [...node.slice(1), CLIENT_BUNDLE, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `tips` and throws unless it succeeded; `--json` answers are parsed. */
// biome-ignore lint/suspicious/noExplicitAny: callers read the fields of whichever answer they asked for
export function tipsOk(env: NodeJS.ProcessEnv, args: string[]): any {
  const r = tips(args, env);
  if (r.status !== 0) throw new Error(`tips ${args.join(' ')} → ${r.status}\n${r.stderr}`);
  return args.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
}

export interface ClientTestMaster {
  master: RunningMaster;
  admin: string;
  /** https://localhost:<port> */
  httpsUrl: string;
  /** The root CA file a metal trusts. */
  caFile: string;
  api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>;
}

export async function startClientTestMaster(work: string, extraArgs: string[] = []): Promise<ClientTestMaster> {
  const admin = `tips_${randomBytes(24).toString('base64url')}`;
  const init = tips(['ca', 'init', '--out', join(work, 'offline'), '--name', 'Client E2E'], {});
  if (init.status !== 0) throw new Error(`tips ca init: ${init.stderr}`);
  mkdirSync(join(work, 'master-ca'));
  for (const f of ['root.pem', 'intermediate.pem', 'intermediate-key.pem']) copyFileSync(join(work, 'offline', f), join(work, 'master-ca', f));
  const master = await startMaster(['--data-dir', join(work, 'data'), '--ca-dir', join(work, 'master-ca'), '--tls-hostname', 'localhost', ...extraArgs], { TIPS_BOOTSTRAP_ADMIN_TOKEN: admin });
  const deadline = Date.now() + 20_000;
  while (!/TLS listening on (\S+)/.test(master.output())) {
    if (Date.now() > deadline) throw new Error(`no TLS listener: ${master.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const httpsUrl = /TLS listening on (\S+)/.exec(master.output())![1]!.replace('127.0.0.1', 'localhost');
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${master.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  };
  return { master, admin, httpsUrl, caFile: join(work, 'offline', 'root.pem'), api };
}

/** Writes /etc/tips-client/{config.json, enrollment.json (0600), ca.pem} of one metal under `etc`. */
export function writeClientFiles(
  etc: string,
  m: ClientTestMaster,
  metal: { id: string; vendorId?: string | null; classId?: string | null },
  secret: { id: string; secret: string } | undefined,
  stateDir: string,
): string {
  mkdirSync(etc, { recursive: true });
  copyFileSync(m.caFile, join(etc, 'ca.pem'));
  const config = {
    masterUrl: m.httpsUrl,
    estUrl: `${m.httpsUrl}/.well-known/est`,
    caFile: join(etc, 'ca.pem'),
    tipsId: metal.id,
    metalId: metal.id,
    enrollmentFile: join(etc, 'enrollment.json'),
    stateDir,
    vendorId: metal.vendorId ?? null,
    classId: metal.classId ?? null,
  };
  writeFileSync(join(etc, 'config.json'), JSON.stringify(config, null, 2));
  if (secret) writeFileSync(join(etc, 'enrollment.json'), JSON.stringify({ secretId: secret.id, secret: secret.secret }), { mode: 0o600 });
  return join(etc, 'config.json');
}
