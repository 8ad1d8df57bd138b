/**
 * S13 `tips metal psk issue|list|revoke`: DTLS pre-shared keys for constrained metals that speak
 * CoAP over DTLS (CONTRACT F). The key is printed once, at issue; the master keeps it sealed.
 */
import type { Command } from 'commander';
import { action, api, jsonOption } from '../context.ts';
import { print } from '../output.ts';

interface PskOut {
  identity: string;
  createdAt: string;
  revokedAt: string | null;
}

const path = (ref: string) => `api/v1/metals/${encodeURIComponent(ref)}/psk`;

export function registerMetalPskCommands(metal: Command): void {
  const psk = metal.command('psk').description('DTLS pre-shared keys of a metal, for CoAP over DTLS (coaps://, TLS_PSK_WITH_AES_128_CCM_8)');

  jsonOption(
    psk
      .command('issue <metal>')
      .description('issue a PSK: prints the identity and the key (16 bytes, hex) once — the master never shows the key again; at most 4 live per metal'),
  ).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const r = await api().call<PskOut & { key: string }>('POST', path(ref));
      print(r, !!opts.json, (v: typeof r) =>
        [`identity: ${v.identity}`, `key:      ${v.key}`, 'The key is shown only now: give it to the metal (e.g. coap-client -u <identity> -k <key>).'].join('\n'),
      );
    }),
  );

  jsonOption(psk.command('list <metal>').description("the metal's PSK identities, oldest first, revoked ones too (never a key)")).action(
    action(async (ref: string, opts: { json?: boolean }) => {
      const r = await api().call<{ items: PskOut[] }>('GET', path(ref));
      print(r.items, !!opts.json, (v: PskOut[]) =>
        v.length === 0 ? '(none)' : v.map((p) => `${p.identity}  issued ${p.createdAt}${p.revokedAt ? `  revoked ${p.revokedAt}` : '  live'}`).join('\n'),
      );
    }),
  );

  jsonOption(
    psk.command('revoke <metal> <identity>').description('revoke a PSK: new handshakes with it are refused, and every CoAP request of a session made with it is refused (4.01)'),
  ).action(
    action(async (ref: string, identity: string, opts: { json?: boolean }) => {
      await api().call('DELETE', `${path(ref)}/${encodeURIComponent(identity)}`);
      print({ identity, revoked: true }, !!opts.json, () => `revoked PSK ${identity}`);
    }),
  );
}
