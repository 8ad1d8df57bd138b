// Tokens over real TLS on loopback, with keys and TLS clients we did not write: openssl makes the
// metal keys and CSRs, curl enrolls them and presents them for mutual TLS; a token bound to one
// metal's certificate key works only over that metal's connection (S11 metal→master hop).
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster, tips } from './helpers.ts';

const ADMIN = `tips_${randomBytes(24).toString('base64url')}`;
let work: string;
let master: RunningMaster;
let httpsUrl: string;
let env: NodeJS.ProcessEnv;

function must(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: work, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
function curl(path: string, args: string[]) {
  const out = join(work, `c-${randomBytes(4).toString('hex')}`);
  const r = spawnSync('curl', ['-sS', '--cacert', 'ca/root.pem', '-o', out, '-w', '%{http_code}', ...args, `${httpsUrl}${path}`], { cwd: work, encoding: 'utf8', timeout: 60_000 });
  return { status: Number(r.stdout), body: readFileSync(out, 'utf8'), stderr: r.stderr };
}
function cli(args: string[]) {
  const r = tips(args, env);
  if (r.status !== 0) throw new Error(`tips ${args.join(' ')} → ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Declares a metal, makes its key and CSR with openssl, enrolls it with curl; returns its TIPS ID. */
function enrolledMetal(name: string, mac: string): string {
  const metal = cli(['metal', 'create', '--name', name, '--iface', `eth0=${mac},ethernet,pxe`, '--json']);
  const secret = cli(['enrollment', 'secret', 'create', '--metal', name, '--json']);
  must('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-subj', `/CN=${metal.id}`, '-addext', `subjectAltName=URI:urn:tips:metal:${metal.id}`, '-outform', 'DER', '-out', `${name}.der`]);
  must('openssl', ['base64', '-in', `${name}.der`, '-out', `${name}.b64`]);
  const r = curl('/.well-known/est/simpleenroll', ['-u', `${secret.id}:${secret.secret}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${name}.b64`]);
  if (r.status !== 200) throw new Error(`enroll ${name}: ${r.status} ${r.body}`);
  writeFileSync(join(work, `${name}.p7.b64`), r.body);
  must('openssl', ['base64', '-d', '-in', `${name}.p7.b64`, '-out', `${name}.p7`]);
  must('openssl', ['pkcs7', '-inform', 'DER', '-in', `${name}.p7`, '-print_certs', '-out', `${name}.pem`]);
  return metal.id;
}

describe('S11 S6 PoP tokens over real mutual TLS, with openssl keys and curl', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tips-mtls-e2e-'));
    master = await startMaster(['--data-dir', join(work, 'data'), '--ca-dir', join(work, 'ca'), '--tls-port', '0'], { TIPS_BOOTSTRAP_ADMIN_TOKEN: ADMIN });
    const deadline = Date.now() + 20_000;
    while (!/TLS listening on (\S+)/.test(master.output())) {
      if (Date.now() > deadline) throw new Error(`no TLS listener: ${master.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    httpsUrl = /TLS listening on (\S+)/.exec(master.output())![1]!;
    env = { TIPS_URL: master.url, TIPS_TOKEN: ADMIN, TIPS_CONFIG: join(work, 'no-config.json') };
  });
  afterAll(async () => {
    await master?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("a token bound to pi-a's certificate key is accepted over pi-a's mTLS connection, refused over pi-b's", () => {
    const a = enrolledMetal('pi-a', '02:e2:e1:00:00:0a');
    enrolledMetal('pi-b', '02:e2:e1:00:00:0b');
    writeFileSync(join(work, 'os.img'), 'an image');
    const glaze = cli(['glaze', 'push', join(work, 'os.img'), '--name', 'os', '--no-progress', '--json']);
    const token = cli(['token', 'issue', '--audience', 'urn:tips:master', '--scope', 'pull:glaze:os', '--metal', 'pi-a', '--json']);
    expect(token.subject).toBe(`urn:tips:metal:${a}`);
    writeFileSync(join(work, 'check.json'), JSON.stringify({ token: token.cwt, scope: `pull:glaze:${glaze.id}` }));
    const ok = curl('/api/metal/v1/tokens/check', ['--cert', 'pi-a.pem', '--key', 'pi-a.key', '-H', 'Content-Type: application/json', '--data-binary', '@check.json']);
    expect(ok.status, ok.body).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ sub: `urn:tips:metal:${a}`, pop: 'mtls' });
    const stolen = curl('/api/metal/v1/tokens/check', ['--cert', 'pi-b.pem', '--key', 'pi-b.key', '-H', 'Content-Type: application/json', '--data-binary', '@check.json']);
    expect(stolen.status).toBe(401);
    expect(JSON.parse(stolen.body).error.code).toBe('pop_invalid');
    const noCert = curl('/api/metal/v1/tokens/check', ['-H', `Authorization: Bearer ${ADMIN}`, '-H', 'Content-Type: application/json', '--data-binary', '@check.json']);
    expect(JSON.parse(noCert.body).error.code).toBe('client_certificate_required');
  });

  it('an operator holder key made by openssl proves possession through tips token introspect --sign-key', () => {
    must('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'operator.key']);
    const t = cli(['token', 'issue', '--audience', 'urn:tips:master', '--scope', 'pull:glaze:os', '--holder-key', join(work, 'operator.key'), '--ttl', '1', '--json']);
    const scope = t.scope[0];
    expect(cli(['token', 'introspect', t.jwt, '--audience', 'urn:tips:master', '--scope', scope, '--sign-key', join(work, 'operator.key'), '--json'])).toMatchObject({ active: true, pop: 'signature' });
    const other = tips(['token', 'introspect', t.cwt, '--audience', 'urn:tips:master', '--scope', scope, '--sign-key', join(work, 'pi-a.key'), '--json'], env);
    expect(other.status).toBe(8);
    expect(JSON.parse(other.stdout)).toEqual({ active: false, reason: 'pop_invalid' });
  });
});
