import { describe, expect, it } from 'vitest';
import type { NotificationBus } from './model.ts';
import { NotificationService } from './service.ts';

const n = { glazes: ['g1'], spaceId: 's1', reason: 'glaze_set' as const, notBefore: null };

function setup(fail: (topic: string) => boolean = () => false) {
  const published: string[] = [];
  const logged: { level: string; obj: Record<string, unknown> }[] = [];
  const bus: NotificationBus = {
    url: 'mqtts://localhost:1',
    publish: async (topic) => {
      if (fail(topic)) throw new Error('broker said no');
      published.push(topic);
    },
    connectedMetals: () => 0,
    disconnectMetal: () => 0,
    close: async () => {},
  };
  const s = new NotificationService();
  s.useBus(bus);
  s.useLog({ warn: (obj) => logged.push({ level: 'warn', obj: obj as Record<string, unknown> }), error: (obj) => logged.push({ level: 'error', obj: obj as Record<string, unknown> }) });
  return { s, published, logged };
}

describe('T15 Phase 3 fan-out (notifications service)', () => {
  it('returns before it looks up or publishes anything, then reaches every metal exactly once', async () => {
    const { s, published } = setup();
    let looked = false;
    const ids = Array.from({ length: 2_500 }, (_, i) => `m${i}`);
    const done = s.fanOut(async () => {
      looked = true;
      return ids;
    }, n);
    expect(looked).toBe(false);
    expect(published).toHaveLength(0);
    expect(await done).toBe(2_500);
    expect(new Set(published)).toEqual(new Set(ids.map((id) => `tips/metal/${id}`)));
    expect(published).toHaveLength(2_500);
  });

  it('logs a failed recipient lookup as an error and resolves to 0 (never thrown, never silent)', async () => {
    const { s, published, logged } = setup();
    expect(
      await s.fanOut(async () => {
        throw new Error('database gone');
      }, n),
    ).toBe(0);
    expect(published).toHaveLength(0);
    expect(logged).toEqual([{ level: 'error', obj: expect.objectContaining({ event: 'notification_fanout_failed', spaceId: 's1', err: 'database gone' }) }]);
  });

  it('a failed publish is logged for that metal only; the others still get theirs', async () => {
    const { s, published, logged } = setup((t) => t === 'tips/metal/m1');
    expect(await s.notify(['m0', 'm1', 'm2'], n)).toBe(2);
    expect(published.sort()).toEqual(['tips/metal/m0', 'tips/metal/m2']);
    expect(logged).toEqual([{ level: 'warn', obj: expect.objectContaining({ event: 'notification_failed', metal: 'm1' }) }]);
  });

  it('with no bus nothing is looked up (metals pull)', async () => {
    const s = new NotificationService();
    let looked = false;
    expect(
      await s.fanOut(async () => {
        looked = true;
        return ['m0'];
      }, n),
    ).toBe(0);
    expect(looked).toBe(false);
  });
});
