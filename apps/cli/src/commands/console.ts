import type { InterfaceStateOut, TamperEventOut } from '@tips/core';
import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { loadConfig } from '../config.ts';
import { CliError, EXIT, exitCodeForStatus } from '../errors.ts';
import { listOptions, pageOptions, print, printPages, table } from '../output.ts';

// What the web console reads, for the command line too (D6): the live event stream, the state of a
// metal's interfaces across gateways, default Spaces of many metals, the fleet's tamper reports.

const cell = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));

interface LiveEvent {
  kind: string;
  resource?: string;
  gatewayId?: string;
  at: string;
}

/**
 * Reads `GET /api/v1/events` (Server-Sent Events) and writes one line per change. Without `follow`
 * it stops after `seconds`; with it, it reconnects when the master ends the stream (as EventSource
 * does) until interrupted.
 */
async function readEvents(opts: { follow: boolean; seconds: number; json: boolean; max: number }): Promise<void> {
  const config = loadConfig();
  const base = config.url.endsWith('/') ? config.url : `${config.url}/`;
  let left = opts.max;
  for (;;) {
    const url = new URL(`api/v1/events?seconds=${opts.seconds}`, base);
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${config.token}`, accept: 'text/event-stream' } });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      if (!opts.follow) throw new CliError('unreachable', `cannot reach the master at ${config.url} (${cause})`, EXIT.unreachable);
      process.stderr.write(`master unreachable (${cause}); retrying in 2 s\n`);
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (!res.ok || !res.body) {
      let e: { code?: string; message?: string } | undefined;
      try {
        e = ((await res.json()) as { error?: typeof e }).error;
      } catch {
        // not the API's error shape
      }
      throw new CliError(e?.code ?? `http_${res.status}`, e?.message ?? `the master answered HTTP ${res.status}`, exitCodeForStatus(res.status));
    }
    const decoder = new TextDecoder();
    let carry = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      carry += decoder.decode(chunk, { stream: true });
      // SSE events end with a blank line; comments (": …") are heartbeats.
      for (let end = carry.indexOf('\n\n'); end >= 0; end = carry.indexOf('\n\n')) {
        const block = carry.slice(0, end);
        carry = carry.slice(end + 2);
        const lines = block.split('\n');
        const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
        const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (event !== 'change') continue;
        const e = JSON.parse(data) as LiveEvent;
        process.stdout.write(opts.json ? `${JSON.stringify(e)}\n` : `${e.at}  ${e.kind.padEnd(12)} ${e.resource ?? ''}${e.gatewayId ? ` gateway ${e.gatewayId}` : ''}\n`);
        if (--left === 0) return;
      }
    }
    if (!opts.follow) return;
  }
}

export function registerConsoleCommands(program: Command): void {
  program
    .command('events')
    .description("what changes in your fleet as it happens (the console's live feed, GET /api/v1/events): gateway tables, registrations, your writes, Phase 1 jobs, metal reports")
    .option('--follow', 'keep reading: reconnect when the master ends the stream, until interrupted')
    .option('--seconds <n>', 'how long one stream stays open (0–3600, default 900)', '900')
    .option('--limit <n>', 'stop after this many changes')
    .option('--json', 'one JSON object per line: {kind, resource?, gatewayId?, at}')
    .action(
      action(async (opts: { follow?: boolean; seconds: string; limit?: string; json?: boolean }) => {
        if (!/^[0-9]{1,4}$/.test(opts.seconds)) throw new CliError('bad_seconds', '--seconds must be an integer from 0 to 3600', EXIT.usage);
        if (opts.limit !== undefined && !/^[1-9][0-9]{0,8}$/.test(opts.limit)) throw new CliError('bad_limit', '--limit must be a positive integer', EXIT.usage);
        await readEvents({ follow: !!opts.follow, seconds: Number(opts.seconds), json: !!opts.json, max: opts.limit === undefined ? Number.POSITIVE_INFINITY : Number(opts.limit) });
      }),
    );

  const metal = program.commands.find((c) => c.name() === 'metal');
  if (!metal) throw new Error('registerConsoleCommands needs the metal command registered first');

  jsonOption(metal.command('states <metal>').description("the state of each of a metal's interfaces in the latest table of each of your gateways (Pending / Active / Blocked, T11)")).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const m = await api().call<{ id: string; name: string; interfaces: { name: string; mac: string }[] }>('GET', `api/v1/metals/${encodeURIComponent(ref)}`);
      const macs = m.interfaces.map((i) => i.mac).join(',');
      const r = macs ? await api().call<{ items: InterfaceStateOut[] }>('GET', `api/v1/interface-states?macs=${encodeURIComponent(macs)}`) : { items: [] };
      print(r, !!opts.json, () => {
        const rows = m.interfaces.flatMap((i) => {
          const st = r.items.filter((s) => s.mac === i.mac.toLowerCase());
          return st.length ? st.map((s) => [i.name, i.mac, s.gatewayName, s.state, cell(s.ip), cell(s.reason), cell(s.lastSeenAt)]) : [[i.name, i.mac, '-', 'not seen', '-', '-', '-']];
        });
        return table(['IFACE', 'MAC', 'GATEWAY', 'STATE', 'IP', 'REASON', 'LAST SEEN'], rows);
      });
    }),
  );

  jsonOption(metal.command('default-spaces <metals...>').description('the default Phase 1 Space of each metal named (IDs or names, up to 200), in one request')).action(
    action(async (refs: string[], opts: { json?: boolean }) => {
      if (refs.length > 200) throw new CliError('too_many', 'at most 200 metals at once', EXIT.usage);
      const r = await api().call<{ items: { metalId: string; spaceId: string; spaceName: string }[] }>('GET', `api/v1/default-spaces?metals=${encodeURIComponent(refs.join(','))}`);
      print(r, !!opts.json, () => table(['METAL', 'DEFAULT SPACE', 'SPACE ID'], r.items.map((d) => [d.metalId, d.spaceName, d.spaceId])));
    }),
  );

  pageOptions(jsonOption(program.command('tamper-events').description("tamper reports (T16) of all your metals, newest first: what changed, and whether the metal is blocked now"))).action(
    action(async (opts: { json?: boolean; jsonl?: boolean; limit?: string }) => {
      const { mode, max } = listOptions(opts);
      await printPages(api().pages<TamperEventOut>('api/v1/tamper-events', undefined, max), mode, ['AT', 'METAL', 'BLOCKED', 'CHANGES'], (e) => [
        e.createdAt,
        e.metalName,
        e.blocked ? 'yes' : 'no',
        (Array.isArray(e.detail.changes) ? (e.detail.changes as { kind: string; path: string }[]) : []).map((c) => `${c.kind} ${c.path}`).join('; '),
      ]);
    }),
  );
}
