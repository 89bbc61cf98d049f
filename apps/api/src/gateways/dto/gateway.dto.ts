import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength, Validate } from 'class-validator';
import type { ValidationArguments, ValidatorConstraintInterface } from 'class-validator';
import { ValidatorConstraint } from 'class-validator';
import { CLIENT_ID_PATTERN, isEndpoint } from '@app/protocol';
import { ListQueryDto, ListResultDto, UpdatableEntityDto } from '../../common/list';
import { OptlockField } from '../../common/optlock';
import { IsClientId } from '../../common/validators';
import type { LinkStatus } from '../../mqtt/connection-events';
import type { Gateway } from '../gateway.entity';

export const LINK_STATUSES: readonly LinkStatus[] = [
  'NEVER_CONNECTED',
  'CONNECTED',
  'DISCONNECTED',
  'MISSING',
];

@ValidatorConstraint({ name: 'endpoint' })
class EndpointConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return typeof value === 'string' && value.length <= 300 && isEndpoint(value);
  }

  defaultMessage(args: ValidationArguments): string {
    return `${args.property} must be host:port (a DNS name, an IPv4 address or [IPv6]) with a port from 1 to 65535`;
  }
}

export class CreateGatewayDto {
  @ApiProperty({
    example: 'hub-eu-1',
    pattern: CLIENT_ID_PATTERN.source,
    description:
      "MQTT client id of the gateway process; shares one namespace with the account's device clientIds",
  })
  @IsString()
  @IsClientId()
  name: string;

  @ApiProperty({
    example: 'vpn.example.com:51820',
    description: 'host:port that devices and engineers send their WireGuard packets to',
  })
  @Validate(EndpointConstraint)
  endpoint: string;

  @ApiPropertyOptional({ maxLength: 1024 })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  description?: string;
}

export class UpdateGatewayDto {
  @ApiPropertyOptional({ example: 'vpn.example.com:51820' })
  @IsOptional()
  @Validate(EndpointConstraint)
  endpoint?: string;

  @ApiPropertyOptional({ maxLength: 1024 })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  description?: string;

  @OptlockField()
  optlock: number;
}

export class GatewayListQueryDto extends ListQueryDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(64)
  name?: string;

  @ApiPropertyOptional({ enum: LINK_STATUSES })
  @IsOptional()
  @IsIn(LINK_STATUSES)
  connection?: LinkStatus;
}

export class GatewayDto extends UpdatableEntityDto {
  @ApiProperty()
  name: string;

  @ApiProperty({ example: 'vpn.example.com:51820' })
  endpoint: string;

  @ApiProperty()
  description: string;

  @ApiProperty({
    nullable: true,
    type: String,
    description: 'WireGuard public key the gateway announced; null until it first connects',
  })
  publicKey: string | null;

  @ApiProperty({ nullable: true, type: Number, description: 'WireGuard UDP port the gateway announced' })
  listenPort: number | null;

  @ApiProperty({ enum: LINK_STATUSES, description: 'MQTT link of the gateway process' })
  connection: LinkStatus;

  @ApiProperty({ description: 'WireGuard peers it carries now (devices and engineer sessions)' })
  peers: number;

  @ApiProperty({ nullable: true, type: Date })
  lastSeenOn: Date | null;

  @ApiProperty({ nullable: true, type: String, description: 'MQTT username, once credentials were issued' })
  mqttUsername: string | null;

  @ApiProperty({ nullable: true, type: Date })
  credentialsIssuedOn: Date | null;
}

export class GatewayListDto extends ListResultDto {
  @ApiProperty({ type: [GatewayDto] })
  items: GatewayDto[];
}

export class GatewayCredentialsDto {
  @ApiProperty({ example: 'acme:hub-eu-1' })
  username: string;

  @ApiProperty({ description: 'Shown once; only a digest is stored' })
  password: string;

  @ApiProperty({ description: 'The MQTT client id the gateway must connect with (its name)' })
  clientId: string;

  @ApiProperty({ description: 'Account name: the account segment of the gateway topics' })
  account: string;
}

export function toGatewayDto(g: Gateway, peers: number): GatewayDto {
  return {
    id: g.id,
    scopeId: g.scopeId,
    name: g.name,
    endpoint: g.endpoint,
    description: g.description,
    publicKey: g.publicKey,
    listenPort: g.listenPort,
    connection: g.connectionStatus,
    peers,
    lastSeenOn: g.lastSeenOn,
    mqttUsername: g.mqttUsername,
    credentialsIssuedOn: g.credentialsIssuedOn,
    createdOn: g.createdOn,
    createdBy: g.createdBy,
    modifiedOn: g.modifiedOn,
    modifiedBy: g.modifiedBy,
    optlock: g.optlock,
  };
}
