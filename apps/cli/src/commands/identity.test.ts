import { afterEach, describe, expect, it } from 'vitest';
import { CliError } from '../errors.ts';
import { estHint, estOrigin } from './identity.ts';

const saved = process.env.TIPS_EST_URL;
afterEach(() => {
  if (saved === undefined) delete process.env.TIPS_EST_URL;
  else process.env.TIPS_EST_URL = saved;
});

describe('S6 tips enrollment secret create: the EST address in the printed commands', () => {
  it('takes --est-url, else TIPS_EST_URL, else the https master URL, else its host on port 8443; only https', () => {
    delete process.env.TIPS_EST_URL;
    expect(estOrigin(undefined, 'http://10.0.0.5:8080')).toBe('https://10.0.0.5:8443');
    expect(estOrigin(undefined, 'https://tips.example:9443/')).toBe('https://tips.example:9443');
    expect(estOrigin('https://est.example', 'http://10.0.0.5:8080')).toBe('https://est.example');
    process.env.TIPS_EST_URL = 'https://env.example:1443';
    expect(estOrigin(undefined, 'http://10.0.0.5:8080')).toBe('https://env.example:1443');
    expect(estOrigin('https://flag.example', 'http://10.0.0.5:8080')).toBe('https://flag.example');
    expect(() => estOrigin('http://est.example', 'http://x')).toThrow(CliError);
    expect(() => estOrigin('not a url', 'http://x')).toThrow(/--est-url must be an https:\/\/ URL/);
  });

  it('quotes what the shell would split; a Space secret leaves the metal to fill in', () => {
    const v = { id: 'ens_1', scope: { kind: 'metal', id: 'mtl_2' }, maxUses: 1, uses: 0, expiresAt: '', revokedAt: null, secret: 'est_3' };
    expect(estHint(v, "https://a b'c")).toContain(`MASTER='https://a b'\\''c'`);
    expect(estHint(v, 'https://m:8443')).toContain('METAL=mtl_2\n');
    expect(estHint({ ...v, scope: { kind: 'space', id: 'spc_4' } }, 'https://m:8443')).toMatch(/METAL= +# set to the TIPS ID .* Space spc_4/);
  });
});
