// EST interop (RFC 7030) with clients we did not write: `openssl req` makes the CSR, `curl` posts it
// to the real tips-master over HTTPS, `openssl pkcs7` / `openssl verify` check what came back
// against the CA `tips ca init` made; then curl uses the certificate for mTLS on the metal API.
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster, TIPS, tips } from './helpers.ts';

const ADMIN = `tips_${randomBytes(24).toString('base64url')}`;
let work: string;
let master: RunningMaster;
let httpsUrl: string;
let metalId: string;
/** The master runs with --metal-cert-days 3: every metal certificate must live exactly that long. */
const CERT_DAYS = 3;

function run(cmd: string, args: string[], input?: string) {
  const r = spawnSync(cmd, args, { cwd: work, encoding: 'utf8', input, timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function must(cmd: string, args: string[]) {
  const r = run(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${master.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/** curl against the HTTPS listener, trusting only our root; returns status and body. */
function curl(path: string, args: string[] = []) {
  const out = join(work, `curl-${randomBytes(4).toString('hex')}.out`);
  const r = run('curl', ['-sS', '--cacert', 'offline/root.pem', '-o', out, '-w', '%{http_code} %{content_type}', ...args, `${httpsUrl}${path}`]);
  const [status, ...type] = r.stdout.split(' ');
  let body = '';
  try {
    body = readFileSync(out, 'utf8');
  } catch {
    // no body written
  }
  return { status: Number(status), contentType: type.join(' '), body, stderr: r.stderr };
}

function newCsr(name: string, subjectId: string) {
  must('openssl', [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-subj', `/CN=${subjectId}`, '-addext', `subjectAltName=URI:urn:tips:metal:${subjectId}`,
    '-outform', 'DER', '-out', `${name}.der`,
  ]);
  must('openssl', ['base64', '-in', `${name}.der`, '-out', `${name}.b64`]);
}

describe('S6 EST enrollment and mTLS, proven with openssl and curl against the real master', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tips-est-e2e-'));
    // The operator makes the CA; the root key stays "offline", the master gets the other three files.
    const init = tips(['ca', 'init', '--out', join(work, 'offline'), '--name', 'E2E'], {});
    expect(init.status, init.stderr).toBe(0);
    mkdirSync(join(work, 'master-ca'));
    for (const f of ['root.pem', 'intermediate.pem', 'intermediate-key.pem']) copyFileSync(join(work, 'offline', f), join(work, 'master-ca', f));
    master = await startMaster(['--data-dir', join(work, 'data'), '--ca-dir', join(work, 'master-ca'), '--tls-port', '0', '--tls-hostname', 'localhost', '--metal-cert-days', String(CERT_DAYS)], {
      TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN,
    });
    const deadline = Date.now() + 20_000;
    while (!/TLS listening on (\S+)/.test(master.output())) {
      if (Date.now() > deadline) throw new Error(`no TLS listener: ${master.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    httpsUrl = /TLS listening on (\S+)/.exec(master.output())![1]!.replace('127.0.0.1', 'localhost');
    metalId = (await api<{ id: string }>('POST', '/api/v1/metals', { name: 'pi-e2e', interfaces: [{ name: 'eth0', mac: '02:e2:e0:00:00:01', type: 'ethernet', pxe: true }] })).id;
  });
  afterAll(async () => {
    await master?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('cacerts parses with openssl and holds the intermediate and the root', () => {
    const r = curl('/.well-known/est/cacerts');
    expect(r.status, r.stderr).toBe(200);
    expect(r.contentType).toBe('application/pkcs7-mime; smime-type=certs-only');
    writeFileSync(join(work, 'cacerts.b64'), r.body);
    must('openssl', ['base64', '-d', '-in', 'cacerts.b64', '-out', 'cacerts.der']);
    const pem = must('openssl', ['pkcs7', '-inform', 'DER', '-in', 'cacerts.der', '-print_certs']);
    expect(pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(pem).toContain('E2E intermediate CA');
    expect(pem).toContain('E2E root CA');
    // Byte for byte what openssl's own certs-only writer makes of the same two certificates (no eContent).
    writeFileSync(join(work, 'chain.pem'), readFileSync(join(work, 'offline', 'intermediate.pem'), 'utf8') + readFileSync(join(work, 'offline', 'root.pem'), 'utf8'));
    must('openssl', ['crl2pkcs7', '-nocrl', '-certfile', 'chain.pem', '-outform', 'DER', '-out', 'openssl-cacerts.der']);
    expect(readFileSync(join(work, 'cacerts.der')).equals(readFileSync(join(work, 'openssl-cacerts.der')))).toBe(true);
    // The master never got the root key, and its server certificate chains to the operator's root.
    expect(run('ls', ['master-ca']).stdout).not.toContain('root-key.pem');
  });

  it('simpleenroll: openssl CSR → curl with the enrollment secret → a certificate openssl verifies against the root', async () => {
    const s = await api<{ id: string; secret: string }>('POST', '/api/v1/enrollment/secrets', { metal: metalId });
    // A CSR asking for another TIPS ID is refused and spends nothing.
    const other = (await api<{ id: string }>('POST', '/api/v1/metals', { name: 'pi-other', interfaces: [{ name: 'eth0', mac: '02:e2:e0:00:00:02', type: 'ethernet', pxe: true }] })).id;
    newCsr('other', other);
    const steal = curl('/.well-known/est/simpleenroll', ['-u', `${s.id}:${s.secret}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', '@other.b64']);
    expect(steal.status).toBe(403);
    expect(JSON.parse(steal.body).error.code).toBe('csr_identity_mismatch');
    newCsr('metal', metalId);
    const r = curl('/.well-known/est/simpleenroll', ['-u', `${s.id}:${s.secret}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', '@metal.b64']);
    expect(r.status, r.body).toBe(200);
    expect(r.contentType).toBe('application/pkcs7-mime; smime-type=certs-only');
    writeFileSync(join(work, 'enroll.b64'), r.body);
    must('openssl', ['base64', '-d', '-in', 'enroll.b64', '-out', 'enroll.der']);
    must('openssl', ['pkcs7', '-inform', 'DER', '-in', 'enroll.der', '-print_certs', '-out', 'metal.pem']);
    expect(must('openssl', ['verify', '-CAfile', 'offline/root.pem', '-untrusted', 'offline/intermediate.pem', 'metal.pem'])).toContain('metal.pem: OK');
    const text = must('openssl', ['x509', '-in', 'metal.pem', '-noout', '-text']);
    expect(text).toContain(`URI:urn:tips:metal:${metalId}`);
    expect(text).toContain('TLS Web Client Authentication');
    // The key in the certificate is the key of the CSR.
    const certKey = must('openssl', ['x509', '-in', 'metal.pem', '-noout', '-pubkey']);
    const csrKey = must('openssl', ['pkey', '-in', 'metal.key', '-pubout']);
    expect(certKey).toBe(csrKey);
    // A second use of the one-time secret is refused, and so is a wrong secret.
    const again = curl('/.well-known/est/simpleenroll', ['-u', `${s.id}:${s.secret}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', '@metal.b64']);
    expect(again.status).toBe(401);
    expect(JSON.parse(again.body).error.code).toBe('enrollment_secret_exhausted');
    const wrong = curl('/.well-known/est/simpleenroll', ['-u', `${s.id}:est_${'x'.repeat(43)}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', '@metal.b64']);
    expect(JSON.parse(wrong.body).error.code).toBe('enrollment_secret_invalid');
    // The secret never reached the master's log.
    expect(master.output()).not.toContain(s.secret);
  });

  it('the certificate lives --metal-cert-days (plus the minute of clock-skew allowance before now)', () => {
    const dates = must('openssl', ['x509', '-in', 'metal.pem', '-noout', '-startdate', '-enddate']);
    const notBefore = Date.parse(/notBefore=(.+)/.exec(dates)![1]!);
    const notAfter = Date.parse(/notAfter=(.+)/.exec(dates)![1]!);
    expect(notAfter - notBefore).toBe(CERT_DAYS * 86_400_000 + 60_000);
  });

  it('the commands `tips enrollment secret create` prints run as printed in a shell and end with a certificate openssl verifies', async () => {
    const id = (await api<{ id: string }>('POST', '/api/v1/metals', { name: 'pi-hint', interfaces: [{ name: 'eth0', mac: '02:e2:e0:00:00:03', type: 'ethernet', pxe: true }] })).id;
    const env = { TIPS_URL: master.url, TIPS_TOKEN: ADMIN, TIPS_CONFIG: join(work, 'no-config.json') };
    const created = tips(['enrollment', 'secret', 'create', '--metal', 'pi-hint', '--est-url', httpsUrl], env);
    expect(created.status, created.stderr).toBe(0);
    const lines = created.stdout.split('\n');
    const from = lines.findIndex((l) => l.startsWith('Enroll with openssl and curl'));
    expect(from).toBeGreaterThan(0);
    const script = lines.slice(from + 1).filter((l) => l.startsWith('  ')).map((l) => l.slice(2)).join('\n');
    expect(script).toContain('--cacert tips-ca.pem');
    // The operator's `tips` on PATH (the printed first step fetches the CA with their login).
    mkdirSync(join(work, 'bin'));
    writeFileSync(join(work, 'bin', 'tips'), `#!/bin/sh\nexec '${process.execPath}' '${TIPS}' "$@"\n`, { mode: 0o755 });
    mkdirSync(join(work, 'hint'));
    const sh = spawnSync('sh', ['-e', '-c', script], { cwd: join(work, 'hint'), encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env, PATH: `${join(work, 'bin')}:${process.env.PATH}` } });
    expect(sh.status, `${script}\n${sh.stdout}\n${sh.stderr}`).toBe(0);
    // The last printed command used the new certificate on the metal API.
    expect(JSON.parse(sh.stdout.trim().split('\n').pop()!).metal).toBe(id);
    const verified = run('openssl', ['verify', '-CAfile', 'offline/root.pem', '-untrusted', 'offline/intermediate.pem', 'hint/metal.pem']);
    expect(verified.stdout, verified.stderr).toContain('hint/metal.pem: OK');
    expect(must('openssl', ['x509', '-in', 'hint/metal.pem', '-noout', '-ext', 'subjectAltName'])).toContain(`URI:urn:tips:metal:${id}`);
  });

  it('mTLS: the certificate works on /api/metal/v1, not on the owner API; an owner token does not work on the metal API', () => {
    const who = curl('/api/metal/v1/whoami', ['--cert', 'metal.pem', '--key', 'metal.key']);
    expect(who.status, who.body).toBe(200);
    expect(JSON.parse(who.body).metal).toBe(metalId);
    const me = curl('/api/v1/me', ['--cert', 'metal.pem', '--key', 'metal.key']);
    expect(me.status).toBe(401);
    expect(JSON.parse(me.body).error.code).toBe('certificate_not_accepted_here');
    const token = curl('/api/metal/v1/whoami', ['-H', `Authorization: Bearer ${ADMIN}`]);
    expect(token.status).toBe(401);
    expect(JSON.parse(token.body).error.code).toBe('client_certificate_required');
  });

  it('simplereenroll with the current certificate; then revocation refuses the next mTLS request', async () => {
    newCsr('metal2', metalId);
    const r = curl('/.well-known/est/simplereenroll', ['--cert', 'metal.pem', '--key', 'metal.key', '-H', 'Content-Type: application/pkcs10', '--data-binary', '@metal2.b64']);
    expect(r.status, r.body).toBe(200);
    writeFileSync(join(work, 'reenroll.b64'), r.body);
    must('openssl', ['base64', '-d', '-in', 'reenroll.b64', '-out', 'reenroll.der']);
    must('openssl', ['pkcs7', '-inform', 'DER', '-in', 'reenroll.der', '-print_certs', '-out', 'metal2.pem']);
    expect(must('openssl', ['verify', '-CAfile', 'offline/root.pem', '-untrusted', 'offline/intermediate.pem', 'metal2.pem'])).toContain('OK');
    expect(curl('/api/metal/v1/whoami', ['--cert', 'metal2.pem', '--key', 'metal2.key']).status).toBe(200);
    const old = curl('/api/metal/v1/whoami', ['--cert', 'metal.pem', '--key', 'metal.key']);
    expect(JSON.parse(old.body).error.code).toBe('certificate_revoked');
    // The operator blocks the metal: every certificate is revoked and the next request is refused.
    const rev = tips(['enrollment', 'revoke', 'pi-e2e', '--json'], { TIPS_URL: master.url, TIPS_TOKEN: ADMIN });
    expect(rev.status, rev.stderr).toBe(0);
    expect(JSON.parse(rev.stdout)).toEqual({ revoked: 1 });
    const after = curl('/api/metal/v1/whoami', ['--cert', 'metal2.pem', '--key', 'metal2.key']);
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body).error.code).toBe('certificate_revoked');
    // Each refusal was logged as a security event (pino writes asynchronously: give it a moment).
    for (let i = 0; i < 40 && !master.output().includes('"code":"certificate_revoked"'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(master.output()).toContain('"event":"security"');
    expect(master.output()).toContain('"code":"certificate_revoked"');
  });
});
