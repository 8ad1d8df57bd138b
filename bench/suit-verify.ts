/**
 * bench/suit-verify: envelopes verified per second (strict decode + COSE_Sign1 verify + manifest
 * digest + severed-member digests + rollback/policy checks) against the raw node:crypto verify loop
 * on the same key and the same signed bytes, in one run. Goal: ≥ 0.8 × the raw loop.
 *
 *   node --import tsx bench/suit-verify.ts            (TIPS_BENCH_SECONDS per round, default 2)
 *
 * Rounds alternate (raw, suit, raw, suit, ...) so that noise from other processes on the shared
 * cores hits both sides; the median round of each is reported, in operations per CPU-second.
 */
import { verify as nodeVerify } from 'node:crypto';
import { cpus } from 'node:os';
import {
  buildEnvelope,
  classIdFrom,
  decodeCoseSingle,
  decodeEnvelope,
  generateSigningKey,
  sigStructure,
  vendorIdFromDomain,
  verifyEnvelopeSync,
} from '@tips/suit';

const seconds = Number(process.env.TIPS_BENCH_SECONDS ?? 2);
const rounds = 5;

/**
 * Operations per CPU-second of this process (user + system): the cores are shared with other
 * work, and CPU time is what each side really costs. GC threads count against the side that
 * allocates.
 */
function rate(fn: () => void): number {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const c0 = process.cpuUsage();
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
  }
  const c = process.cpuUsage(c0);
  return n / ((c.user + c.system) / 1e6);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Row {
  alg: string;
  envelopeBytes: number;
  raw: number;
  suit: number;
  ratio: number;
}

function bench(alg: 'es256' | 'ed25519'): Row {
  const { key } = generateSigningKey(alg);
  const vendorId = vendorIdFromDomain('tips.example');
  const classId = classIdFrom(vendorId, 'pi4-phase1');
  // A Glaze envelope as the master issues them: URI delivery, the payload's digest and size.
  const envelope = buildEnvelope({
    vendorId,
    classId,
    component: 'rootfs',
    sequenceNumber: 1_700_000_000,
    payloadSha256: new Uint8Array(32).fill(7),
    payloadSize: 3 * 1024 ** 3,
    delivery: { mode: 'uri', uri: 'https://master.tips.example/api/v1/glazes/gl_01/payload' },
    text: 'Phase 1 Glaze',
    key,
  });
  const env = decodeEnvelope(envelope);
  const cose = decodeCoseSingle(env.authentication!.blocks[0]!);
  const tbs = sigStructure('Signature1', cose.protectedBytes, new Uint8Array(0), env.authentication!.digestBytes);
  const sig = cose.tag;
  const pub = key.publicKey!;
  const hash = alg === 'es256' ? 'sha256' : null;
  const opts = alg === 'es256' ? { key: pub, dsaEncoding: 'ieee-p1363' as const } : pub;
  const trust = [{ publicKey: pub }];
  const device = { vendorId, classId };

  const raw = () => {
    if (!nodeVerify(hash, tbs, opts, sig)) throw new Error('raw verify failed');
  };
  const suit = () => {
    verifyEnvelopeSync(envelope, { trust, currentSeq: 1_699_999_999, device });
  };
  raw();
  suit();
  const r: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < rounds; i++) {
    r.push(rate(raw));
    s.push(rate(suit));
  }
  const rawRate = median(r);
  const suitRate = median(s);
  return { alg, envelopeBytes: envelope.length, raw: rawRate, suit: suitRate, ratio: suitRate / rawRate };
}

const rows = [bench('es256'), bench('ed25519')];
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log('| alg | envelope | raw node:crypto verify (per CPU-s) | @tips/suit verifyEnvelopeSync (per CPU-s) | ratio |');
console.log('|---|---|---|---|---|');
for (const x of rows) {
  console.log(`| ${x.alg} | ${x.envelopeBytes} B | ${Math.round(x.raw)}/s | ${Math.round(x.suit)}/s | ${x.ratio.toFixed(2)} |`);
}
const worst = Math.min(...rows.map((x) => x.ratio));
console.log(`goal ≥ 0.80 × raw: ${worst >= 0.8 ? 'met' : 'NOT met'} (worst ratio ${worst.toFixed(2)})`);
