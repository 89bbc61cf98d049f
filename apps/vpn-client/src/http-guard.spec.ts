// Host and Origin rules of the local API (DNS rebinding, cross-site requests) and the CORS answers.
import { checkOrigin, corsHeaders, isAllowedHost, preflightHeaders } from './http-guard';

describe('isAllowedHost', () => {
  it.each([
    'localhost',
    'localhost:9250',
    'LOCALHOST:9250',
    '127.0.0.1',
    '127.0.0.1:443',
    '[::1]',
    '[::1]:9250',
  ])('should allow %s', (host) => expect(isAllowedHost(host)).toBe(true));

  it.each([
    undefined,
    '',
    'evil.example',
    'evil.example:9250',
    'localhost.evil.example',
    '127.0.0.1.nip.io:9250',
    'localhost.',
    '127.0.0.2:9250',
    '0.0.0.0:9250',
    '::1',
    'localhost:port',
    'localhost:9250:1',
    '[::1]x',
  ])('should refuse %s', (host) => expect(isAllowedHost(host)).toBe(false));
});

describe('checkOrigin', () => {
  const allowed = new Set(['https://portal.example.com', 'http://127.0.0.1:8080']);

  it('should allow requests without Origin (curl, native apps)', () => {
    expect(checkOrigin(undefined, allowed)).toEqual({ kind: 'none' });
  });

  it('should allow only the listed origins, compared exactly', () => {
    expect(checkOrigin('https://portal.example.com', allowed)).toEqual({
      kind: 'allowed',
      origin: 'https://portal.example.com',
    });
    for (const origin of [
      'null',
      'https://evil.example',
      'http://portal.example.com',
      'https://portal.example.com:8443',
      'https://portal.example.com.evil.example',
      'http://127.0.0.1:8081',
      'https://portal.example.com, https://evil.example',
    ]) {
      expect(checkOrigin(origin, allowed).kind).toBe('forbidden');
    }
  });
});

describe('CORS headers', () => {
  it('should echo the origin and allow the IXON headers on preflight', () => {
    expect(corsHeaders('https://portal.example.com')).toEqual({
      'Access-Control-Allow-Origin': 'https://portal.example.com',
    });
    const headers = preflightHeaders('https://portal.example.com', false);
    expect(headers['Access-Control-Allow-Methods']).toBe('GET, POST, PUT');
    expect(headers['Access-Control-Allow-Headers'].split(', ')).toEqual([
      'Api-Version',
      'VPN-Client-Controller-Identifier',
      'Api-Access-Token',
      'Api-Sector',
      'Content-Type',
    ]);
    expect(headers['Access-Control-Allow-Private-Network']).toBeUndefined();
    expect(preflightHeaders('https://portal.example.com', true)['Access-Control-Allow-Private-Network']).toBe(
      'true',
    );
  });
});
