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
