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
