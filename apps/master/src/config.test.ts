import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

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
