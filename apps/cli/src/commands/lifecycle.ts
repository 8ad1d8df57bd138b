/**
 * S5 S6 S14 life-cycle commands: `tips metal retire`, `tips metal reenroll` (a signed
 * re-enrollment order) and `tips trust-list push` (a signed trust-list update). Orders are signed
 * here with the operator's private key; the master only stores and serves them, and each metal
 * verifies them against its own trust list.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { buildEnvelope, type CoseKey } from '@tips/suit';
import { ENROLLMENT_COMPONENT, encodeReenrollment, encodeTrustList, TRUST_LIST_COMPONENT } from '@tips/trust';
import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { print } from '../output.ts';
import { readSigningKey, sendBytes } from './identity.ts';

/** Vendor/class of directive manifests: metals bind orders by component, not by vendor or class. */
const DIRECTIVE_VENDOR = 'tips.directive';

interface DirectiveOut {
  id: string;
  kind: string;
  metal: string | null;
  signedBy: string;
  sequenceNumber: string;
  createdAt: string;
}

function seqOf(v: string | undefined): number {
  if (v === undefined) return Math.floor(Date.now() / 1000);
  if (!/^\d{1,15}$/.test(v)) throw new CliError('bad_option', '--seq must be a non-negative integer', EXIT.usage, '--seq');
  return Number(v);
}

function signed(key: CoseKey, component: Uint8Array[], classInfo: string, seq: number, payload: Uint8Array): Uint8Array {
  return buildEnvelope({ vendorDomain: DIRECTIVE_VENDOR, classInfo, component, sequenceNumber: seq, payload, delivery: { mode: 'integrated' }, key });
}

const directiveLine = (d: DirectiveOut) => `${d.id}  ${d.kind}${d.metal ? ` for ${d.metal}` : ' for every metal'}, sequence ${d.sequenceNumber}, signed by ${d.signedBy}, ${d.createdAt}`;

export function registerMetalLifecycleCommands(metal: Command): void {
  jsonOption(
    metal
      .command('retire <metal>')
      .description(
        'retire a metal (S14): revoke its certificates and enrollment secrets; its client wipes its key, certificate and secret at its next request (403 metal_retired) and stops; it can never enroll again',
      ),
  ).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const r = await api().call<{ metal: string; retiredAt: string; certificatesRevoked: number; secretsRevoked: number }>('POST', `api/v1/metals/${encodeURIComponent(ref)}/retire`);
      print(r, !!opts.json, (v: typeof r) => `retired ${v.metal} at ${v.retiredAt}: ${v.certificatesRevoked} certificate(s) and ${v.secretsRevoked} enrollment secret(s) revoked`);
    }),
  );

  jsonOption(
    metal
      .command('reenroll <metal>')
      .description(
        'order a metal to re-enroll with a new key (S6 key rotation): makes a one-use enrollment secret for it and publishes it in a SUIT order signed with --sign-key; the metal obeys only if that key is in its trust list',
      )
      .requiredOption('--sign-key <pem>', 'your operator private key (one the metal trusts)')
      .requiredOption('--est-url <url>', "the EST base the metal enrolls at, e.g. https://master.example:8443/.well-known/est (pinned by the metal's CA file)")
      .option('--expires-in <minutes>', 'how long the order\'s secret is valid, in minutes', '1440')
      .option('--seq <n>', 'order sequence number (must grow with every order); default: the current UTC time in seconds'),
  ).action(
    action(async (ref: string, opts: { signKey: string; estUrl: string; expiresIn: string; seq?: string; json?: boolean }) => {
      const key = readSigningKey(opts.signKey);
      const seq = seqOf(opts.seq);
      if (!/^https:\/\/\S{1,2040}$/.test(opts.estUrl)) throw new CliError('bad_option', '--est-url: expected an https:// URL', EXIT.usage, '--est-url');
      if (!/^\d{1,7}$/.test(opts.expiresIn)) throw new CliError('bad_option', '--expires-in: expected minutes as an integer', EXIT.usage, '--expires-in');
      const secret = await api().call<{ id: string; secret: string }>('POST', 'api/v1/enrollment/secrets', { metal: ref, expiresInMinutes: Number(opts.expiresIn) });
      const env = signed(key, ENROLLMENT_COMPONENT, 'enrollment', seq, encodeReenrollment({ estUri: opts.estUrl.replace(/\/+$/, ''), secretId: secret.id, secret: secret.secret }));
      const d = await sendBytes<DirectiveOut>('POST', `api/v1/directives?metal=${encodeURIComponent(ref)}`, env, 'application/suit-envelope+cose');
      print({ ...d, secretId: secret.id }, !!opts.json, () => `re-enrollment order ${d.id} published for ${d.metal} (sequence ${d.sequenceNumber}, secret ${secret.id}); the metal obeys at its next pull`);
    }),
  );
}

export function registerTrustListCommands(program: Command): void {
  const tl = program.command('trust-list').description("the metals' trust list (S5): which operator keys they accept manifests from");
  jsonOption(
    tl
      .command('push')
      .description(
        'sign and publish a trust list of your active operator keys and this master: metals adopt it only when --sign-key is a key of the list they keep (the master alone can only remove keys)',
      )
      .requiredOption('--sign-key <pem>', 'an operator private key the metals already trust')
      .option('--seq <n>', 'list version and sequence number (must grow); default: the current UTC time in seconds'),
  ).action(
    action(async (opts: { signKey: string; seq?: string; json?: boolean }) => {
      const key = readSigningKey(opts.signKey);
      const version = seqOf(opts.seq);
      const keys = await api().call<{ items: { id: string; name: string; publicKey: string; revokedAt: string | null }[] }>('GET', 'api/v1/keys?limit=500');
      const active = keys.items.filter((k) => k.revokedAt === null);
      const signer = createPublicKey(key.privateKey!).export({ type: 'spki', format: 'der' });
      if (!active.some((k) => createPublicKey(k.publicKey).export({ type: 'spki', format: 'der' }).equals(signer))) {
        throw new CliError('key_not_registered', `--sign-key ${opts.signKey} is not one of your active operator keys`, EXIT.usage, '--sign-key');
      }
      const ca = await api().call<{ rootPem: string; intermediatePem: string }>('GET', 'api/v1/enrollment/ca');
      const fp = (pem: string) => createHash('sha256').update(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64')).digest('hex');
      const list = encodeTrustList({
        version,
        operators: active.map((k) => ({ name: k.name, publicKey: createPublicKey(k.publicKey) })),
        updateServers: [{ name: 'tips-master', caFingerprints: [fp(ca.rootPem), fp(ca.intermediatePem)], certFingerprints: [] }],
      });
      const d = await sendBytes<DirectiveOut>('POST', 'api/v1/directives', signed(key, TRUST_LIST_COMPONENT, 'trust-list', version, list), 'application/suit-envelope+cose');
      print({ ...d, version, operators: active.map((k) => k.name) }, !!opts.json, () => `trust list version ${version} (${active.map((k) => k.name).join(', ')}) published as ${d.id}`);
    }),
  );
  jsonOption(tl.command('directives').description('your published signed orders (trust-list updates, re-enrollment orders), newest first')).action(
    action(async (opts: { json?: boolean }) => {
      const r = await api().call<{ items: DirectiveOut[] }>('GET', 'api/v1/directives');
      print(r.items, !!opts.json, (v: DirectiveOut[]) => (v.length === 0 ? 'no directives' : v.map(directiveLine).join('\n')));
    }),
  );
}
