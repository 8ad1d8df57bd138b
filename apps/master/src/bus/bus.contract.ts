// The Bus contract: one suite every adapter passes (bus.contract.test.ts runs it in-process, on
// Mosquitto and on a 3-node NATS cluster). What the replicas rely on: a message one end publishes
// reaches the other end's subscribers of that topic and no other, as the JSON it was; unsubscribing
// stops it; when the broker an end is connected to dies, status() says down and then up again,
// with the subscriptions still in place.
import { expect, it } from 'vitest';
import type { Bus, BusStatus } from './bus.ts';

export interface BusHarness {
  /** Two ends (two replicas), possibly connected to different nodes. */
  a: Bus;
  b: Bus;
  /** The broker (node) that `a` is connected to dies, and a broker is reachable again afterwards (in-process: a partition that heals). */
  fail(): Promise<void>;
}

async function received(bus: Bus, topic: string): Promise<{ got: unknown[]; stop: () => void }> {
  const got: unknown[] = [];
  const stop = bus.subscribe(topic, (m) => got.push(m));
  return { got, stop };
}

/** Publishes `msg` until the subscriber has it (a subscription takes a round trip to be in place). */
async function deliver(from: Bus, topic: string, msg: object, got: unknown[]): Promise<void> {
  await expect
    .poll(
      async () => {
        if (got.length === 0) await from.publish(topic, msg).catch(() => {});
        return got.length;
      },
      { timeout: 15_000, interval: 200 },
    )
    .toBeGreaterThan(0);
}

export function busContract(make: () => BusHarness): void {
  it('delivers a message to the other end’s subscribers of that topic only, as the JSON it was', async () => {
    const { a, b } = make();
    await expect.poll(() => [a.status(), b.status()], { timeout: 15_000 }).toEqual(['up', 'up']);
    const block = await received(b, 'tips.metal.block');
    const other = await received(b, 'tips.gateway.key');
    const msg = { o: 'replica-a', m: { metalId: 'tips_m1', blocked: true, nested: [1, 'two', null] } };
    await deliver(a, 'tips.metal.block', msg, block.got);
    expect(block.got[0]).toEqual(msg);
    expect(other.got).toEqual([]);
    // Once subscribed, each publish arrives once, in order.
    block.got.length = 0;
    for (let i = 0; i < 20; i++) await a.publish('tips.metal.block', { i });
    await expect.poll(() => block.got.length, { timeout: 10_000 }).toBe(20);
    expect(block.got).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
    block.stop();
    other.stop();
  });

  it('stops delivering after unsubscribe, while other subscribers still get theirs', async () => {
    const { a, b } = make();
    await expect.poll(() => [a.status(), b.status()], { timeout: 15_000 }).toEqual(['up', 'up']);
    const first = await received(b, 'tips.cert.revoked');
    const second = await received(b, 'tips.cert.revoked');
    await deliver(a, 'tips.cert.revoked', { n: 1 }, first.got);
    await deliver(a, 'tips.cert.revoked', { n: 1 }, second.got);
    first.stop();
    const before = first.got.length;
    // deliver may have published { n: 1 } more than once: only { n: 2 } counts from here.
    const twos = (got: unknown[]) => got.filter((m) => (m as { n?: number }).n === 2);
    await a.publish('tips.cert.revoked', { n: 2 });
    await expect.poll(() => twos(second.got), { timeout: 10_000 }).toEqual([{ n: 2 }]);
    expect(first.got.length).toBe(before);
    second.stop();
  });

  it('says down when its broker dies, up when it has one again, and keeps its subscriptions', async () => {
    const h = make();
    const { a, b } = h;
    await expect.poll(() => [a.status(), b.status()], { timeout: 15_000 }).toEqual(['up', 'up']);
    const seen: BusStatus[] = [];
    a.onStatus((s) => seen.push(s));
    const onA = await received(a, 'tips.gateway.command');
    await deliver(b, 'tips.gateway.command', { before: true }, onA.got);
    await h.fail();
    await expect.poll(() => seen.includes('down'), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => a.status(), { timeout: 30_000 }).toBe('up');
    expect(seen.at(-1)).toBe('up');
    onA.got.length = 0;
    await deliver(b, 'tips.gateway.command', { after: true }, onA.got);
    expect(onA.got).toContainEqual({ after: true });
    onA.stop();
  });
}
