import { describe, expect, it } from 'vitest';
import { presignGet } from './presign.ts';

describe('T2 pre-signed Glaze downloads: SigV4 query-string authentication', () => {
  it("reproduces AWS's published example (GET examplebucket/test.txt, 2013-05-24, 86400 s)", async () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
    const url = await presignGet({
      origin: new URL('https://examplebucket.s3.amazonaws.com'),
      path: '/test.txt',
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      expiresInSeconds: 86_400,
      now: new Date('2013-05-24T00:00:00Z'),
    });
    expect(url).toBe(
      'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    );
  });

  it('signs extra query parameters and the port of a path-style endpoint, and refuses a path it would have to escape', async () => {
    const base = { region: 'us-east-1', credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }, expiresInSeconds: 300, now: new Date('2026-11-29T12:00:00Z') };
    const a = await presignGet({ ...base, origin: new URL('http://127.0.0.1:9000'), path: '/b/p/glz_x', query: { 'response-content-type': 'application/x-tar' } });
    const b = await presignGet({ ...base, origin: new URL('http://127.0.0.1:9001'), path: '/b/p/glz_x', query: { 'response-content-type': 'application/x-tar' } });
    const u = new URL(a);
    expect(`${u.origin}${u.pathname}`).toBe('http://127.0.0.1:9000/b/p/glz_x');
    expect(u.searchParams.get('response-content-type')).toBe('application/x-tar');
    expect(u.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(u.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect(new URL(a).searchParams.get('X-Amz-Expires')).toBe('300');
    // The host (with its port) is signed: the same request to another port has another signature.
    expect(new URL(a).searchParams.get('X-Amz-Signature')).not.toBe(new URL(b).searchParams.get('X-Amz-Signature'));
    await expect(presignGet({ ...base, origin: new URL('http://h'), path: '/b/a b' })).rejects.toThrow(/cannot presign/);
  });
});
