import { afterAll, beforeAll, describe } from 'vitest';
import { busContract } from './bus.contract.ts';
import { InProcessBus } from './in-process.ts';
import { MqttBus } from './mqtt.ts';
import { NatsBus } from './nats.ts';
import { type Mosquitto, type NatsCluster, startMosquitto, startNatsCluster } from './test-servers.ts';

const log = { info: () => {}, warn: () => {} };

describe('T2 B5 bus contract: in-process', () => {
  const bus = new InProcessBus({ sharedByReplicas: true });
  busContract(() => ({
    a: bus,
    b: bus,
    fail: async () => {
      bus.partition(true);
      await new Promise((r) => setTimeout(r, 20));
      bus.partition(false);
    },
  }));
});

describe('T2 B5 bus contract: Mosquitto (external MQTT broker)', () => {
  let broker: Mosquitto;
  const ends: MqttBus[] = [];
  beforeAll(async () => {
    broker = await startMosquitto();
    ends.push(new MqttBus(broker.url, log), new MqttBus(broker.url, log));
  });
  afterAll(async () => {
    for (const e of ends) await e.close();
    await broker?.stop();
  });
  busContract(() => ({
    a: ends[0]!,
    b: ends[1]!,
    fail: async () => {
      // The broker dies and comes back on the same port (clients reconnect to the URL they know).
      await broker.kill();
      broker = await startMosquitto(broker.port);
    },
  }));
});

describe('T2 B5 bus contract: 3-node NATS cluster', () => {
  let cluster: NatsCluster;
  const ends: NatsBus[] = [];
  beforeAll(async () => {
    cluster = await startNatsCluster(3);
    const urls = cluster.nodes.map((n) => n.url);
    // Each end knows every node, listed from a different one (as replicas would be configured).
    ends.push(new NatsBus(urls, log), new NatsBus([...urls].reverse(), log));
  });
  afterAll(async () => {
    for (const e of ends) await e.close();
    await cluster?.stop();
  });
  busContract(() => ({
    a: ends[0]!,
    b: ends[1]!,
    fail: async () => {
      // kill -9 the node `a` is connected to: it must fail over to one of the two others.
      const at = ends[0]!.server();
      const node = cluster.nodes.find((n) => n.url.endsWith(`:${at?.split(':').pop()}`) && n.process.exitCode === null && n.process.signalCode === null);
      if (!node) throw new Error(`no live node for ${at}`);
      await node.kill();
    },
  }));
});
