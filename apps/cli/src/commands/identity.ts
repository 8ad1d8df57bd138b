import { createHash, createPublicKey, type KeyObject, sign as nodeSign, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CoseKey } from '@tips/suit';
import { suit } from '../suit-lib.ts';
import type { loadCa } from '@tips/trust';
import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { writeFileDurably } from '../files.ts';
import { loadConfig } from '../config.ts';
import { CliError, EXIT, exitCodeForStatus } from '../errors.ts';
import { listOptions, pageOptions, print, printPages } from '../output.ts';

const DAY = 86_400_000;

/** Durable write of a new file: temp, fsync, rename; refuses to replace an existing one. */
export function writeNewFile(path: string, data: string | Uint8Array, mode: number): void {
  if (existsSync(path)) throw new CliError('file_exists', `${path} already exists; refusing to overwrite it`, EXIT.conflict);
  writeFileDurably(path, data, mode);
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
  // @tips/trust loads an X.509 library that costs more than a whole `tips --help`: only when needed.
  const { createIntermediateCa, createRootCa, exportCa, serialFrom } = await import('@tips/trust');
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

/** Issues a new intermediate from an offline root directory (rotation, B4). */
export async function caIntermediate(rootDir: string, outDir: string, opts: { name: string; intermediateYears: number; now?: Date }) {
  const src = resolve(rootDir);
  const out = resolve(outDir);
  const { createIntermediateCa, exportCa, loadCa, serialFrom } = await import('@tips/trust');
  let root: Awaited<ReturnType<typeof loadCa>>;
  try {
    root = await loadCa({ certPem: readFileSync(join(src, 'root.pem'), 'utf8'), keyPem: readFileSync(join(src, 'root-key.pem'), 'utf8') });
  } catch (e) {
    throw new CliError('root_unreadable', `cannot load root.pem and root-key.pem from ${src}: ${(e as Error).message}`, EXIT.invalid);
  }
  const now = opts.now ?? new Date();
  const intermediate = await createIntermediateCa(root, {
    commonName: `${opts.name} intermediate CA`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.intermediateYears * 365 * DAY),
    serial: serialFrom(randomBytes(16)),
  });
  const i = await exportCa(intermediate);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const files = { root: join(out, 'root.pem'), intermediate: join(out, 'intermediate.pem'), intermediateKey: join(out, 'intermediate-key.pem') };
  for (const f of Object.values(files)) if (existsSync(f)) throw new CliError('file_exists', `${f} already exists; refusing to overwrite it`, EXIT.conflict);
  writeNewFile(files.intermediateKey, i.keyPem, 0o600);
  writeNewFile(files.intermediate, i.certPem, 0o644);
  writeNewFile(files.root, `${root.cert.toString('pem')}\n`, 0o644);
  return { dir: out, ...files, intermediateNotAfter: intermediate.cert.notAfter.toISOString() };
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
/** A word for POSIX sh, single-quoted unless it is plainly safe. */
const shellWord = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * Where metals reach the master's HTTPS listener (EST): `--est-url`, else `TIPS_EST_URL`, else the
 * CLI's master URL if it is https, else that host on the master's default HTTPS port 8443.
 */
export function estOrigin(given: string | undefined, cliUrl: string): string {
  const raw = given ?? process.env.TIPS_EST_URL;
  let u: URL;
  try {
    u = new URL(raw ?? cliUrl);
  } catch {
    throw new CliError('bad_option', `--est-url must be an https:// URL, got "${raw}"`, EXIT.usage);
  }
  if (raw !== undefined && u.protocol !== 'https:') throw new CliError('bad_option', `--est-url must be an https:// URL (EST is served over HTTPS only), got "${raw}"`, EXIT.usage);
  if (u.protocol !== 'https:') {
    u.protocol = 'https:';
    u.port = '8443';
  }
  return u.origin;
}

/**
 * The commands a metal (or whoever enrolls it) runs to enroll with openssl and curl (RFC 7030
 * simpleenroll): a P-256 key, a CSR naming the metal (CN and URI SAN), the base64 DER body with its
 * Content-Type and HTTP Basic auth, trusting only the master's CA, and the certs-only PKCS#7 answer
 * decoded to a PEM certificate. Runs as printed in a POSIX shell (e2e/est.test.ts does).
 */
export function estHint(v: SecretOut, origin: string): string {
  const metal = v.scope.kind === 'metal' ? `METAL=${shellWord(v.scope.id)}` : `METAL=    # set to the TIPS ID (mtl_…) of the metal to enroll, a member of Space ${v.scope.id}`;
  const auth = v.secret === undefined ? '' : ` -u ${shellWord(`${v.id}:${v.secret}`)}`;
  return [
    'Enroll with openssl and curl (EST, RFC 7030), in an empty directory:',
    '  tips ca show > tips-ca.pem    # the master\'s CA, fetched with your login; copy it to the metal',
    `  MASTER=${shellWord(origin)}`,
    `  ${metal}`,
    '  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout metal.key -subj "/CN=$METAL" -addext "subjectAltName=URI:urn:tips:metal:$METAL" -outform DER -out metal.csr.der',
    '  openssl base64 -in metal.csr.der -out metal.csr.b64',
    `  curl --fail-with-body -sS --cacert tips-ca.pem${auth} -H 'Content-Type: application/pkcs10' --data-binary @metal.csr.b64 -o metal.p7.b64 "$MASTER/.well-known/est/simpleenroll"`,
    '  openssl base64 -d -in metal.p7.b64 -out metal.p7.der',
    '  openssl pkcs7 -inform DER -in metal.p7.der -print_certs -out metal.pem',
    '  curl -sS --cacert tips-ca.pem --cert metal.pem --key metal.key "$MASTER/api/metal/v1/whoami"',
  ].join('\n');
}

interface CertOut {
  serial: string;
  subject: { kind: string; id: string };
  notAfter: string;
  status: string;
  issuedVia: string;
  revokeReason: string | null;
}

/** `tips ca …`, `tips enrollment …`, `tips key …`, `tips token issue|introspect`: identities, keys and tokens. */
export function registerIdentityCommands(program: Command): void {
  registerKeyAndTokenCommands(program);
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
  jsonOption(
    ca
      .command('intermediate')
      .description('rotate: issue a new intermediate from the offline root (give the master the new files; keep the old intermediate.pem as previous-intermediate-<date>.pem so metals it certified keep working until they renew)')
      .requiredOption('--root-dir <dir>', 'the offline directory with root.pem and root-key.pem')
      .requiredOption('--out <dir>', 'directory for root.pem, intermediate.pem, intermediate-key.pem (existing files are never overwritten)')
      .option('--name <name>', 'CA name in the certificate subject', 'TIPS')
      .option('--intermediate-years <n>', 'intermediate lifetime in years', positiveInt('--intermediate-years'), 5),
  ).action(
    action(async (opts: { rootDir: string; out: string; name: string; intermediateYears: number; json?: boolean }) => {
      const r = await caIntermediate(opts.rootDir, opts.out, opts);
      print(r, !!opts.json, (v: typeof r) => `issued a new intermediate in ${v.dir} (valid until ${v.intermediateNotAfter}), signed by the root in ${resolve(opts.rootDir)}`);
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
      .option('--expires-in <minutes>', 'minutes until it expires', positiveInt('--expires-in'), 1440)
      .option('--est-url <url>', "the master's HTTPS address as metals reach it, for the printed openssl/curl commands (env TIPS_EST_URL; default: the master URL's host on port 8443)"),
  ).action(
    action(async (opts: { metal?: string; space?: string; maxUses: number; expiresIn: number; estUrl?: string; json?: boolean }) => {
      if ((opts.metal === undefined) === (opts.space === undefined)) throw new CliError('bad_option', 'give exactly one of --metal or --space', EXIT.usage);
      const client = api();
      const origin = estOrigin(opts.estUrl, loadConfig().url);
      const body = { ...(opts.metal ? { metal: opts.metal } : { space: opts.space }), maxUses: opts.maxUses, expiresInMinutes: opts.expiresIn };
      const r = await client.call<SecretOut>('POST', 'api/v1/enrollment/secrets', body);
      print(r, !!opts.json, (v: SecretOut) =>
        [`enrollment secret ${v.id} for ${v.scope.kind} ${v.scope.id}: ${v.maxUses} use(s), expires ${v.expiresAt}`, `secret (shown once): ${v.secret}`, estHint(v, origin)].join('\n'),
      );
    }),
  );
  pageOptions(jsonOption(secret.command('list').description('list your enrollment secrets, oldest first'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<SecretOut>('api/v1/enrollment/secrets', undefined, max), mode, ['ID', 'FOR', 'USES', 'EXPIRES', 'REVOKED'], (s) => [
        s.id,
        `${s.scope.kind} ${s.scope.id}`,
        `${s.uses}/${s.maxUses}`,
        s.expiresAt,
        s.revokedAt ?? '-',
      ]);
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
  pageOptions(jsonOption(enrollment.command('certs').description('certificates issued to your metals, oldest first').option('--metal <metal>', 'only this metal'))).action(
    action(async (opts: { metal?: string; json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      const q = new URLSearchParams(opts.metal ? { metal: opts.metal } : {});
      await printPages(api().pages<CertOut>('api/v1/enrollment/certificates', q, max), mode, ['SERIAL', 'SUBJECT', 'STATUS', 'VIA', 'NOT AFTER'], (c) => [
        c.serial,
        `${c.subject.kind} ${c.subject.id}`,
        c.status + (c.revokeReason ? ` (${c.revokeReason})` : ''),
        c.issuedVia,
        c.notAfter,
      ]);
    }),
  );
  jsonOption(enrollment.command('revoke <metal>').description("revoke every certificate of a metal: its next mTLS request is refused")).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const r = await api().call<{ revoked: number }>('POST', `api/v1/enrollment/metals/${encodeURIComponent(ref)}/revoke`);
      print(r, !!opts.json, (v: typeof r) => `revoked ${v.revoked} certificate(s) of ${ref}`);
    }),
  );
}

interface KeyOut {
  id: string;
  name: string;
  alg: string;
  kid: string;
  serverHeld: boolean;
  warning?: string;
  createdAt: string;
  revokedAt: string | null;
}

/** Sends bytes to the owner API with a media type (the JSON client only speaks JSON). */
export async function sendBytes<T>(method: string, path: string, body: Uint8Array, contentType: string): Promise<T> {
  const config = loadConfig();
  const url = new URL(path, config.url.endsWith('/') ? config.url : `${config.url}/`);
  let res: Response;
  try {
    res = await fetch(url, { method, headers: { authorization: `Bearer ${config.token}`, 'content-type': contentType }, body: Buffer.from(body) });
  } catch (err) {
    throw new CliError('unreachable', `cannot reach the master at ${config.url} (${(err as Error).message})`, EXIT.unreachable);
  }
  const text = await res.text();
  if (!res.ok) {
    let e: { code?: string; message?: string; field?: string } = {};
    try {
      e = (JSON.parse(text) as { error?: typeof e }).error ?? {};
    } catch {
      // not a TIPS error body
    }
    throw new CliError(e.code ?? `http_${res.status}`, e.message ?? `the master answered HTTP ${res.status}`, exitCodeForStatus(res.status), e.field);
  }
  return JSON.parse(text) as T;
}

/** Reads a signing key (PEM/JWK file) for local signing; the private key never leaves this machine. */
function readKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError('key_unreadable', `cannot read ${file}: ${(e as Error).message}`, EXIT.usage);
  }
}

export function readSigningKey(file: string): CoseKey {
  const text = readKeyFile(file);
  try {
    const k = suit().importKey(text);
    if (!k.privateKey) throw new Error('it holds no private key');
    return k;
  } catch (e) {
    throw new CliError('key_invalid', `${file}: expected a private key (PEM or JWK): ${(e as Error).message}`, EXIT.invalid);
  }
}

function publicPemOf(file: string): string {
  const text = readKeyFile(file);
  try {
    const k = suit().importKey(text);
    const pub = k.publicKey ?? createPublicKey(k.privateKey!);
    return pub.export({ type: 'spki', format: 'pem' }).toString();
  } catch (e) {
    throw new CliError('key_invalid', `${file}: expected a key in PEM or JWK: ${(e as Error).message}`, EXIT.invalid);
  }
}

const showKey = (k: KeyOut) => `key ${k.name} (${k.id}) ${k.alg} kid ${k.kid.slice(0, 16)}…${k.serverHeld ? `\nWARNING: ${k.warning}` : ''}`;

/** `tips key …` and the PoP token subcommands of `tips token …`. */
export function registerKeyAndTokenCommands(program: Command): void {
  const key = program.command('key').description('operator signing keys: private keys stay on this machine, the master gets public keys (S5, S8)');
  jsonOption(
    key
      .command('create')
      .description('generate a signing key pair locally (private key file mode 0600); --register sends the public key to the master')
      .requiredOption('--out <file>', 'where to write the private key (PEM); the public key goes to <file>.pub')
      .option('--alg <alg>', 'ed25519 or es256', 'ed25519')
      .option('--register <name>', 'also register the public key under this name'),
  ).action(
    action(async (opts: { out: string; alg: string; register?: string; json?: boolean }) => {
      if (opts.alg !== 'ed25519' && opts.alg !== 'es256') throw new CliError('bad_option', '--alg must be ed25519 or es256', EXIT.usage);
      const k = suit().generateSigningKey(opts.alg);
      writeNewFile(resolve(opts.out), k.privatePem, 0o600);
      writeNewFile(`${resolve(opts.out)}.pub`, k.publicPem, 0o644);
      const registered = opts.register ? await api().call<KeyOut>('POST', 'api/v1/keys', { name: opts.register, publicKey: k.publicPem }) : undefined;
      print({ privateKey: resolve(opts.out), publicKey: `${resolve(opts.out)}.pub`, registered }, !!opts.json, () =>
        [`wrote ${resolve(opts.out)} (private, keep it safe) and ${resolve(opts.out)}.pub`, ...(registered ? [`registered ${showKey(registered)}`] : [])].join('\n'),
      );
    }),
  );
  jsonOption(
    key
      .command('register')
      .description('register a public key with the master (a private key file is reduced to its public half before sending)')
      .requiredOption('--name <name>', 'a name unique among your keys')
      .requiredOption('--public-key <file>', 'PEM or JWK file'),
  ).action(
    action(async (opts: { name: string; publicKey: string; json?: boolean }) => {
      const k = await api().call<KeyOut>('POST', 'api/v1/keys', { name: opts.name, publicKey: publicPemOf(opts.publicKey) });
      print(k, !!opts.json, showKey);
    }),
  );
  pageOptions(jsonOption(key.command('list').description('list your registered keys, oldest first'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<KeyOut>('api/v1/keys', undefined, max), mode, ['NAME', 'ID', 'ALG', 'KID', 'HELD BY', 'REVOKED'], (k) => [
        k.name,
        k.id,
        k.alg,
        k.kid.slice(0, 16),
        k.serverHeld ? 'MASTER (hobby)' : 'you',
        k.revokedAt ?? '-',
      ]);
    }),
  );
  key
    .command('revoke <key>')
    .description('revoke a key: manifests signed with it are refused from now on')
    .action(
      action(async (ref: string) => {
        await api().call('DELETE', `api/v1/keys/${encodeURIComponent(ref)}`);
        process.stdout.write(`revoked ${ref}\n`);
      }),
    );

  const token = program.commands.find((c) => c.name() === 'token') ?? program.command('token').description('tokens');
  jsonOption(
    token
      .command('issue')
      .description('issue a scoped, short-lived authorization token (CWT + JWT) bound to a holder key (S11)')
      .requiredOption('--audience <urn>', 'urn:tips:master or urn:tips:metal:<TIPS ID> (the hop)')
      .requiredOption('--scope <scope>', 'action:kind:id, e.g. pull:glaze:os (repeatable)', (v: string, p: string[] = []) => [...p, v])
      .option('--holder-key <file>', 'the holder key (PEM/JWK; only the public half is sent)')
      .option('--metal <metal>', "bind to the metal's current certificate key instead")
      .option('--ttl <minutes>', 'minutes of life (1-60)', positiveInt('--ttl'), 5),
  ).action(
    action(async (opts: { audience: string; scope: string[]; holderKey?: string; metal?: string; ttl: number; json?: boolean }) => {
      if ((opts.holderKey === undefined) === (opts.metal === undefined)) throw new CliError('bad_option', 'give exactly one of --holder-key or --metal', EXIT.usage);
      const holder = opts.holderKey ? { publicKey: publicPemOf(opts.holderKey) } : { metal: opts.metal };
      const r = await api().call<{ cwt: string; jwt: string; expiresAt: string; scope: string[]; subject: string }>('POST', 'api/v1/tokens/issue', {
        audience: opts.audience,
        scope: opts.scope,
        ttlMinutes: opts.ttl,
        holder,
      });
      print(r, !!opts.json, (v: typeof r) => `token for ${v.subject}, ${v.scope.join(' ')}, until ${v.expiresAt}\nCWT: ${v.cwt}\nJWT: ${v.jwt}`);
    }),
  );
  jsonOption(
    token
      .command('introspect <token>')
      .description('ask the master whether a token is active for an audience and scope; with --sign-key, prove possession over a fresh challenge')
      .requiredOption('--audience <urn>', 'the audience the token must be for')
      .option('--scope <scope>', 'a scope the token must grant')
      .option('--sign-key <file>', "the holder's private key: signs a fresh challenge"),
  ).action(
    action(async (tok: string, opts: { audience: string; scope?: string; signKey?: string; json?: boolean }) => {
      const client = api();
      let proof: { nonce: string; signature: string } | undefined;
      if (opts.signKey) {
        const k = readSigningKey(opts.signKey);
        const { nonce } = await client.call<{ nonce: string }>('POST', 'api/v1/tokens/challenge');
        proof = { nonce, signature: signPopMessage(nonce, tok, k.privateKey!) };
      }
      const r = await client.call<{ active: boolean; reason?: string }>('POST', 'api/v1/tokens/introspect', { token: tok, audience: opts.audience, scope: opts.scope, proof });
      print(r, !!opts.json, (v: typeof r) => (v.active ? `active: ${JSON.stringify(v)}` : `inactive: ${v.reason}`));
      if (!r.active) process.exitCode = EXIT.verification;
    }),
  );
}

/** Same bytes as the master's popMessage: "tips-pop-v1:<nonce>:<sha256(token) hex>". */
export function signPopMessage(nonce: string, token: string, key: KeyObject): string {
  const data = Buffer.from(`tips-pop-v1:${nonce}:${createHash('sha256').update(token).digest('hex')}`, 'utf8');
  const sig = key.asymmetricKeyType === 'ed25519' ? nodeSign(null, data, key) : nodeSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
  return Buffer.from(sig).toString('base64url');
}
