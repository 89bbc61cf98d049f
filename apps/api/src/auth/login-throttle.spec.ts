import { normalizeAddress } from './login-throttle';

describe('normalizeAddress (what the sign-in throttle counts per)', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('should count %s as %s', (address, counted) => {
    expect(normalizeAddress(address)).toBe(counted);
  });

  it('should count every address of one /64 together', () => {
    expect(normalizeAddress('2001:db8:aa:bb::1')).toBe(
      normalizeAddress('2001:db8:aa:bb:1234:5678:9abc:def0'),
    );
    expect(normalizeAddress('2001:db8:aa:bb::1')).not.toBe(normalizeAddress('2001:db8:aa:bc::1'));
  });
});
