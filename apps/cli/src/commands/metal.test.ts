import { describe, expect, it } from 'vitest';
import { type MetalOut, showMetal } from './metal.ts';

const metal: MetalOut = {
  id: 'tid_1',
  name: 'pi-07',
  labels: {},
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:07:01', type: 'ethernet', pxe: true }],
  createdAt: '2026-11-29T09:00:00.000Z',
  retiredAt: null,
};
const report = { id: 'rpt_1', spaceId: 'spc_apps', glazeId: 'glz_14', sequence: 14, at: '2026-11-29T12:00:00.000Z' };

describe('S14 D2 tips metal show: retirement and rollbacks', () => {
  it('prints the retired line only for a retired metal', () => {
    expect(showMetal(metal)).not.toMatch(/retired/);
    expect(showMetal({ ...metal, retiredAt: '2026-11-29T13:00:00.000Z' })).toMatch(/^ {2}retired: {4}2026-11-29T13:00:00\.000Z \(certificates revoked; it never enrolls again\)$/m);
  });

  it('marks a rollback in the history with the version the metal went back to', () => {
    const updates = {
      profile: null,
      installed: [{ spaceId: 'spc_apps', glazeId: 'glz_13', glazeName: 'web', version: '1.3', sequence: 13, installedAt: '2026-11-29T12:00:00.000Z' }],
      lastReport: null,
      history: [
        { ...report, result: 'rolled_back', reason: 'rollback_requested', rolledBackTo: { glazeId: 'glz_13', glazeName: 'web', version: '1.3' } },
        { ...report, result: 'rolled_back', reason: 'rollback_requested', rolledBackTo: { glazeId: null, glazeName: null, version: null } },
        { ...report, result: 'installed', reason: null },
      ],
      events: [{ id: 'evt_1', kind: 'rolled_back', code: 'glaze_rolled_back', detail: { reportId: 'rpt_1', spaceId: 'spc_apps', from: 'glz_14', to: 'glz_13' }, createdAt: '2026-11-29T12:00:01.000Z' }],
    };
    const out = showMetal({ ...metal, updates }).split('\n');
    expect(out).toContain('    web              1.3  seq 13  in spc_apps  since 2026-11-29T12:00:00.000Z');
    const history = out.slice(out.indexOf('  history:') + 1);
    expect(history[0]).toMatch(/rolled_back glz_14 .*\(rollback_requested\) {2}-> back to web 1\.3$/);
    expect(history[1]).toMatch(/-> back to nothing TIPS installed$/);
    expect(history[2]).not.toMatch(/back to/);
    expect(out).toContain('    2026-11-29T12:00:01.000Z  rolled_back        glaze_rolled_back: glz_14 -> glz_13');
  });
});
