import { describe, expect, it } from 'vitest';
import { listNamespaces, runOk, sweepStaleNamespaces, Topology } from './index.ts';

describe('D5 testbed: namespace topologies are built, used and always removed', () => {
  it('builds two namespaces joined by a veth, runs commands and processes in them, and tears down', async () => {
    const topo = await Topology.create('tbt');
    let names: string[] = [];
    try {
      const a = await topo.namespace('a');
      const b = await topo.namespace('b');
      names = [a.name, b.name];
      await topo.veth(a, 'eth0', b, 'eth0', { aMac: '02:00:00:00:aa:01' });
      await a.addAddress('eth0', '10.200.0.1/24');
      await b.addAddress('eth0', '10.200.0.2/24');
      expect((await a.execOk('busybox', ['ping', '-c', '1', '-W', '2', '10.200.0.2'])).stdout).toMatch(/1 packets received/);
      expect((await a.ip('link', 'show', 'eth0')).stdout).toContain('02:00:00:00:aa:01');
      const sleeper = b.spawn('sh', ['-c', 'echo started; exec sleep 600']);
      await sleeper.waitFor(/started/);
      expect(sleeper.running).toBe(true);
    } finally {
      await topo.destroy();
    }
    const left = await listNamespaces();
    for (const n of names) expect(left).not.toContain(n);
  });

  it('sweeps namespaces left by a dead run, and only those', async () => {
    const dead = 'tb-tbt-999999999-abcdef-x';
    await runOk('ip', ['netns', 'add', dead]);
    const topo = await Topology.create('tbt');
    try {
      const live = await topo.namespace('live');
      expect(await listNamespaces()).not.toContain(dead);
      expect(await sweepStaleNamespaces()).toEqual([]);
      expect(await listNamespaces()).toContain(live.name);
    } finally {
      await topo.destroy();
    }
  });
});
