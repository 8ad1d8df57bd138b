import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  armorVoucher,
  createVoucher,
  decodeVoucher,
  extendVoucher,
  guidToString,
  keyFingerprint,
  readVoucherFile,
  rendezvousFromUrls,
  rendezvousUrls,
  VoucherError,
  verifyVoucherChain,
} from '@tips/onboarding';
import type { Command } from 'commander';
import { action, collect, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { writeFileDurably } from '../files.ts';
import { print, table } from '../output.ts';
import { createTpmDeviceKey, type TpmKeyRecord } from './factory-tpm.ts';
import { writeNewFile } from './identity.ts';

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new CliError('file_unreadable', `${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage, what);
  }
}

export function loadPrivateKey(path: string, flag: string): KeyObject {
  try {
    return createPrivateKey(readFile(path, flag));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError('key_invalid', `${flag} ${path}: not a private key in PEM (${(e as Error).message})`, EXIT.usage, flag);
  }
}

export function loadPublicKey(path: string, flag: string): KeyObject {
  try {
    return createPublicKey(readFile(path, flag));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError('key_invalid', `${flag} ${path}: not a public key in PEM (${(e as Error).message})`, EXIT.usage, flag);
  }
}

function voucherToCli(e: unknown, exitCode: number): unknown {
  if (e instanceof VoucherError) return new CliError(e.code, e.message, exitCode);
  return e;
}

const INFO_KEY = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const INFO_VALUE = /^[^;=\x00-\x1f\x7f]{0,128}$/;

/** Device info, FDO's free text, written by TIPS as `key=value;key=value` (labels later). */
function deviceInfo(pairs: string[]): string {
  if (pairs.length === 0) throw new CliError('missing_info', 'give at least one --info key=value (vendor=…, class=…)', EXIT.usage, '--info');
  return pairs
    .map((p) => {
      const i = p.indexOf('=');
      const k = p.slice(0, i);
      const v = p.slice(i + 1);
      if (i <= 0 || !INFO_KEY.test(k) || !INFO_VALUE.test(v)) {
        throw new CliError('bad_info', `--info "${p.slice(0, 80)}" must be key=value (key: lower-case letters, digits, . _ -; value: no ; or =)`, EXIT.usage, '--info');
      }
      return `${k}=${v}`;
    })
    .join(';');
}

interface DeviceMade {
  guid: string;
  voucher: string;
  deviceKey: string;
  credential: string;
  deviceKeyFingerprint: string;
  owner: string;
}

/** `tips factory`: the manufacturer's (and a distributor's) side of onboarding. Runs without a master. */
export function registerFactoryCommands(program: Command): void {
  const factory = program
    .command('factory')
    .description("the manufacturer's and distributors' side of zero-touch onboarding (needs no master): keys, device credentials, ownership vouchers")
    .addHelpText('after', '\nVouchers follow FIDO Device Onboard 1.1 (docs/onboarding-vouchers.md). Files: <guid>.voucher (armoured), <guid>/device.key and <guid>/device.cred (mode 0600, for the device).');

  const key = factory.command('key').description('manufacturer and distributor signing keys (ECDSA, as FDO requires)');
  jsonOption(
    key
      .command('create')
      .description('make a key pair: the private key (PEM, mode 0600) and <out>.pub (the public key to hand to whoever signs devices over to you)')
      .requiredOption('--out <file>', 'where to write the private key')
      .option('--curve <curve>', 'p256 or p384', 'p256'),
  ).action(
    action(async (opts: { out: string; curve: string; json?: boolean }) => {
      if (opts.curve !== 'p256' && opts.curve !== 'p384') throw new CliError('bad_curve', `--curve must be p256 or p384, got "${opts.curve}"`, EXIT.usage, '--curve');
      const pair = generateKeyPairSync('ec', { namedCurve: opts.curve === 'p256' ? 'prime256v1' : 'secp384r1' });
      const out = resolve(opts.out);
      writeNewFile(out, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
      writeNewFile(`${out}.pub`, pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o644);
      const result = { privateKey: out, publicKey: `${out}.pub`, fingerprint: keyFingerprint(pair.publicKey) };
      print(result, opts.json === true, (r: typeof result) => `private key ${r.privateKey} (0600)\npublic key  ${r.publicKey}\nsha256      ${r.fingerprint}`);
    }),
  );

  const device = factory.command('device').description('device credentials and their first voucher');
  jsonOption(
    device
      .command('create')
      .description("make devices: each a key pair, a device credential (GUID, manufacturer key hash, rendezvous addresses, HMAC secret) and its ownership voucher")
      .requiredOption('--manufacturer-key <file>', "the manufacturer's private key (tips factory key create)")
      .requiredOption('--rendezvous <url>', 'a rendezvous address, http(s)://host:port (repeatable)', collect)
      .requiredOption('--info <key=value>', 'device info (repeatable): vendor=…, class=…, model=…', collect)
      .requiredOption('--out-dir <dir>', 'where to write the files')
      .option('--count <n>', 'how many devices', '1')
      .option('--to <next-owner.pub>', 'sign each new voucher over to this key at once (the first hop)')
      .option('--tpm <tcti>', "make the device key inside the device's TPM 2.0 (tpm2-tools TCTI, e.g. swtpm:host=127.0.0.1,port=2321 or device:/dev/tpmrm0); one device")
      .option('--tpm-handle <handle>', 'persistent handle for the TPM key', '0x81010001'),
  ).action(
    action(async (opts: { manufacturerKey: string; rendezvous: string[]; info: string[]; outDir: string; count: string; to?: string; tpm?: string; tpmHandle: string; json?: boolean }) => {
      if (!/^[1-9][0-9]{0,4}$/.test(opts.count)) throw new CliError('bad_count', `--count must be an integer from 1 to 99999, got "${opts.count}"`, EXIT.usage, '--count');
      if (opts.tpm !== undefined && opts.count !== '1') throw new CliError('bad_count', '--tpm makes the key of the one device whose TPM it reaches: --count must be 1', EXIT.usage, '--count');
      const mfr = loadPrivateKey(opts.manufacturerKey, '--manufacturer-key');
      const next = opts.to === undefined ? undefined : loadPublicKey(opts.to, '--to');
      const info = deviceInfo(opts.info);
      let rendezvous: ReturnType<typeof rendezvousFromUrls>;
      try {
        rendezvous = rendezvousFromUrls(opts.rendezvous);
      } catch (e) {
        throw voucherToCli(e, EXIT.usage);
      }
      const dir = resolve(opts.outDir);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const made: DeviceMade[] = [];
      for (let n = 0; n < Number(opts.count); n++) {
        // Software: a key pair whose private half goes to the device's file. TPM: the key is made inside it.
        const pair = opts.tpm === undefined ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : { privateKey: undefined, publicKey: createTpmDeviceKey(opts.tpm, opts.tpmHandle) };
        const guidBytes = new Uint8Array(randomBytes(16));
        const guid = guidToString(guidBytes);
        let voucher: Uint8Array;
        let credential: Uint8Array;
        try {
          ({ voucher, credential } = createVoucher({ guid: guidBytes, deviceInfo: info, rendezvous, manufacturerKey: mfr, deviceKey: pair.publicKey, hmacSecret: new Uint8Array(randomBytes(32)) }));
          if (next) voucher = extendVoucher(voucher, mfr, next);
        } catch (e) {
          throw voucherToCli(e, EXIT.usage);
        }
        const deviceDir = join(dir, guid);
        mkdirSync(deviceDir, { mode: 0o700 });
        const files = { deviceKey: join(deviceDir, pair.privateKey ? 'device.key' : 'device.tpm'), credential: join(deviceDir, 'device.cred'), voucher: join(dir, `${guid}.voucher`) };
        if (pair.privateKey) writeNewFile(files.deviceKey, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
        else {
          const record: TpmKeyRecord = { tpm2: { handle: opts.tpmHandle, alg: 'ecdsa-p256-sha256' }, publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
          writeNewFile(files.deviceKey, `${JSON.stringify(record, null, 2)}\n`, 0o600);
        }
        writeNewFile(files.credential, credential, 0o600);
        writeNewFile(files.voucher, armorVoucher(voucher), 0o644);
        made.push({ guid, ...files, deviceKeyFingerprint: keyFingerprint(pair.publicKey), owner: keyFingerprint(next ?? mfr) });
      }
      print({ devices: made }, opts.json === true, (r: { devices: DeviceMade[] }) => table(['GUID', 'VOUCHER', 'OWNER (sha256)'], r.devices.map((d) => [d.guid, d.voucher, `${d.owner.slice(0, 16)}…`])));
    }),
  );

  const voucher = factory.command('voucher').description('ownership vouchers: extend one hop, or show one');
  jsonOption(
    voucher
      .command('extend <voucher...>')
      .description('sign each voucher over to the next owner (one entry per hop: manufacturer → distributor → owner); the file is replaced durably')
      .requiredOption('--to <next-owner.pub>', "the next owner's public key (PEM)")
      .requiredOption('--key <current-owner.key>', "the current owner's private key (PEM): the key the voucher's last entry names"),
  ).action(
    action(async (files: string[], opts: { to: string; key: string; json?: boolean }) => {
      const current = loadPrivateKey(opts.key, '--key');
      const next = loadPublicKey(opts.to, '--to');
      // Every voucher is extended in memory first: a refusal of the tenth leaves all ten files as they were.
      const out = files.map((file) => {
        try {
          const bytes = extendVoucher(readVoucherFile(new Uint8Array(readFile(file, 'voucher'))), current, next);
          const v = decodeVoucher(bytes);
          return { file: resolve(file), bytes, guid: guidToString(v.header.guid), entries: v.entries.length, owner: keyFingerprint(next) };
        } catch (e) {
          const err = voucherToCli(e, EXIT.invalid);
          if (err instanceof CliError) throw new CliError(err.code, `${file}: ${err.message}`, err.exitCode, err.field);
          throw err;
        }
      });
      for (const o of out) writeFileDurably(o.file, armorVoucher(o.bytes), 0o644);
      const result = { vouchers: out.map(({ bytes: _b, ...rest }) => rest) };
      print(result, opts.json === true, (r: typeof result) => table(['GUID', 'ENTRIES', 'OWNER (sha256)', 'FILE'], r.vouchers.map((v) => [v.guid, String(v.entries), `${v.owner.slice(0, 16)}…`, v.file])));
    }),
  );

  jsonOption(voucher.command('show <voucher>').description('decode a voucher and check its chain (not its owner): GUID, device info, rendezvous, each hop; exit 8 when a link is broken')).action(
    action(async (file: string, opts: { json?: boolean }) => {
      let v: ReturnType<typeof decodeVoucher>;
      try {
        v = decodeVoucher(readVoucherFile(new Uint8Array(readFile(file, 'voucher'))));
      } catch (e) {
        throw voucherToCli(e, EXIT.verification);
      }
      let chain: { valid: boolean; code?: string; link?: number | string; message?: string };
      try {
        verifyVoucherChain(v);
        chain = { valid: true };
      } catch (e) {
        if (!(e instanceof VoucherError)) throw e;
        chain = { valid: e.code === 'voucher_no_entries', code: e.code, link: e.link, message: e.message };
      }
      const result = {
        guid: guidToString(v.header.guid),
        deviceInfo: v.header.deviceInfo,
        rendezvous: rendezvousUrls(v.header.rendezvous),
        manufacturerKey: keyFingerprint(v.header.manufacturerKey),
        entries: v.entries.map((e, i) => ({ index: i, nextOwner: keyFingerprint(e.payload.nextOwnerKey) })),
        chain,
      };
      print(result, opts.json === true, (r: typeof result) =>
        [
          `guid:          ${r.guid}`,
          `device info:   ${r.deviceInfo}`,
          `rendezvous:    ${r.rendezvous.join(', ')}`,
          `manufacturer:  sha256:${r.manufacturerKey}`,
          ...r.entries.map((e) => `entry ${e.index}:       → sha256:${e.nextOwner}`),
          `chain:         ${r.chain.valid ? (r.entries.length === 0 ? 'no entry yet (the manufacturer owns it)' : 'every link holds') : `BROKEN: ${r.chain.message}`}`,
        ].join('\n'),
      );
      if (!chain.valid) process.exitCode = EXIT.verification;
    }),
  );
}
