import { isCidr, isIpv4Cidr } from './ip-address';

describe('isIpv4Cidr', () => {
  it.each(['10.200.0.0/16', '0.0.0.0/0', '255.255.255.255/32', '192.168.77.0/24'])(
    'should accept %s',
    (v) => {
      expect(isIpv4Cidr(v)).toBe(true);
    },
  );

  it.each([
    '10.0.0.0',
    '10.0.0.0/33',
    '300.1.2.0/24',
    '10.0.0/8',
    '010.0.0.0/8',
    '10.0.0.0/08',
    '10.0.0.0/+8',
    '10.0.0.0/',
    'fd00::/64',
    ' 10.0.0.0/8',
    '',
  ])('should refuse %j', (v) => {
    expect(isIpv4Cidr(v)).toBe(false);
  });

  it('should refuse a prefix outside the given range', () => {
    const range = { minPrefix: 8, maxPrefix: 30 };
    expect(isIpv4Cidr('10.0.0.0/8', range)).toBe(true);
    expect(isIpv4Cidr('10.0.0.0/30', range)).toBe(true);
    expect(isIpv4Cidr('10.0.0.0/7', range)).toBe(false);
    expect(isIpv4Cidr('10.0.0.0/31', range)).toBe(false);
  });

  it('should refuse a value that is not a string', () => {
    expect(isIpv4Cidr(undefined as unknown as string)).toBe(false);
  });
});

describe('isCidr', () => {
  it('should accept IPv4 and IPv6 networks and refuse zone ids', () => {
    expect(isCidr('10.200.0.0/16')).toBe(true);
    expect(isCidr('fd00::/64')).toBe(true);
    expect(isCidr('fd00::/129')).toBe(false);
    expect(isCidr('fe80::1%eth0/64')).toBe(false);
  });
});
