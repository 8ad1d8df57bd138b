import { describe, expect, it } from 'vitest';
import { parseHint } from './push.ts';

const bytes = (v: unknown) => new Uint8Array(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));

describe('T15 S9 an MQTT notification is read as a hint, strictly', () => {
  it('reads the contract C shape', () => {
    expect(parseHint(bytes({ glazes: ['glz_1'], spaceId: 'spc_1', reason: 'glaze_set', notBefore: null }))).toEqual({ glazes: ['glz_1'], spaceId: 'spc_1', reason: 'glaze_set', notBefore: null });
    expect(parseHint(bytes({ glazes: ['glz_1'], spaceId: 'spc_1', reason: 'rollback', notBefore: '2026-11-29T12:00:00Z' }))?.notBefore).toBe('2026-11-29T12:00:00Z');
  });
  it('drops anything else: not JSON, an unknown reason, wrong types, a bad time, too large', () => {
    for (const bad of [
      'not json',
      '[1,2]',
      { glazes: ['glz_1'], spaceId: 'spc_1', reason: 'install_now', notBefore: null },
      { glazes: 'glz_1', spaceId: 'spc_1', reason: 'glaze_set', notBefore: null },
      { glazes: [1], spaceId: 'spc_1', reason: 'glaze_set', notBefore: null },
      { glazes: ['glz_1'], spaceId: 7, reason: 'glaze_set', notBefore: null },
      { glazes: ['glz_1'], spaceId: 'spc_1', reason: 'glaze_set', notBefore: 'tomorrow' },
      { glazes: ['x'.repeat(65)], spaceId: 'spc_1', reason: 'glaze_set', notBefore: null },
    ]) {
      expect(parseHint(bytes(bad)), JSON.stringify(bad)).toBeUndefined();
    }
    expect(parseHint(new Uint8Array(64 * 1024 + 1))).toBeUndefined();
  });
});
