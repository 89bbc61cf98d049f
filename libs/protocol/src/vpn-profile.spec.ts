import {
  VpnProfile,
  VpnProfileError,
  encodeVpnProfile,
  isEndpoint,
  isWireGuardKey,
  parseVpnProfile,
} from './vpn-profile';

const SERVER_KEY = Buffer.alloc(32, 0x5a).toString('base64'); // 'WlpaWlpa…WlpaWlo='

function createProfile(overrides: Partial<Record<keyof VpnProfile, unknown>> = {}): VpnProfile {
  return {
    type: 'wireguard',
    tunnelAddress: '10.200.0.7/16',
    serverEndpoint: 'vpn.example.com:51820',
    serverPublicKey: SERVER_KEY,
    allowedIps: ['10.200.0.0/16'],
    dns: [],
    keepalive: 25,
    ...overrides,
  } as VpnProfile;
}

function bodyOf(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function errorOf(run: () => unknown): VpnProfileError {
  try {
    run();
  } catch (error) {
    if (error instanceof VpnProfileError) return error;
    throw error;
  }
  throw new Error('expected a VpnProfileError');
}

describe('VPN profile', () => {
  it('should roundtrip a profile as JSON', () => {
    const profile = createProfile({
      dns: ['10.200.0.1', 'fd00::1'],
      allowedIps: ['10.200.0.0/16', 'fd00::/64'],
    });
    expect(parseVpnProfile(encodeVpnProfile(profile))).toEqual(profile);
  });

  it('should encode the keys in a fixed order as UTF-8 JSON', () => {
    expect(encodeVpnProfile(createProfile()).toString('utf8')).toBe(
      `{"type":"wireguard","tunnelAddress":"10.200.0.7/16","serverEndpoint":"vpn.example.com:51820",` +
        `"serverPublicKey":"${SERVER_KEY}","allowedIps":["10.200.0.0/16"],"dns":[],"keepalive":25}`,
    );
  });

  it('should parse a Uint8Array body', () => {
    const body = new Uint8Array(encodeVpnProfile(createProfile()));
    expect(parseVpnProfile(body)).toEqual(createProfile());
  });

  it('should ignore unknown keys and leave them out of the result', () => {
    expect(parseVpnProfile(bodyOf({ ...createProfile(), mtu: 1420 }))).toEqual(createProfile());
  });

  it('should refuse to encode an invalid profile', () => {
    expect(() => encodeVpnProfile(createProfile({ keepalive: -1 }))).toThrow(VpnProfileError);
  });

  it.each<[string, Buffer | undefined, RegExp]>([
    ['no body', undefined, /missing/],
    ['an empty body', Buffer.alloc(0), /missing/],
    ['invalid JSON', Buffer.from('{"type":'), /not valid JSON/],
    ['a JSON array', bodyOf([createProfile()]), /JSON object/],
    ['JSON null', bodyOf(null), /JSON object/],
    ['a JSON string', bodyOf('wireguard'), /JSON object/],
    ['a body over 64 KiB', Buffer.alloc(65 * 1024, 0x20), /64 KiB/],
  ])('should reject %s', (_title, body, message) => {
    expect(errorOf(() => parseVpnProfile(body)).message).toMatch(message);
  });

  it.each<[string, Partial<Record<keyof VpnProfile, unknown>>, RegExp]>([
    ['another VPN type', { type: 'openvpn' }, /unsupported VPN type "openvpn"/],
    ['a missing type', { type: undefined }, /unsupported VPN type/],
    ['a tunnel address without prefix', { tunnelAddress: '10.200.0.7' }, /tunnelAddress/],
    ['a tunnel address with /0', { tunnelAddress: '10.200.0.7/0' }, /tunnelAddress/],
    ['a tunnel address with /33', { tunnelAddress: '10.200.0.7/33' }, /tunnelAddress/],
    ['a tunnel address with a padded prefix', { tunnelAddress: '10.200.0.7/016' }, /tunnelAddress/],
    ['a tunnel address with a bad octet', { tunnelAddress: '10.200.0.256/16' }, /tunnelAddress/],
    ['a tunnel address with leading zeros', { tunnelAddress: '10.200.0.07/16' }, /tunnelAddress/],
    ['an IPv6 tunnel address', { tunnelAddress: 'fd00::7/64' }, /tunnelAddress/],
    ['a numeric tunnel address', { tunnelAddress: 10 }, /tunnelAddress must be a string/],
    ['an endpoint without port', { serverEndpoint: 'vpn.example.com' }, /serverEndpoint/],
    ['an endpoint with port 0', { serverEndpoint: 'vpn.example.com:0' }, /serverEndpoint/],
    ['an endpoint with port 65536', { serverEndpoint: 'vpn.example.com:65536' }, /serverEndpoint/],
    ['an endpoint with a bare IPv6 host', { serverEndpoint: 'fd00::1:51820' }, /serverEndpoint/],
    ['an endpoint with a shell character', { serverEndpoint: 'vpn;reboot:51820' }, /serverEndpoint/],
    ['an endpoint with a space', { serverEndpoint: 'vpn example:51820' }, /serverEndpoint/],
    ['a key of 31 bytes', { serverPublicKey: Buffer.alloc(31).toString('base64') }, /serverPublicKey/],
    ['a key without padding', { serverPublicKey: SERVER_KEY.slice(0, 43) }, /serverPublicKey/],
    [
      'a key with non-base64 characters',
      { serverPublicKey: `${SERVER_KEY.slice(0, 42)}!=` },
      /serverPublicKey/,
    ],
    ['a non-canonical key', { serverPublicKey: `${SERVER_KEY.slice(0, 42)}p=` }, /serverPublicKey/],
    ['allowedIps that is not an array', { allowedIps: '10.200.0.0/16' }, /allowedIps must be an array/],
    ['empty allowedIps', { allowedIps: [] }, /allowedIps must not be empty/],
    ['allowedIps with a bare address', { allowedIps: ['10.200.0.0'] }, /allowedIps\[0\]/],
    ['allowedIps with a number', { allowedIps: ['10.200.0.0/16', 7] }, /allowedIps\[1\]/],
    ['allowedIps with an IPv6 prefix over 128', { allowedIps: ['fd00::/129'] }, /allowedIps\[0\]/],
    ['too many allowedIps', { allowedIps: Array(257).fill('10.0.0.0/8') }, /more than 256/],
    ['dns with a name', { dns: ['dns.example.com'] }, /dns\[0\] must be an IP address/],
    ['too many dns servers', { dns: Array(17).fill('10.0.0.1') }, /more than 16/],
    ['a missing dns list', { dns: undefined }, /dns must be an array/],
    ['a fractional keepalive', { keepalive: 2.5 }, /keepalive/],
    ['a keepalive over 65535', { keepalive: 65536 }, /keepalive/],
    ['a string keepalive', { keepalive: '25' }, /keepalive/],
  ])('should reject %s with a clear message', (_title, overrides, message) => {
    expect(errorOf(() => parseVpnProfile(bodyOf(createProfile(overrides)))).message).toMatch(message);
  });

  it('should cut long offending values in messages', () => {
    const message = errorOf(() =>
      parseVpnProfile(bodyOf(createProfile({ dns: ['x'.repeat(1000)] }))),
    ).message;
    expect(message.length).toBeLessThan(120);
  });

  it('should accept keepalive 0 and 65535', () => {
    expect(parseVpnProfile(bodyOf(createProfile({ keepalive: 0 }))).keepalive).toBe(0);
    expect(parseVpnProfile(bodyOf(createProfile({ keepalive: 65535 }))).keepalive).toBe(65535);
  });

  describe('isEndpoint', () => {
    it.each([
      'vpn.example.com:51820',
      'vpn:1',
      '203.0.113.5:51820',
      '[2001:db8::1]:51820',
      'a-b.c:65535',
      'vpn.example.com.:51820',
    ])('should accept %j', (endpoint) => {
      expect(isEndpoint(endpoint)).toBe(true);
    });

    it.each([
      ':51820',
      'vpn:',
      'vpn:01',
      'vpn:-1',
      '-vpn.com:1',
      'vpn-.com:1',
      'a..b:1',
      '[vpn]:1',
      '[10.0.0.1]:1',
      '1.2.3.999:1',
      '256.1.1.1:1',
      `${'a'.repeat(64)}.com:1`,
    ])('should reject %j', (endpoint) => {
      expect(isEndpoint(endpoint)).toBe(false);
    });
  });

  describe('isWireGuardKey', () => {
    it('should accept the base64 of 32 bytes', () => {
      expect(isWireGuardKey(SERVER_KEY)).toBe(true);
      expect(isWireGuardKey(Buffer.alloc(32, 0xff).toString('base64'))).toBe(true);
    });

    it('should reject other values', () => {
      expect(isWireGuardKey(Buffer.alloc(33).toString('base64'))).toBe(false);
      expect(isWireGuardKey(undefined)).toBe(false);
      expect(isWireGuardKey(`${SERVER_KEY}\n`)).toBe(false);
    });
  });
});
