import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { loadConfig } from '../config.ts';
import { CliError, EXIT, exitCodeForStatus } from '../errors.ts';
import { listOptions, pageOptions, print, printPages, table } from '../output.ts';

export interface GatewayOut {
  id: string;
  name: string;
  enrolled: boolean;
  connected: boolean;
  enrolledName: string | null;
  enrolledAt: string | null;
  enrollmentExpiresAt: string | null;
  createdAt: string;
  lastSeenAt: string | null;
  table?: { updatedAt: string; rowCount?: number; rows: Record<string, unknown>[]; nextCursor?: string | null } | null;
}

const TABLE_HEADERS = ['IFACE', 'MAC', 'IP', 'STATE', 'TYPE', 'TIPS ID'];
const tableRow = (r: Record<string, unknown>) => [r.gatewayInterface, r.mac, r.ip, r.state, r.type, r.tipsId].map(cell);

/** The enroll commands the master builds from its public URL (`POST /gateways`). */
export interface EnrollOut {
  master: string;
  command: string;
  httpsMaster: string | null;
  httpsCommand: string | null;
}

export type { RegistrationOut } from '@tips/core';
import type { RegistrationOut } from '@tips/core';

const gatewayPath = (ref: string) => `api/v1/gateways/${encodeURIComponent(ref)}`;
const cell = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));

function showGateway(g: GatewayOut): string {
  const lines = [
    `Gateway ${g.name}`,
    `  ID:         ${g.id}`,
    `  enrolled:   ${g.enrolled ? `yes, ${cell(g.enrolledAt)}${g.enrolledName ? ` as ${g.enrolledName}` : ''}` : `no (token expires ${cell(g.enrollmentExpiresAt)})`}`,
    `  connected:  ${g.connected ? 'yes' : 'no'}`,
    `  last seen:  ${cell(g.lastSeenAt)}`,
  ];
  if (g.table === undefined) return lines.join('\n');
  if (g.table === null) return [...lines, '  table:      (never reported)'].join('\n');
  lines.push(`  table:      ${g.table.rows.length} rows, reported ${g.table.updatedAt}`);
  lines.push(...table(TABLE_HEADERS, g.table.rows.map(tableRow)).split('\n').map((l) => `    ${l}`));
  return lines.join('\n');
}

/** Writes an NDJSON endpoint to stdout as it arrives (exports can be large). */
/** Streams a JSON-lines export to stdout, stopping after `max` lines. */
async function streamLines(path: string, max = Number.POSITIVE_INFINITY): Promise<void> {
  const config = loadConfig();
  const url = new URL(path, config.url.endsWith('/') ? config.url : `${config.url}/`);
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${config.token}` } });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError('unreachable', `cannot reach the master at ${config.url} (${cause})`, EXIT.unreachable);
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    let e: { code?: string; message?: string; field?: string } | undefined;
    try {
      e = (JSON.parse(text) as { error?: typeof e }).error;
    } catch {
      // Not a TIPS error body: report the status only.
    }
    throw new CliError(e?.code ?? `http_${res.status}`, e?.message ?? `the master answered HTTP ${res.status}`, exitCodeForStatus(res.status), e?.field);
  }
  // Node's fetch body is a web stream, which is async-iterable in every supported Node version.
  const decoder = new TextDecoder();
  let left = max;
  let carry = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    let out: Uint8Array | string = chunk;
    if (left !== Number.POSITIVE_INFINITY) {
      carry += decoder.decode(chunk, { stream: true });
      let lines = '';
      for (let i = carry.indexOf('\n'); left > 0 && i >= 0; i = carry.indexOf('\n')) {
        lines += carry.slice(0, i + 1);
        carry = carry.slice(i + 1);
        left--;
      }
      out = lines;
    }
    if (!process.stdout.write(out)) await new Promise((r) => process.stdout.once('drain', r));
    // Leaving the loop cancels the rest of the export.
    if (left === 0) break;
  }
}

/** `tips gateway …`, `tips discovery …`, and `tips metal block|unblock` (TIPS-D, T6–T11, T16). */
export function registerDiscoveryCommands(program: Command): void {
  const gateway = program.command('gateway').description('gateways (TIPS-G) of your premises: declare, enroll, inspect, remove');

  jsonOption(gateway.command('add').description('declare a gateway and get its one-time enrollment token').requiredOption('--name <name>', 'a name unique among your gateways')).action(
    action(async (opts: { name: string; json?: boolean }) => {
      const r = await api().call<{ gateway: GatewayOut; enrollmentToken: string; enroll: EnrollOut }>('POST', 'api/v1/gateways', { name: opts.name });
      // The master builds the commands from its public URL (--public-url): the CLI's own URL may only work from here.
      print(r, !!opts.json, () =>
        [
          `created gateway ${r.gateway.name} with ID ${r.gateway.id}`,
          `one-time enrollment token (shown only now, valid until ${r.gateway.enrollmentExpiresAt}):`,
          `  ${r.enrollmentToken}`,
          'on the gateway, run:',
          `  ${r.enroll.command}`,
          ...(r.enroll.httpsCommand
            ? ['or over HTTPS, verifying the master against the TIPS CA (first: tips ca show > tips-ca.pem, and copy it to the gateway):', `  ${r.enroll.httpsCommand}`]
            : []),
        ].join('\n'),
      );
    }),
  );

  pageOptions(jsonOption(gateway.command('list').description('list your gateways, oldest first'))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<GatewayOut>('api/v1/gateways', undefined, max), mode, ['NAME', 'ID', 'ENROLLED', 'CONNECTED', 'LAST SEEN'], (g) => [
        g.name,
        g.id,
        g.enrolled ? 'yes' : 'no',
        g.connected ? 'yes' : 'no',
        cell(g.lastSeenAt),
      ]);
    }),
  );

  jsonOption(gateway.command('show <gateway>').description('show a gateway (by name or ID) and its whole latest interface table (following its pages)')).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const g = await api().call<GatewayOut>('GET', gatewayPath(ref));
      // The answer holds the table's first page; the rest come from /interfaces after its cursor.
      if (g.table?.nextCursor) {
        for await (const page of api().pages<Record<string, unknown>>(`${gatewayPath(g.id)}/interfaces`, undefined, undefined, g.table.nextCursor)) g.table.rows.push(...page);
        g.table.nextCursor = null;
      }
      print(g, !!opts.json, showGateway);
    }),
  );

  pageOptions(jsonOption(gateway.command('interfaces <gateway>').description("list a gateway's latest interface table (T11), page after page"))).action(
    action(async (ref: string, opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<Record<string, unknown>>(`${gatewayPath(ref)}/interfaces`, undefined, max), mode, TABLE_HEADERS, tableRow);
    }),
  );

  gateway
    .command('remove <gateway>')
    .description('remove a gateway: its key stops working and its channel is closed')
    .action(
      action(async (ref: string) => {
        await api().call('DELETE', gatewayPath(ref));
        process.stdout.write(`removed gateway ${ref}\n`);
      }),
    );

  const discovery = program.command('discovery').description('TIPS-D registration decisions recorded from your gateways');
  jsonOption(
    discovery
      .command('failures')
      .description('failed registrations (when, which gateway by name — its ID in --json/--jsonl, which address, why), newest first')
      .option('--mac <mac>', 'only this MAC')
      .option('--gateway <gateway>', 'only this gateway (name or ID)')
      .option('--reason <reason>', 'only this reason: unknown_mac, metal_blocked, no_default_space (foreign_gateway: records made before MACs became unique per owner)')
      .option('--since <iso>', 'only since this time (ISO-8601)')
      .option('--limit <n>', 'at most this many (default: all, page after page)')
      .option('--jsonl', 'stream every matching record as JSON lines, oldest first (for anomaly tools)'),
  ).action(
    action(async (opts: { mac?: string; gateway?: string; reason?: string; since?: string; limit?: string; json?: boolean; jsonl?: boolean }) => {
      const { mode, max } = listOptions(opts);
      const q = new URLSearchParams();
      if (opts.mac) q.set('mac', opts.mac);
      if (opts.gateway) q.set('gatewayId', /^gwy_/.test(opts.gateway) ? opts.gateway : (await api().call<GatewayOut>('GET', gatewayPath(opts.gateway))).id);
      if (opts.reason) q.set('reason', opts.reason);
      if (opts.since) q.set('since', opts.since);
      const query = q.toString();
      if (opts.jsonl) {
        await streamLines(`api/v1/discovery/failures.jsonl${query ? `?${query}` : ''}`, max);
        return;
      }
      await printPages(api().pages<RegistrationOut>('api/v1/discovery/failures', q, max), mode, ['AT', 'GATEWAY', 'IFACE', 'MAC', 'IP', 'TYPE', 'REASON', 'TIPS ID'], (f) => [
        f.at,
        f.gatewayName ?? f.gatewayId,
        f.gatewayInterface,
        f.mac,
        f.ip,
        f.interfaceType,
        cell(f.reason),
        cell(f.tipsId),
      ]);
    }),
  );

  const metal = program.commands.find((c) => c.name() === 'metal');
  if (!metal) throw new Error('registerDiscoveryCommands needs the metal command registered first');
  jsonOption(metal.command('block <metal>').description("block every interface of a metal at all your gateways (T16), until unblocked").option('--reason <reason>', 'why (kept with the block)')).action(
    action(async (ref: string, opts: { reason?: string; json?: boolean }) => {
      const r = await api().call<{ tipsId: string; macs: string[]; gateways: number }>('POST', `api/v1/metals/${encodeURIComponent(ref)}/block`, opts.reason ? { reason: opts.reason } : {});
      print(r, !!opts.json, () => `blocked metal ${ref} (${r.tipsId}): ${r.macs.join(', ')} at ${r.gateways} gateway(s)`);
    }),
  );
  jsonOption(metal.command('unblock <metal>').description('lift a block: your gateways let the metal register again')).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const r = await api().call<{ tipsId: string; macs: string[]; gateways: number }>('POST', `api/v1/metals/${encodeURIComponent(ref)}/unblock`);
      print(r, !!opts.json, () => `unblocked metal ${ref} (${r.tipsId}) at ${r.gateways} gateway(s)`);
    }),
  );
}
