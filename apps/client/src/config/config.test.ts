import { describe, expect, it } from 'vitest';
import { ClientError } from '../errors.ts';
import { parseConfig } from './config.ts';

const ok = {
  masterUrl: 'https://master:8443/',
  estUrl: 'https://master:8443/.well-known/est',
  caFile: '/etc/tips-client/ca.pem',
  tipsId: 'mtl_0123456789abcdefghjkmnpqrs',
  metalId: 'mtl_0123456789abcdefghjkmnpqrs',
  enrollmentFile: '/etc/tips-client/enrollment.json',
  stateDir: '/var/lib/tips-client',
  vendorId: null,
  classId: null,
};

function refused(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ClientError);
    expect((e as ClientError).code).toBe('config_invalid');
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('S14 config.json (contract B)', () => {
  it('accepts the installer file and trims the trailing slash of the master URL', () => {
    expect(parseConfig(ok)).toEqual({ ...ok, masterUrl: 'https://master:8443', servers: [], managedPaths: [] });
  });
  it('S10 T16: takes a list of update servers and managed paths, each entry checked', () => {
    expect(parseConfig({ ...ok, servers: ['https://gw:8443/', 'https://m2'], managedPaths: ['/opt/app'] })).toMatchObject({ servers: ['https://gw:8443', 'https://m2'], managedPaths: ['/opt/app'] });
    expect(refused({ ...ok, servers: ['https://gw', 'http://plain'] })).toContain('servers[1]');
    expect(refused({ ...ok, servers: 'https://gw' })).toContain('servers');
    expect(refused({ ...ok, managedPaths: ['relative/path'] })).toContain('managedPaths[0]');
  });
  it('names the field that is wrong', () => {
    expect(refused({ ...ok, masterUrl: 'http://master' })).toContain('masterUrl');
    expect(refused({ ...ok, estUrl: 'not a url' })).toContain('estUrl');
    expect(refused({ ...ok, caFile: 'ca.pem' })).toContain('caFile');
    expect(refused({ ...ok, tipsId: 'x', metalId: 'y' })).toContain('tipsId');
    expect(refused({ ...ok, vendorId: 'acme' })).toContain('vendorId');
    expect(refused([])).toContain('JSON object');
  });
  it('defaults the state dir and the enrollment file when absent', () => {
    const { stateDir: _s, enrollmentFile: _e, ...rest } = ok;
    expect(parseConfig(rest)).toMatchObject({ stateDir: '/var/lib/tips-client', enrollmentFile: '/etc/tips-client/enrollment.json' });
  });
});
