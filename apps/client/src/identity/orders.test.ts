import { buildEnvelope, generateSigningKey } from '@tips/suit';
import { ENROLLMENT_COMPONENT, encodeReenrollment, encodeTrustList, TRUST_LIST_COMPONENT } from '@tips/trust';
import { describe, expect, it } from 'vitest';
import { ENROLLMENT_COMPONENT_KEY, judgeReenrollOrder } from './orders.ts';

const ops = generateSigningKey('ed25519');
const stranger = generateSigningKey('es256');
const trust = { version: 1, operators: [{ name: 'ops', publicKey: ops.key.publicKey! }], updateServers: [] };
const instruction = { estUri: 'https://master.example:8443/.well-known/est', secretId: `ens_${'1'.repeat(26)}`, secret: `est_${'b'.repeat(43)}` };
const order = (o: { key?: typeof ops; component?: Uint8Array[]; payload?: Uint8Array; seq?: number } = {}) =>
  buildEnvelope({
    vendorDomain: 'tips.directive',
    classInfo: 'enrollment',
    component: o.component ?? ENROLLMENT_COMPONENT,
    sequenceNumber: o.seq ?? 10,
    payload: o.payload ?? encodeReenrollment(instruction),
    delivery: { mode: 'integrated' },
    ...(o.key === undefined ? { key: ops.key } : o.key === stranger ? { key: stranger.key } : { key: o.key.key }),
  });

describe('S6 S14 a re-enrollment order is obeyed only when signed by an operator of the trust list', () => {
  it('a signed order yields its instruction and sequence', async () => {
    expect(await judgeReenrollOrder(trust, order(), {})).toEqual({ ok: true, instruction, sequence: 10 });
  });

  it('refuses unsigned, stranger-signed, tampered, other components, a bad payload and a replay', async () => {
    const unsigned = buildEnvelope({ vendorDomain: 'tips.directive', classInfo: 'enrollment', component: ENROLLMENT_COMPONENT, sequenceNumber: 10, payload: encodeReenrollment(instruction), delivery: { mode: 'integrated' } });
    const tampered = Buffer.from(order());
    // The secret inside the integrated payload: its digest no longer matches the signed manifest.
    const at = tampered.indexOf(Buffer.from('b'.repeat(43)));
    tampered[at] = 'c'.charCodeAt(0);
    const cases: [Uint8Array, Record<string, number>, string][] = [
      [unsigned, {}, 'suit_unsigned'],
      [order({ key: stranger }), {}, 'suit_untrusted_key'], // a P-256 key where the list has only Ed25519
      [new Uint8Array(tampered), {}, 'trust_list_digest_mismatch'],
      [order({ component: TRUST_LIST_COMPONENT, payload: encodeTrustList(trust) }), {}, 'trust_list_wrong_component'],
      [order({ payload: new Uint8Array([0xa0]) }), {}, 'trust_list_malformed'],
      [order({ seq: 10 }), { [ENROLLMENT_COMPONENT_KEY]: 10 }, 'suit_rollback'],
    ];
    for (const [env, seqs, reason] of cases) {
      const r = await judgeReenrollOrder(trust, env, seqs);
      expect(r.ok ? 'ok' : r.reason, reason).toBe(reason);
    }
  });
});
