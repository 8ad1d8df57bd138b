import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { CliError, EXIT } from '../errors.ts';
import { listOptions, pageOptions, print, printPages, table } from '../output.ts';
import { writeNewFile } from './identity.ts';

interface OnboardingKeyOut {
  id: string;
  name: string;
  alg: string;
  publicKey: string;
  fingerprint: string;
  createdAt: string;
}

interface VoucherOut {
  guid: string;
  status: string;
  deviceInfo: string;
  rendezvous: string[];
  manufacturerKey: string;
  deviceKey: string;
  ownerChain: string[];
  entries: number;
  onboardingKey: { id: string; name: string | null };
  sha256: string;
  importedAt: string;
  updatedAt: string;
  voucher?: string;
}

/** The largest bulk the master takes in one (all-or-nothing) request. */
const BATCH = 1000;

/** Files to import: each FILE as given; each DIR's `*.voucher` files, in name order. */
export function voucherFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(p);
    } catch (e) {
      throw new CliError('file_unreadable', `${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage);
    }
    if (st.isDirectory()) {
      const found = readdirSync(p)
        .filter((n) => n.endsWith('.voucher'))
        .sort()
        .map((n) => join(p, n))
        .filter((f) => statSync(f).isFile());
      if (found.length === 0) throw new CliError('no_vouchers', `${p}: no *.voucher files in this directory`, EXIT.usage);
      out.push(...found);
    } else out.push(p);
  }
  return out.map((f) => resolve(f));
}

const row = (v: VoucherOut) => [v.guid, v.status, String(v.entries), v.deviceInfo, v.onboardingKey.name ?? v.onboardingKey.id, v.importedAt];
const HEADERS = ['GUID', 'STATUS', 'ENTRIES', 'DEVICE INFO', 'KEY', 'IMPORTED'];

/** `tips voucher`: the owner's side — onboarding keys, importing vouchers, each device's status. */
export function registerVoucherCommands(program: Command): void {
  const voucher = program
    .command('voucher')
    .description("ownership vouchers on your master: your onboarding keys, importing vouchers your distributor signed over to you, each device's onboarding status")
    .addHelpText('after', '\nStatus: imported → rendezvous_registered → onboarded. A refused import names the file, the voucher (vouchers[i]) and the broken link (entry index or header); nothing is imported.');

  const key = voucher.command('owner-key').description('your onboarding keys (held by the master): the keys vouchers must end at');
  jsonOption(
    key
      .command('create <name>')
      .description('make an onboarding key; its public key is what your distributor extends vouchers to')
      .option('--out <file>', 'also write the public key (PEM) to this file'),
  ).action(
    action(async (name: string, opts: { out?: string; json?: boolean }) => {
      const k = await api().call<OnboardingKeyOut>('POST', '/api/v1/onboarding-keys', { name });
      if (opts.out) writeNewFile(resolve(opts.out), k.publicKey, 0o644);
      print(k, opts.json === true, (x: OnboardingKeyOut) => `onboarding key ${x.name} (${x.id}), sha256 ${x.fingerprint}\n${opts.out ? `public key written to ${resolve(opts.out)}\n` : ''}${x.publicKey.trimEnd()}`);
    }),
  );
  jsonOption(pageOptions(key.command('list').description('your onboarding keys'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<OnboardingKeyOut>('/api/v1/onboarding-keys', undefined, max), mode, ['NAME', 'ID', 'SHA256', 'CREATED'], (k) => [k.name, k.id, k.fingerprint, k.createdAt]);
    }),
  );
  jsonOption(key.command('show <ref>').description('one onboarding key: prints its public key (PEM)')).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const k = await api().call<OnboardingKeyOut>('GET', `/api/v1/onboarding-keys/${encodeURIComponent(ref)}`);
      print(k, opts.json === true, (x: OnboardingKeyOut) => x.publicKey.trimEnd());
    }),
  );

  jsonOption(
    voucher
      .command('import <path...>')
      .description('import vouchers (FILE… or DIR of *.voucher): each chain must end at one of your onboarding keys; importing one again changes nothing'),
  ).action(
    action(async (paths: string[], opts: { json?: boolean }) => {
      const files = voucherFiles(paths);
      const items: { file: string; result: string; voucher: VoucherOut }[] = [];
      for (let at = 0; at < files.length; at += BATCH) {
        const batch = files.slice(at, at + BATCH);
        const vouchers = batch.map((f) => readFileSync(f).toString('base64'));
        try {
          const r = await api().call<{ items: { result: string; voucher: VoucherOut }[] }>('POST', '/api/v1/vouchers', { vouchers });
          for (const [i, it] of r.items.entries()) items.push({ file: batch[i]!, ...it });
        } catch (e) {
          // Name the file the master refused (it names vouchers[i] of this batch).
          const m = e instanceof CliError ? /^vouchers\[(\d+)\]$/.exec(e.field ?? '') : null;
          if (e instanceof CliError && m) {
            const done = at > 0 ? ` (the ${at} before it, in earlier batches, were imported)` : '';
            throw new CliError(e.code, `${batch[Number(m[1])]}: ${e.message}${done}`, e.exitCode, e.field);
          }
          throw e;
        }
      }
      const result = { imported: items.filter((i) => i.result === 'imported').length, unchanged: items.filter((i) => i.result === 'unchanged').length, items };
      print(result, opts.json === true, (r: typeof result) =>
        `${table(['GUID', 'RESULT', 'STATUS', 'FILE'], r.items.map((i) => [i.voucher.guid, i.result, i.voucher.status, i.file]))}\n${r.imported} imported, ${r.unchanged} already there`,
      );
    }),
  );

  jsonOption(pageOptions(voucher.command('list').description("your imported vouchers and each device's onboarding status"))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<VoucherOut>('/api/v1/vouchers', undefined, max), mode, HEADERS, row);
    }),
  );

  jsonOption(
    voucher
      .command('register <guid...>')
      .description('register devices at the rendezvous servers their vouchers name, pointing them at this master (TO0): status → rendezvous_registered'),
  ).action(
    action(async (guids: string[], opts: { json?: boolean }) => {
      const out: { guid: string; status: string; registered: string[] }[] = [];
      for (const guid of guids) {
        const r = await api().call<{ voucher: VoucherOut; registered: string[] }>('POST', `/api/v1/vouchers/${encodeURIComponent(guid)}/rendezvous`);
        out.push({ guid: r.voucher.guid, status: r.voucher.status, registered: r.registered });
      }
      print(out, opts.json === true, (r: typeof out) => table(['GUID', 'STATUS', 'RENDEZVOUS'], r.map((x) => [x.guid, x.status, x.registered.join(', ')])));
    }),
  );

  jsonOption(voucher.command('show <guid>').description("one device's voucher: its chain of owners and onboarding status")).action(
    action(async (guid: string, opts: { json?: boolean }) => {
      const v = await api().call<VoucherOut>('GET', `/api/v1/vouchers/${encodeURIComponent(guid)}`);
      print(v, opts.json === true, (x: VoucherOut) =>
        [
          `guid:          ${x.guid}`,
          `status:        ${x.status}`,
          `device info:   ${x.deviceInfo}`,
          `rendezvous:    ${x.rendezvous.join(', ')}`,
          `manufacturer:  sha256:${x.manufacturerKey}`,
          ...x.ownerChain.map((k, i) => `entry ${i}:       → sha256:${k}`),
          `your key:      ${x.onboardingKey.name ?? x.onboardingKey.id}`,
          `imported:      ${x.importedAt}`,
        ].join('\n'),
      );
    }),
  );
}
