// The session body from the cloud: what is accepted, what is refused as an invalid profile (310).
import { hostOf, parseSession } from './session';
import { StepError } from './step-codes';

const KEY = Buffer.alloc(32, 3).toString('base64');
const valid = {
  id: '8d7b6c1e-0a51-4a49-9df0-6a0f2c1b1e11',
  pingToken: 'pt_abc',
  deviceId: 'd',
  gatewayId: 'g',
  tunnelAddress: '10.208.0.5',
  serverEndpoint: 'vpn.example.com:51820',
  serverPublicKey: KEY,
  allowedIps: ['10.200.0.2/32'],
  dns: [],
  keepalive: 25,
  pingInterval: 30,
  expiresOn: '2030-01-01T00:00:00.000Z',
};

describe('parseSession', () => {
  it('should turn a valid body into a session with the device address', () => {
    expect(parseSession(valid)).toEqual({
      id: valid.id,
      pingToken: 'pt_abc',
      tunnelAddress: '10.208.0.5',
      serverEndpoint: 'vpn.example.com:51820',
      serverPublicKey: KEY,
      allowedIps: ['10.200.0.2/32'],
      deviceAddress: '10.200.0.2',
      dns: [],
      keepalive: 25,
      pingIntervalSec: 30,
      expiresOn: '2030-01-01T00:00:00.000Z',
    });
    expect(parseSession({ ...valid, tunnelAddress: '10.208.0.5/32', dns: undefined }).tunnelAddress).toBe(
      '10.208.0.5',
    );
  });

  it.each([
    ['id', { id: '../x' }],
    ['pingToken', { pingToken: '' }],
    ['tunnelAddress', { tunnelAddress: '10.208.0.0/24' }],
    ['serverEndpoint', { serverEndpoint: 'vpn.example.com' }],
    ['serverPublicKey', { serverPublicKey: 'abc' }],
    ['allowedIps', { allowedIps: [] }],
    ['allowedIps', { allowedIps: ['10.200.0.2'] }],
    ['allowedIps', { allowedIps: ['10.200.0.0/24'] }],
    ['dns', { dns: ['not-an-ip'] }],
    ['keepalive', { keepalive: -1 }],
    ['pingInterval', { pingInterval: 0 }],
  ])('should refuse a bad %s with 310', (what, change) => {
    let error: unknown;
    try {
      parseSession({ ...valid, ...change });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StepError);
    expect((error as StepError).code).toBe('310');
    expect((error as StepError).message).toContain(what);
  });
});

describe('hostOf', () => {
  it('should name hosts and refuse network addresses', () => {
    expect(hostOf('10.200.0.2/32')).toBe('10.200.0.2');
    expect(hostOf('10.200.0.2/24')).toBe('10.200.0.2');
    expect(hostOf('10.200.0.0/31')).toBe('10.200.0.0');
    expect(hostOf('10.200.0.0/24')).toBeUndefined();
    expect(hostOf('fd00::5/64')).toBe('fd00::5');
    expect(hostOf('fd00::/64')).toBeUndefined();
  });
});
