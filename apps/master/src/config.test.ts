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
