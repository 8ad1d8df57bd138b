/**
 * The DTLS + CoAP stack alone, for bench/coap-blockwise: @tips/coap's CoapServer over @tips/dtls serving a
 * file from memory on GET /blob with the PSK given (hex) — no database, no blob store, no per-request auth.
 *   node --import tsx bench/coap-stack-server.ts <port> <file> <identity> <psk-hex>
 */
import { readFileSync } from 'node:fs';
import { CoapServer } from '@tips/coap';
import { createDtlsServer } from '@tips/dtls';
import pino from 'pino';

const [port, file, identity, keyHex] = process.argv.slice(2) as [string, string, string, string];
const blob = readFileSync(file);
const key = Buffer.from(keyHex, 'hex');
const logger = pino({ level: 'warn' });
const transport = await createDtlsServer({ host: '127.0.0.1', port: Number(port), logger, psk: async (id) => (id === identity ? key : undefined) });
const coap = new CoapServer(transport, { logger });
// As the master's payload route does: the bytes are in memory, and the transport (the native fast path, when
// built) may serve the following blocks for a second before the next one comes back here.
coap.route('GET', '/blob', async () => ({
  code: '2.05',
  contentFormat: 42,
  payload: { size: blob.length, read: (o: number, l: number) => blob.subarray(o, o + l), whole: () => blob },
  offloadUntil: () => Date.now() + 1000,
}));
process.stdout.write(`listening ${transport.address().port}\n`);
// A clean exit on SIGTERM, so `node --cpu-prof` writes its profile.
process.on('SIGTERM', () => {
  process.stderr.write(`${JSON.stringify(transport.stats())}\n`);
  process.exit(0);
});
