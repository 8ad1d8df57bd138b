import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CoseKey } from '@tips/suit';
import type { Command } from 'commander';
import { action, collect, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { print } from '../output.ts';
import { suit as suitLib } from '../suit-lib.ts';

/** Verification failures exit 8 (EXIT.verification, as every `tips` check); usage errors exit 2. */
const EXIT_VERIFY = EXIT.verification;

function readInput(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new CliError('file_unreadable', `${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage, what);
  }
}

/** Writes through a temp file, fsync and rename, so a reader never sees half an envelope. */
function writeDurable(path: string, data: Uint8Array | string, mode = 0o644): void {
  const tmp = join(dirname(path), `.${process.pid}.${Date.now()}.tmp`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CliError('write_failed', `${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.failure);
  }
}

/** A key file: PEM, JWK (JSON) or COSE_Key (CBOR). */
function loadKey(path: string): CoseKey {
  const raw = readInput(path, '--key');
  const text = Buffer.from(raw).toString('utf8');
  try {
    if (text.includes('-----BEGIN') || text.trimStart().startsWith('{')) return suitLib().importKey(text);
    return suitLib().importKey(raw);
  } catch (e) {
    throw suitToCli(e, EXIT.usage);
  }
}

function suitToCli(e: unknown, exitCode: number = EXIT_VERIFY): unknown {
  if (e instanceof suitLib().SuitError) return new CliError(e.code, e.message, exitCode);
  return e;
}

function parseSeq(s: string, flag: string): bigint {
  if (!/^\d{1,20}$/.test(s) || BigInt(s) > 0xffffffffffffffffn) throw new CliError('bad_sequence_number', `${flag} must be a non-negative integer, got "${s}"`, EXIT.usage, flag);
  return BigInt(s);
}

function seqValue(n: bigint): number | bigint {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

const UUID_RE = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

/** `--vendor` is a UUID or a vendor domain; `--class` a UUID or class info (then needs the vendor). */
function identities(opts: { vendor?: string; class?: string }): { vendorId?: Uint8Array; classId?: Uint8Array } {
  const out: { vendorId?: Uint8Array; classId?: Uint8Array } = {};
  try {
    if (opts.vendor !== undefined) out.vendorId = UUID_RE.test(opts.vendor) ? suitLib().uuidToBytes(opts.vendor) : suitLib().vendorIdFromDomain(opts.vendor);
    if (opts.class !== undefined) {
      if (UUID_RE.test(opts.class)) out.classId = suitLib().uuidToBytes(opts.class);
      else if (out.vendorId) out.classId = suitLib().classIdFrom(out.vendorId, opts.class);
      else throw new CliError('missing_vendor', '--class given as class info needs --vendor (a domain or UUID)', EXIT.usage, '--vendor');
    }
  } catch (e) {
    throw suitToCli(e, EXIT.usage);
  }
  return out;
}

interface VerifyOut {
  ok: true;
  sequenceNumber: string;
  digest: string;
  components: string[][];
  /** Integrated payloads checked against their image digest. */
  payloads: { name: string; component: number; size: number }[];
  checks: string[];
}

export function registerSuitCommands(program: Command): Command {
  const suit = program
    .command('suit')
    .description('SUIT manifests (IETF SUIT): inspect, create, sign and verify envelopes')
    .addHelpText('after', '\nErrors are one line, "error: <code>: <message>"; verification failures exit 8, usage errors 2, other failures 1.')
    // Usage errors are one line too (subcommands inherit these settings when created below).
    .showHelpAfterError(false)
    .configureOutput({ outputError: (str, write) => write(`error: usage: ${str.replace(/^error: /, '').trim()}\n`) });

  jsonOption(suit.command('inspect <envelope>').description('print an envelope as CBOR diagnostic notation (default) or readable JSON (--json)')).action(
    action(async (file: string, opts: { json?: boolean }) => {
      const bytes = readInput(file, 'envelope');
      try {
        const env = suitLib().decodeEnvelope(bytes);
        if (opts.json) print(suitLib().envelopeToJson(env), true);
        else process.stdout.write(`${suitLib().toDiagnostic(suitLib().decodeCbor(bytes), { embedded: true })}\n`);
      } catch (e) {
        throw suitToCli(e);
      }
    }),
  );

  jsonOption(
    suit
      .command('create')
      .description('build a SUIT envelope from high-level inputs (signed when --key is given)')
      .requiredOption('--vendor-domain <domain>', 'vendor domain; vendor ID = UUID5(DNS, domain)')
      .requiredOption('--class <info>', 'class info; class ID = UUID5(vendor ID, info)')
      .requiredOption('--component <name>', 'component (storage location) the payload is for')
      .requiredOption('--seq <n>', 'manifest sequence number (must grow with every update)')
      .requiredOption('--payload <file>', 'the payload (hashed; embedded with --integrated)')
      .option('--integrated', 'carry the payload inside the envelope')
      .option('--uri <uri>', 'where devices fetch the payload (URI delivery)')
      .option('--text <text>', 'human description (manifest text)')
      .option('--invoke', 'boot the component after validation')
      .option('--key <file>', 'signing key: PEM, JWK or COSE_Key (P-256 or Ed25519)')
      .requiredOption('--out <file>', 'where to write the envelope'),
  ).action(
    action(
      async (opts: { vendorDomain: string; class: string; component: string; seq: string; payload: string; integrated?: boolean; uri?: string; text?: string; invoke?: boolean; key?: string; out: string; json?: boolean }) => {
        if (!!opts.integrated === !!opts.uri) throw new CliError('bad_delivery', 'give exactly one of --integrated or --uri <uri>', EXIT.usage, '--uri');
        const payload = readInput(opts.payload, '--payload');
        const key = opts.key ? loadKey(opts.key) : undefined;
        let env: Uint8Array;
        try {
          env = suitLib().buildEnvelope({
            vendorDomain: opts.vendorDomain,
            classInfo: opts.class,
            component: opts.component,
            sequenceNumber: seqValue(parseSeq(opts.seq, '--seq')),
            payload,
            delivery: opts.uri ? { mode: 'uri', uri: opts.uri } : { mode: 'integrated' },
            ...(opts.text !== undefined ? { text: opts.text } : {}),
            ...(opts.invoke ? { invoke: true } : {}),
            ...(key ? { key } : {}),
          });
        } catch (e) {
          throw suitToCli(e, EXIT.usage);
        }
        writeDurable(opts.out, env);
        const vendorId = suitLib().vendorIdFromDomain(opts.vendorDomain);
        const out = { out: opts.out, size: env.length, signed: !!key, vendorId: suitLib().uuidToString(vendorId), classId: suitLib().uuidToString(suitLib().classIdFrom(vendorId, opts.class)) };
        print(out, !!opts.json, (v: typeof out) => `wrote ${v.signed ? 'signed' : 'unsigned'} envelope ${v.out} (${v.size} bytes)\n  vendor ID: ${v.vendorId}\n  class ID:  ${v.classId}`);
      },
    ),
  );

  suit
    .command('sign')
    .description('add a signature (COSE_Sign1) over the manifest digest of an envelope')
    .requiredOption('--key <file>', 'private key: PEM, JWK or COSE_Key (P-256 or Ed25519)')
    .requiredOption('--in <file>', 'the envelope to sign')
    .requiredOption('--out <file>', 'where to write the signed envelope')
    .action(
      action(async (opts: { key: string; in: string; out: string }) => {
        const key = loadKey(opts.key);
        if (!key.privateKey && !key.secret) throw new CliError('not_a_private_key', `--key ${opts.key} holds no private key`, EXIT.usage, '--key');
        const input = readInput(opts.in, '--in');
        let signed: Uint8Array;
        try {
          signed = suitLib().signEnvelope(input, key);
        } catch (e) {
          throw suitToCli(e);
        }
        writeDurable(opts.out, signed);
        process.stdout.write(`signed ${opts.in} → ${opts.out} (${signed.length} bytes)\n`);
      }),
    );

  jsonOption(
    suit
      .command('verify <envelope>')
      .description('authenticate an envelope and check it (integrated payloads against their image digest too); exit 0 only if every check passes, 8 naming the failed check otherwise')
      .requiredOption('--key <file>', 'trusted public key: PEM, JWK or COSE_Key (repeatable: a trust list)', collect)
      .option('--seq <n>', 'current sequence number: the envelope must be strictly greater')
      .option('--vendor <vendor>', "device's vendor: UUID or vendor domain")
      .option('--class <class>', "device's class: UUID, or class info with --vendor")
      .option('--component <name>', 'component the device allows (repeatable)', collect),
  ).action(
    action(async (file: string, opts: { key: string[]; seq?: string; vendor?: string; class?: string; component?: string[]; json?: boolean }) => {
      const trust = opts.key.map(loadKey);
      const ids = identities(opts);
      const currentSeq = opts.seq !== undefined ? seqValue(parseSeq(opts.seq, '--seq')) : undefined;
      const bytes = readInput(file, 'envelope');
      const checks = ['signature', 'manifest digest', 'severed members'];
      if (currentSeq !== undefined) checks.push(`sequence > ${currentSeq}`);
      if (ids.vendorId) checks.push('vendor');
      if (ids.classId) checks.push('class');
      if (opts.component) checks.push('components');
      try {
        const v = await suitLib().verifyEnvelope(bytes, {
          trust,
          ...(currentSeq !== undefined ? { currentSeq } : {}),
          device: { ...ids, ...(opts.component ? { components: opts.component.map((c) => [new Uint8Array(Buffer.from(c, 'utf8'))]) } : {}) },
        });
        // Authentication covers the manifest; an integrated payload is bound by its image-digest.
        const payloads = suitLib().checkIntegratedPayloads(v);
        if (v.envelope.integrated.size > 0) checks.push('integrated payloads');
        const out: VerifyOut = {
          ok: true,
          sequenceNumber: String(v.manifest.sequenceNumber),
          digest: Buffer.from(v.manifestDigest.bytes).toString('hex'),
          components: v.manifest.common.components.map((c) => c.map((p) => Buffer.from(p).toString('hex'))),
          payloads,
          checks,
        };
        print(out, !!opts.json, (o: VerifyOut) =>
            [
              `verified: sequence ${o.sequenceNumber}, manifest digest ${o.digest}`,
              `  checks: ${o.checks.join(', ')}`,
              ...o.payloads.map((p) => `  payload ${p.name} (${p.size} bytes) matches the image digest of component ${p.component}`),
            ].join('\n'),
        );
      } catch (e) {
        throw suitToCli(e);
      }
    }),
  );

  suit
    .command('keygen')
    .description('generate a signing key pair: PREFIX.key (private, mode 0600) and PREFIX.pub')
    .requiredOption('--alg <alg>', 'es256 or ed25519')
    .requiredOption('--out <prefix>', 'path prefix of the two PEM files')
    .action(
      action(async (opts: { alg: string; out: string }) => {
        if (opts.alg !== 'es256' && opts.alg !== 'ed25519') throw new CliError('bad_alg', `--alg must be es256 or ed25519, got "${opts.alg}"`, EXIT.usage, '--alg');
        const k = suitLib().generateSigningKey(opts.alg);
        writeDurable(`${opts.out}.key`, k.privatePem, 0o600);
        writeDurable(`${opts.out}.pub`, k.publicPem);
        process.stdout.write(`wrote ${opts.out}.key and ${opts.out}.pub (${opts.alg})\n`);
      }),
    );

  return suit;
}
