import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  Equals,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  MaxLength,
  MinLength,
  Validate,
  ValidateNested,
} from 'class-validator';
import { IsAccountName } from '../common/validators';
import { WireGuardKeyConstraint } from '../sessions/dto/session.dto';

// FendVPN's client API, field for field (snake_case as FendVPN spells it).

const IDENTIFIER = /^[A-Za-z0-9._:-]{1,128}$/;

export class SigninDto {
  @ApiProperty({ example: 'acme', description: 'The account name' })
  @IsString()
  @IsAccountName({ message: 'project must be an account name' })
  project: string;

  @ApiProperty({ example: 'linux' })
  @IsString()
  @MaxLength(64)
  client_platform: string;

  @ApiProperty({ example: '1.4.2' })
  @IsString()
  @MaxLength(64)
  client_version: string;

  @ApiProperty({ example: 'laptop-7f3a', description: "The client's own identifier of the computer" })
  @IsString()
  @MaxLength(128)
  device_id: string;

  @ApiProperty({ enum: ['password', 'api_key'] })
  @IsIn(['password', 'api_key'])
  auth_type: 'password' | 'api_key';

  @ApiProperty({ description: '"username:password", or the API key' })
  @IsString()
  @MinLength(1)
  @MaxLength(1024)
  auth_info: string;
}

export class SigninResponseDto {
  @ApiProperty()
  access_token: string;

  @ApiProperty()
  refresh_token: string;

  @ApiProperty({ type: [String], example: ['https://vpn-cloud.example.com'] })
  discovery_addresses: string[];
}

export class FendLocationDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ type: [String], example: ['online'] })
  labels: string[];
}

export class FendCredentialsDto {
  @ApiProperty({ format: 'uuid', description: 'The node (gateway) id' })
  id: string;

  @ApiProperty({ type: [String], description: 'Where connect is served: this API' })
  connection_addresses: string[];
}

export class WireguardInfoDto {
  @ApiProperty({ description: "The client's WireGuard public key" })
  @Validate(WireGuardKeyConstraint)
  public_key: string;
}

export class IdentifiersDto {
  @ApiProperty()
  @IsString()
  @Matches(IDENTIFIER, { message: 'installation_id must be 1-128 of A-Z a-z 0-9 . _ : -' })
  installation_id: string;

  @ApiProperty()
  @IsString()
  @Matches(IDENTIFIER, { message: 'session_id must be 1-128 of A-Z a-z 0-9 . _ : -' })
  session_id: string;
}

export class ConnectDto {
  @ApiProperty({ enum: ['wireguard'] })
  @Equals('wireguard', { message: 'type must be "wireguard"' })
  type: 'wireguard';

  @ApiProperty({ type: WireguardInfoDto })
  @IsObject()
  @ValidateNested()
  @Type(() => WireguardInfoDto)
  info_wireguard: WireguardInfoDto;

  @ApiProperty({ type: IdentifiersDto })
  @IsObject()
  @ValidateNested()
  @Type(() => IdentifiersDto)
  identifiers: IdentifiersDto;

  @ApiProperty({ format: 'uuid', description: 'A location id (gateway) from GET /api/client/locations' })
  @IsUUID()
  location: string;
}

export class ServerWireguardDto {
  @ApiProperty()
  server_public_key: string;

  @ApiProperty({ example: '203.0.113.7' })
  server_ipv4: string;

  @ApiProperty({ example: 51820 })
  server_port: number;

  @ApiProperty({ example: '10.208.0.5' })
  tunnel_ipv4: string;

  @ApiProperty({ example: 25 })
  keepalive: number;

  @ApiProperty({
    type: [String],
    example: ['10.200.0.0/20'],
    description: 'The VPN subnets of the account subtree',
  })
  allowed_ips: string[];

  @ApiProperty({ type: [String], example: [] })
  dns: string[];

  @ApiProperty({ example: 30, description: 'Seconds between pings' })
  ping_interval: number;
}

export class ConnectResponseDto {
  @ApiProperty({ type: ServerWireguardDto })
  info_wireguard: ServerWireguardDto;
}

export class PingDto extends IdentifiersDto {}

export class DisconnectDto extends IdentifiersDto {
  @ApiPropertyOptional({ description: 'Ignored; accepted for compatibility' })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  location?: string;
}
