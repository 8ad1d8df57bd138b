import { describe, expect, it } from 'vitest';
import { ConfigError, derivePublicUrl, loadConfig } from './config.ts';

describe('S6 S11 master configuration: --gateway-require-tls', () => {
  it('is off by default, on by the flag or TIPS_GATEWAY_REQUIRE_TLS, and refuses a value that is not a boolean', () => {
    expect(loadConfig({}, {}).gatewayRequireTls).toBe(false);
    expect(loadConfig({ gatewayRequireTls: true }, {}).gatewayRequireTls).toBe(true);
    expect(loadConfig({}, { TIPS_GATEWAY_REQUIRE_TLS: 'true' }).gatewayRequireTls).toBe(true);
    expect(loadConfig({}, { TIPS_GATEWAY_REQUIRE_TLS: '1' }).gatewayRequireTls).toBe(true);
    expect(loadConfig({}, { TIPS_GATEWAY_REQUIRE_TLS: 'false' }).gatewayRequireTls).toBe(false);
    expect(() => loadConfig({}, { TIPS_GATEWAY_REQUIRE_TLS: 'yes please' })).toThrow(ConfigError);
    expect(() => loadConfig({}, { TIPS_GATEWAY_REQUIRE_TLS: 'yes please' })).toThrow(/TIPS_GATEWAY_REQUIRE_TLS/);
  });
});

describe('T12 D4 master configuration: --upload-idle-timeout', () => {
  it('defaults to 60 s, is set by the flag or TIPS_UPLOAD_IDLE_TIMEOUT (the flag wins), and refuses 0, fractions and words', () => {
    expect(loadConfig({}, {}).uploadIdleTimeoutSeconds).toBe(60);
    expect(loadConfig({ uploadIdleTimeout: '5' }, {}).uploadIdleTimeoutSeconds).toBe(5);
    expect(loadConfig({}, { TIPS_UPLOAD_IDLE_TIMEOUT: '120' }).uploadIdleTimeoutSeconds).toBe(120);
    expect(loadConfig({ uploadIdleTimeout: '7' }, { TIPS_UPLOAD_IDLE_TIMEOUT: '120' }).uploadIdleTimeoutSeconds).toBe(7);
    for (const bad of ['0', '1.5', 'soon', '86401']) {
      expect(() => loadConfig({ uploadIdleTimeout: bad }, {})).toThrow(ConfigError);
      expect(() => loadConfig({ uploadIdleTimeout: bad }, {})).toThrow(/--upload-idle-timeout/);
    }
  });
});

describe('D6 master configuration: --read-threads', () => {
  it('defaults to 0 (every read on the event loop), is set by the flag or TIPS_READ_THREADS (the flag wins), and refuses fractions, words and over 16', () => {
    expect(loadConfig({}, {}).readThreads).toBe(0);
    expect(loadConfig({ readThreads: '2' }, {}).readThreads).toBe(2);
    expect(loadConfig({}, { TIPS_READ_THREADS: '1' }).readThreads).toBe(1);
    expect(loadConfig({ readThreads: '0' }, { TIPS_READ_THREADS: '3' }).readThreads).toBe(0);
    for (const bad of ['1.5', 'many', '17', '-1']) expect(() => loadConfig({ readThreads: bad }, {})).toThrow(/--read-threads must be an integer from 0 to 16/);
  });
});

describe('T13 D4 master configuration: --engine-sync-interval', () => {
  it('defaults to 15 s, is set by the flag or TIPS_ENGINE_SYNC_INTERVAL (the flag wins), 0 turns it off, and refuses fractions, words and over a day', () => {
    expect(loadConfig({}, {}).engineSyncIntervalSeconds).toBe(15);
    expect(loadConfig({ engineSyncInterval: '2' }, {}).engineSyncIntervalSeconds).toBe(2);
    expect(loadConfig({}, { TIPS_ENGINE_SYNC_INTERVAL: '60' }).engineSyncIntervalSeconds).toBe(60);
    expect(loadConfig({ engineSyncInterval: '0' }, { TIPS_ENGINE_SYNC_INTERVAL: '60' }).engineSyncIntervalSeconds).toBe(0);
    for (const bad of ['1.5', '-1', 'often', '86401', '']) {
      expect(() => loadConfig({ engineSyncInterval: bad }, {})).toThrow(ConfigError);
      expect(() => loadConfig({ engineSyncInterval: bad }, {})).toThrow(/--engine-sync-interval/);
    }
  });
});

describe('D4 S6 TIPS_BOOTSTRAP_ADMIN_TOKEN is checked before anything starts', () => {
  it('accepts an API token and refuses anything else with one message naming the format, never echoing the value', () => {
    const ok = `tips_${'x'.repeat(43)}`;
    expect(loadConfig({}, { TIPS_BOOTSTRAP_ADMIN_TOKEN: ok }).bootstrapAdminToken).toBe(ok);
    expect(loadConfig({}, {}).bootstrapAdminToken).toBeUndefined();
    for (const bad of ['secret-password', 'tips_short', `tips_${'x'.repeat(43)}!`, `TIPS_${'x'.repeat(43)}`, '']) {
      expect(() => loadConfig({}, { TIPS_BOOTSTRAP_ADMIN_TOKEN: bad })).toThrow(ConfigError);
      try {
        loadConfig({}, { TIPS_BOOTSTRAP_ADMIN_TOKEN: bad });
      } catch (e) {
        expect((e as Error).message).toMatch(/^TIPS_BOOTSTRAP_ADMIN_TOKEN must be tips_ followed by 32–128 base64url characters/);
        if (bad !== '') expect((e as Error).message).not.toContain(bad);
      }
    }
  });
});

describe('S6 master configuration: --metal-cert-days', () => {
  it('defaults to 7 days, takes the flag over TIPS_METAL_CERT_DAYS, and refuses a value out of 1..397 or not an integer', () => {
    expect(loadConfig({}, {}).metalCertDays).toBe(7);
    expect(loadConfig({}, { TIPS_METAL_CERT_DAYS: '30' }).metalCertDays).toBe(30);
    expect(loadConfig({ metalCertDays: '2' }, { TIPS_METAL_CERT_DAYS: '30' }).metalCertDays).toBe(2);
    expect(loadConfig({ metalCertDays: '1' }, {}).metalCertDays).toBe(1);
    expect(loadConfig({ metalCertDays: '397' }, {}).metalCertDays).toBe(397);
    for (const bad of ['0', '398', '1.5', '-3', 'week', '']) {
      expect(() => loadConfig({ metalCertDays: bad }, {}), bad).toThrow(ConfigError);
    }
    expect(() => loadConfig({}, { TIPS_METAL_CERT_DAYS: '0' })).toThrow(/--metal-cert-days must be an integer from 1 to 397, got "0"/);
  });
});

describe('T5 master configuration: --public-url', () => {
  it('takes the flag over TIPS_PUBLIC_URL, trims a trailing slash, and refuses what is not an http(s) base URL', () => {
    expect(loadConfig({}, {}).publicUrl).toBeNull();
    expect(loadConfig({}, { TIPS_PUBLIC_URL: 'https://tips.example.com:8443/' }).publicUrl).toBe('https://tips.example.com:8443');
    expect(loadConfig({ publicUrl: 'http://10.0.0.5:8080' }, { TIPS_PUBLIC_URL: 'https://x' }).publicUrl).toBe('http://10.0.0.5:8080');
    for (const bad of ['tips.example.com', 'ftp://x', 'http://u:p@x', 'http://x/?a=1']) {
      expect(() => loadConfig({ publicUrl: bad }, {})).toThrow(/--public-url/);
    }
  });

  it('is derived from the listen address when not given: a wildcard address gives this host name', () => {
    const with_ = (host: string, publicUrl: string | null = null) => derivePublicUrl({ host, publicUrl }, 8080, 'tips-host');
    expect(with_('127.0.0.1')).toBe('http://127.0.0.1:8080');
    expect(with_('0.0.0.0')).toBe('http://tips-host:8080');
    expect(with_('::')).toBe('http://tips-host:8080');
    expect(with_('fd00::1')).toBe('http://[fd00::1]:8080');
    expect(with_('0.0.0.0', 'https://tips.example.com')).toBe('https://tips.example.com');
  });
});

describe('T13 A5 master configuration: the tinkerbell engine', () => {
  it('writes to <data-dir>/tinkerbell unless told otherwise, takes kubectl and the glaze base from flags or environment, and refuses a base that is not a URL', () => {
    const c = loadConfig({ dataDir: '/srv/tips' }, {});
    expect(c.tinkerbell).toEqual({ dir: '/srv/tips/tinkerbell', kubectl: null, glazeBase: 'http://tips-gateway:8080' });
    expect(loadConfig({ tinkerbellKubectl: '/usr/bin/kubectl', tinkerbellGlazeBase: 'http://10.77.0.1:8080/' }, { TIPS_TINKERBELL_DIR: '/tmp/tb' }).tinkerbell).toEqual({
      dir: '/tmp/tb',
      kubectl: '/usr/bin/kubectl',
      glazeBase: 'http://10.77.0.1:8080',
    });
    for (const bad of ['10.0.0.1:8080', 'http://x/$(id)', 'http://x?a']) expect(() => loadConfig({ tinkerbellGlazeBase: bad }, {})).toThrow(/--tinkerbell-glaze-base/);
  });
});

describe('T15 master configuration: --reauth-period and MQTT', () => {
  it('defaults to 120 s and an embedded broker on 8883 (any free port with --port 0); off, or an external mqtts:// broker instead', () => {
    expect(loadConfig({}, {})).toMatchObject({ reauthPeriodSeconds: 120, mqttPort: 8883, mqttUrl: null });
    expect(loadConfig({ port: '0' }, {}).mqttPort).toBe(0);
    expect(loadConfig({ reauthPeriod: '30' }, {}).reauthPeriodSeconds).toBe(30);
    expect(loadConfig({}, { TIPS_REAUTH_PERIOD: '600' }).reauthPeriodSeconds).toBe(600);
    expect(loadConfig({ mqttPort: 'off' }, {})).toMatchObject({ mqttPort: null, mqttUrl: null });
    expect(loadConfig({ mqttUrl: 'mqtts://broker.example:8883' }, {})).toMatchObject({ mqttPort: null, mqttUrl: 'mqtts://broker.example:8883' });
    for (const bad of ['0', '5', 'soon']) expect(() => loadConfig({ reauthPeriod: bad }, {})).toThrow(/--reauth-period/);
    for (const bad of ['mqtt://plain:1883', 'mqtts://nohost', 'mqtts://u:p@h:8883', 'https://h:8883']) expect(() => loadConfig({ mqttUrl: bad }, {})).toThrow(/--mqtt-url/);
    expect(() => loadConfig({ mqttUrl: 'mqtts://h:8883', mqttPort: '1883' }, {})).toThrow(/exclude/);
  });
});

describe('T2 master configuration: --blob-store and the S3 settings', () => {
  it('keeps Glazes in <data-dir>/glazes by default and takes s3://bucket/prefix, endpoint, region and presigning from flags or environment', () => {
    expect(loadConfig({ dataDir: '/srv/tips' }, {}).blobStore).toEqual({ kind: 'file', dir: '/srv/tips/glazes' });
    expect(loadConfig({ blobStore: 's3://tips-glazes/fleet/a/', s3Endpoint: 'http://127.0.0.1:9000/' }, {}).blobStore).toEqual({
      kind: 's3',
      bucket: 'tips-glazes',
      prefix: 'fleet/a/',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      presignSeconds: null,
    });
    const fromEnv = loadConfig({}, { TIPS_BLOB_STORE: 's3://b-1', AWS_REGION: 'eu-west-3', TIPS_S3_PRESIGN: '60' }).blobStore;
    expect(fromEnv).toEqual({ kind: 's3', bucket: 'b-1', prefix: '', endpoint: null, region: 'eu-west-3', presignSeconds: 60 });
    expect(loadConfig({ blobStore: 's3://b-1', s3Presign: true, s3Region: 'eu-north-1' }, { AWS_REGION: 'eu-west-3' }).blobStore).toMatchObject({ presignSeconds: 300, region: 'eu-north-1' });
  });

  it('refuses a malformed location, endpoint, region or lifetime, and S3 settings without an S3 store, never echoing credentials', () => {
    const cases: [Parameters<typeof loadConfig>[0], RegExp][] = [
      [{ blobStore: 'minio://b' }, /--blob-store must be file or s3:/],
      [{ blobStore: 's3://B' }, /--blob-store/],
      [{ blobStore: 's3://bbb', s3Endpoint: 'ftp://x' }, /--s3-endpoint must be/],
      [{ blobStore: 's3://bbb', s3Region: 'Mars 1' }, /--s3-region/],
      [{ blobStore: 's3://bbb', s3Presign: '0' }, /--s3-presign/],
      [{ s3Endpoint: 'http://127.0.0.1:9000' }, /need --blob-store s3:/],
      [{ s3Presign: true }, /need --blob-store s3:/],
    ];
    for (const [opts, msg] of cases) expect(() => loadConfig(opts, {}), JSON.stringify(opts)).toThrow(msg);
    try {
      loadConfig({ blobStore: 's3://bbb', s3Endpoint: 'http://AKIA:secret@host?x=1' }, {});
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).not.toContain('secret');
    }
  });
});

describe('S13 master configuration: --coap-port and --coap-host (CoAP over DTLS)', () => {
  it('is off by default, takes a port (0 = any) and a bind address from flags or environment, and refuses a bad port', () => {
    expect(loadConfig({}, {})).toMatchObject({ coapPort: null, coapHost: '127.0.0.1' });
    expect(loadConfig({ port: '0' }, {}).coapPort).toBeNull();
    expect(loadConfig({ coapPort: '5684' }, {})).toMatchObject({ coapPort: 5684, coapHost: '127.0.0.1' });
    expect(loadConfig({ coapPort: 'off' }, { TIPS_COAP_PORT: '5684' }).coapPort).toBeNull();
    expect(loadConfig({ host: '0.0.0.0' }, { TIPS_COAP_PORT: '0', TIPS_COAP_HOST: '10.1.2.3' })).toMatchObject({ coapPort: 0, coapHost: '10.1.2.3' });
    expect(loadConfig({ host: '::' }, { TIPS_COAP_PORT: '0' }).coapHost).toBe('::');
    for (const bad of ['65536', '-1', 'dtls']) expect(() => loadConfig({ coapPort: bad }, {})).toThrow(/--coap-port/);
    expect(() => loadConfig({ coapPort: '5684', coapHost: ' ' }, {})).toThrow(/--coap-host/);
  });
});
