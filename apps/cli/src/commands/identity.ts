import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { createIntermediateCa, createRootCa, exportCa, serialFrom } from '@tips/trust';
import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { print, table } from '../output.ts';

const DAY = 86_400_000;

/** Durable write of a new file: temp, fsync, rename; refuses to replace an existing one. */
export function writeNewFile(path: string, data: string, mode: number): void {
  if (existsSync(path)) throw new CliError('file_exists', `${path} already exists; refusing to overwrite it`, EXIT.conflict);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export interface CaInitResult {
  dir: string;
  root: string;
  rootKey: string;
  intermediate: string;
  intermediateKey: string;
  rootNotAfter: string;
  intermediateNotAfter: string;
}

/** Makes a root (key to keep offline) and an intermediate for the master, as four PEM files in `dir`. */
export async function caInit(dir: string, opts: { name: string; rootYears: number; intermediateYears: number; now?: Date }): Promise<CaInitResult> {
  const out = resolve(dir);
  const files = { root: join(out, 'root.pem'), rootKey: join(out, 'root-key.pem'), intermediate: join(out, 'intermediate.pem'), intermediateKey: join(out, 'intermediate-key.pem') };
  for (const f of Object.values(files)) if (existsSync(f)) throw new CliError('file_exists', `${f} already exists; refusing to overwrite a CA`, EXIT.conflict);
  const now = opts.now ?? new Date();
  const notBefore = new Date(now.getTime() - 60_000);
  const root = await createRootCa({ commonName: `${opts.name} root CA`, notBefore, notAfter: new Date(now.getTime() + opts.rootYears * 365 * DAY), serial: serialFrom(randomBytes(16)) });
  const intermediate = await createIntermediateCa(root, {
    commonName: `${opts.name} intermediate CA`,
    notBefore,
    notAfter: new Date(now.getTime() + opts.intermediateYears * 365 * DAY),
    serial: serialFrom(randomBytes(16)),
  });
  const r = await exportCa(root);
  const i = await exportCa(intermediate);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  writeNewFile(files.rootKey, r.keyPem, 0o600);
  writeNewFile(files.root, r.certPem, 0o644);
  writeNewFile(files.intermediateKey, i.keyPem, 0o600);
  writeNewFile(files.intermediate, i.certPem, 0o644);
  return { dir: out, ...files, rootNotAfter: root.cert.notAfter.toISOString(), intermediateNotAfter: intermediate.cert.notAfter.toISOString() };
}

const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError('bad_option', `${name} must be a positive integer, got "${v}"`, EXIT.usage);
  return Number(v);
};

interface SecretOut {
  id: string;
  scope: { kind: string; id: string };
  maxUses: number;
  uses: number;
  expiresAt: string;
  revokedAt: string | null;
  secret?: string;
}
interface CertOut {
  serial: string;
  subject: { kind: string; id: string };
  notAfter: string;
  status: string;
  issuedVia: string;
  revokeReason: string | null;
}

/** `tips ca …` and `tips enrollment …`: the CA, enrollment secrets, issued certificates. */
export function registerIdentityCommands(program: Command): void {
  const ca = program.command('ca').description('the TIPS certificate authority (S6)');
  jsonOption(
    ca
      .command('init')
      .description('create a root CA (keep root-key.pem offline) and an intermediate for the master (give the master root.pem, intermediate.pem, intermediate-key.pem via --ca-dir)')
      .requiredOption('--out <dir>', 'directory to write the four PEM files to (created; existing files are never overwritten)')
      .option('--name <name>', 'CA name in the certificate subjects', 'TIPS')
      .option('--root-years <n>', 'root lifetime in years', positiveInt('--root-years'), 20)
      .option('--intermediate-years <n>', 'intermediate lifetime in years', positiveInt('--intermediate-years'), 5),
  ).action(
    action(async (opts: { out: string; name: string; rootYears: number; intermediateYears: number; json?: boolean }) => {
      const r = await caInit(opts.out, opts);
      print(r, !!opts.json, (v: CaInitResult) =>
        [
          `created a TIPS CA in ${v.dir}`,
          `  root:         ${v.root} (valid until ${v.rootNotAfter})`,
          `  root key:     ${v.rootKey}  <- move this offline; the master must never hold it`,
          `  intermediate: ${v.intermediate} + ${v.intermediateKey} (valid until ${v.intermediateNotAfter})`,
          `start the master with: tips-master --ca-dir <dir with root.pem, intermediate.pem, intermediate-key.pem>`,
        ].join('\n'),
      );
    }),
  );
  jsonOption(ca.command('show').description("print the master's root and intermediate certificates (PEM)")).action(
    action(async (opts: { json?: boolean }) => {
      const r = await api().call<{ rootPem: string; intermediatePem: string }>('GET', 'api/v1/enrollment/ca');
      print(r, !!opts.json, (v: typeof r) => `${v.rootPem}${v.intermediatePem}`.trimEnd());
    }),
  );

  const enrollment = program.command('enrollment').description('enrollment secrets and the certificates issued to metals (EST, S6)');
  const secret = enrollment.command('secret').description('enrollment secrets (shown once, stored hashed)');
  jsonOption(
    secret
      .command('create')
      .description('create an enrollment secret for one metal or one Phase 1 Space')
      .option('--metal <metal>', 'the metal it may enroll')
      .option('--space <space>', 'a Phase 1 Space: it may enroll any metal of that Space')
      .option('--max-uses <n>', 'how many enrollments it allows', positiveInt('--max-uses'), 1)
      .option('--expires-in <minutes>', 'minutes until it expires', positiveInt('--expires-in'), 1440),
  ).action(
    action(async (opts: { metal?: string; space?: string; maxUses: number; expiresIn: number; json?: boolean }) => {
      if ((opts.metal === undefined) === (opts.space === undefined)) throw new CliError('bad_option', 'give exactly one of --metal or --space', EXIT.usage);
      const body = { ...(opts.metal ? { metal: opts.metal } : { space: opts.space }), maxUses: opts.maxUses, expiresInMinutes: opts.expiresIn };
      const r = await api().call<SecretOut>('POST', 'api/v1/enrollment/secrets', body);
      print(r, !!opts.json, (v: SecretOut) =>
        [`enrollment secret ${v.id} for ${v.scope.kind} ${v.scope.id}: ${v.maxUses} use(s), expires ${v.expiresAt}`, `secret (shown once): ${v.secret}`, `EST: curl -u ${v.id}:<secret> …/.well-known/est/simpleenroll`].join('\n'),
      );
    }),
  );
  jsonOption(secret.command('list').description('list your enrollment secrets')).action(
    action(async (opts: { json?: boolean }) => {
      const r = await api().call<{ items: SecretOut[] }>('GET', 'api/v1/enrollment/secrets');
      print(r.items, !!opts.json, (v: SecretOut[]) =>
        table(
          ['ID', 'FOR', 'USES', 'EXPIRES', 'REVOKED'],
          v.map((s) => [s.id, `${s.scope.kind} ${s.scope.id}`, `${s.uses}/${s.maxUses}`, s.expiresAt, s.revokedAt ?? '-']),
        ),
      );
    }),
  );
  secret
    .command('revoke <id>')
    .description('revoke an enrollment secret')
    .action(
      action(async (id: string) => {
        await api().call('DELETE', `api/v1/enrollment/secrets/${encodeURIComponent(id)}`);
        process.stdout.write(`revoked ${id}\n`);
      }),
    );
  jsonOption(enrollment.command('certs').description('certificates issued to your metals').option('--metal <metal>', 'only this metal')).action(
    action(async (opts: { metal?: string; json?: boolean }) => {
      const r = await api().call<{ items: CertOut[] }>('GET', `api/v1/enrollment/certificates${opts.metal ? `?metal=${encodeURIComponent(opts.metal)}` : ''}`);
      print(r.items, !!opts.json, (v: CertOut[]) =>
        table(
          ['SERIAL', 'SUBJECT', 'STATUS', 'VIA', 'NOT AFTER'],
          v.map((c) => [c.serial, `${c.subject.kind} ${c.subject.id}`, c.status + (c.revokeReason ? ` (${c.revokeReason})` : ''), c.issuedVia, c.notAfter]),
        ),
      );
    }),
  );
  jsonOption(enrollment.command('revoke <metal>').description("revoke every certificate of a metal: its next mTLS request is refused")).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const r = await api().call<{ revoked: number }>('POST', `api/v1/enrollment/metals/${encodeURIComponent(ref)}/revoke`);
      print(r, !!opts.json, (v: typeof r) => `revoked ${v.revoked} certificate(s) of ${ref}`);
    }),
  );
}
