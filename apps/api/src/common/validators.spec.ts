import { validate } from 'class-validator';
import { IsAccountName, IsClientId, IsIpv4Cidr } from './validators';

class Sample {
  @IsAccountName()
  name: unknown = 'acme';

  @IsAccountName({ message: 'project must be an account name' })
  project: unknown = 'acme-eu';

  @IsClientId()
  clientId: unknown = 'gw-0042';

  @IsIpv4Cidr({ minPrefix: 8, maxPrefix: 30 })
  vpnSubnet: unknown = '10.210.0.0/20';
}

async function messages(overrides: Partial<Sample>): Promise<string[]> {
  const errors = await validate(Object.assign(new Sample(), overrides));
  return errors.flatMap((e) => Object.values(e.constraints ?? {}));
}

describe('protocol validators', () => {
  it('should accept topic-safe names and a CIDR in range', async () => {
    expect(await messages({})).toEqual([]);
  });

  it.each(['Acme', 'acme_corp', 'a', '-acme', 'acme/+/#', 'x'.repeat(64), 42])(
    'should refuse the account name %j with the documented message',
    async (name) => {
      expect(await messages({ name })).toEqual(['name must match [a-z0-9][a-z0-9-]{1,62}']);
    },
  );

  it('should use the message a DTO gives', async () => {
    expect(await messages({ project: 'Bad' })).toEqual(['project must be an account name']);
  });

  it.each(['', 'a/b', 'a+b', 'x'.repeat(65), 'gw 1', null])(
    'should refuse the client id %j with the documented message',
    async (clientId) => {
      expect(await messages({ clientId })).toEqual(['clientId must be 1–64 of A-Z a-z 0-9 . _ -']);
    },
  );

  it.each(['10.0.0.0/33', '10.0.0.0', '300.1.2.0/24', 'fd00::/64', '10.0.0.0/31', '10.0.0.0/7'])(
    'should refuse the network %s with the documented message',
    async (vpnSubnet) => {
      expect(await messages({ vpnSubnet })).toEqual([
        'vpnSubnet must be an IPv4 CIDR with a prefix from 8 to 30, e.g. 10.210.0.0/20',
      ]);
    },
  );
});
