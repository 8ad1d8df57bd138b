import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { parseBusUrl } from './bus.ts';

describe('T2 B5 --bus', () => {
  it('is in-process by default; names one MQTT broker or every node of a NATS cluster', () => {
    expect(parseBusUrl(undefined)).toEqual({ kind: 'inprocess' });
    expect(parseBusUrl('inprocess')).toEqual({ kind: 'inprocess' });
    expect(parseBusUrl('mqtt://tips:pw@broker:1883')).toEqual({ kind: 'mqtt', url: 'mqtt://tips:pw@broker:1883' });
    expect(parseBusUrl('nats://a:4222, nats://b:4222,nats://c:4222')).toEqual({ kind: 'nats', servers: ['nats://a:4222', 'nats://b:4222', 'nats://c:4222'] });
    expect(loadConfig({ bus: 'nats://10.0.0.1:4222' }, {}).bus).toEqual({ kind: 'nats', servers: ['nats://10.0.0.1:4222'] });
    expect(loadConfig({}, { TIPS_BUS: 'mqtt://b:1883' }).bus).toEqual({ kind: 'mqtt', url: 'mqtt://b:1883' });
  });

  it('refuses what it cannot use, saying what it expects', () => {
    expect(() => parseBusUrl('redis://x:6379')).toThrow(/inprocess, mqtt:\/\/host:port, or nats:\/\//);
    expect(() => parseBusUrl('nats://a:4222,mqtt://b:1883')).toThrow(/one kind only/);
    expect(() => parseBusUrl('mqtt://a:1883,mqtt://b:1883')).toThrow(/one MQTT broker/);
    expect(() => parseBusUrl('nats://a')).toThrow(/needs a host and a port/);
    expect(() => parseBusUrl('not a url')).toThrow(/is not a URL/);
    expect(() => loadConfig({ bus: 'kafka://x:1' }, {})).toThrow(/--bus is inprocess/);
  });
});
