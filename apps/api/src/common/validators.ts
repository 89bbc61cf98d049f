// class-validator decorators for the names and networks the device protocol constrains. The
// patterns and the CIDR check come from @app/protocol, the same ones the topic builders, the
// agents and the configuration use, so a name the API accepts is always one a topic can carry.
import { ValidateBy, type ValidationArguments, type ValidationOptions } from 'class-validator';
import { ACCOUNT_NAME_PATTERN, CLIENT_ID_PATTERN, isIpv4Cidr, type PrefixRange } from '@app/protocol';

const matches = (pattern: RegExp, value: unknown): boolean =>
  typeof value === 'string' && pattern.test(value);

/** An account name: the account level of every MQTT topic (`[a-z0-9][a-z0-9-]{1,62}`). */
export function IsAccountName(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isAccountName',
      validator: {
        validate: (value: unknown) => matches(ACCOUNT_NAME_PATTERN, value),
        defaultMessage: (args?: ValidationArguments) =>
          `${args?.property ?? 'value'} must match [a-z0-9][a-z0-9-]{1,62}`,
      },
    },
    options,
  );
}

/** An MQTT client id (a device's clientId, a gateway's name): one topic level, 1-64 of `A-Za-z0-9._-`. */
export function IsClientId(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isClientId',
      validator: {
        validate: (value: unknown) => matches(CLIENT_ID_PATTERN, value),
        defaultMessage: (args?: ValidationArguments) =>
          `${args?.property ?? 'value'} must be 1–64 of A-Z a-z 0-9 . _ -`,
      },
    },
    options,
  );
}

/** An IPv4 network in CIDR notation whose prefix length lies in `range`. */
export function IsIpv4Cidr(range: PrefixRange = {}, options?: ValidationOptions): PropertyDecorator {
  const min = range.minPrefix ?? 0;
  const max = range.maxPrefix ?? 32;
  return ValidateBy(
    {
      name: 'isIpv4Cidr',
      constraints: [min, max],
      validator: {
        validate: (value: unknown) => typeof value === 'string' && isIpv4Cidr(value, range),
        defaultMessage: (args?: ValidationArguments) =>
          `${args?.property ?? 'value'} must be an IPv4 CIDR with a prefix from ${min} to ${max}, e.g. 10.210.0.0/20`,
      },
    },
    options,
  );
}
