import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString, IsUUID, MaxLength, Validate } from 'class-validator';
import type { ValidationArguments, ValidatorConstraintInterface } from 'class-validator';
import { ValidatorConstraint } from 'class-validator';
import { isWireGuardKey } from '@app/protocol';
import { BooleanQuery, ListQueryDto, ListResultDto } from '../../common/list';
import { LINK_STATUSES } from '../../gateways/dto/gateway.dto';
import type { LinkStatus } from '../../mqtt/connection-events';
import { END_REASONS, SESSION_KINDS, type EndReason, type SessionKind } from '../vpn-session.entity';

@ValidatorConstraint({ name: 'wireguardKey' })
export class WireGuardKeyConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return isWireGuardKey(value);
  }

  defaultMessage(args: ValidationArguments): string {
    return `${args.property} must be a WireGuard public key: the base64 of 32 bytes (44 characters)`;
  }
}

export class CreateSessionDto {
  @ApiProperty({
    example: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
    description: "The engineer's WireGuard public key (its private key never leaves the computer)",
  })
  @Validate(WireGuardKeyConstraint)
  publicKey: string;
}

export class SessionCreatedDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({
    description:
      'Authenticates …/_ping without an access token, so a session outlives the token. Shown once.',
  })
  pingToken: string;

  @ApiProperty({ format: 'uuid' })
  deviceId: string;

  @ApiProperty({ format: 'uuid' })
  gatewayId: string;

  @ApiProperty({
    example: '10.208.0.5',
    description: 'The address of the engineer in the tunnel (client pool)',
  })
  tunnelAddress: string;

  @ApiProperty({ example: 'vpn.example.com:51820', description: "The gateway's WireGuard endpoint" })
  serverEndpoint: string;

  @ApiProperty({ description: "The gateway's WireGuard public key" })
  serverPublicKey: string;

  @ApiProperty({
    type: [String],
    example: ['10.200.0.2/32'],
    description: "The device's tunnel address, and only it",
  })
  allowedIps: string[];

  @ApiProperty({ type: [String], example: [] })
  dns: string[];

  @ApiProperty({ example: 25, description: 'Persistent keepalive, seconds' })
  keepalive: number;

  @ApiProperty({
    example: 30,
    description: 'Ping …/_ping this often (seconds); 3 missed intervals end the session',
  })
  pingInterval: number;

  @ApiProperty({ description: 'When the session ends unless pinged or the gateway sees a handshake' })
  expiresOn: Date;
}

export class PingSessionDto {
  @ApiPropertyOptional({
    description: "The session's pingToken; without it, an access token (Bearer) is required",
  })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  pingToken?: string;
}

export class SessionPingDto {
  @ApiProperty()
  expiresOn: Date;
}

export class SessionDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({
    enum: SESSION_KINDS,
    description: 'device: one device; site: the devices of the accounts of a subtree',
  })
  kind: SessionKind;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  deviceId: string | null;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  gatewayId: string | null;

  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The user who opened it' })
  userId: string | null;

  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'Or the API key that opened it' })
  apiKeyId: string | null;

  @ApiProperty({ example: '10.208.0.5' })
  tunnelAddress: string;

  @ApiProperty()
  startedOn: Date;

  @ApiProperty({ description: 'Last ping or handshake' })
  lastSeenOn: Date;

  @ApiProperty({ nullable: true, type: Date })
  endedOn: Date | null;

  @ApiProperty({ enum: END_REASONS, nullable: true, type: String })
  endReason: EndReason | null;

  @ApiProperty({ description: 'Bytes the gateway received from the engineer' })
  rxBytes: number;

  @ApiProperty({ description: 'Bytes the gateway sent to the engineer' })
  txBytes: number;
}

export class SessionListDto extends ListResultDto {
  @ApiProperty({ type: [SessionDto] })
  items: SessionDto[];
}

export class SessionListQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ description: 'true: active sessions only; false: ended ones only' })
  @IsOptional()
  @BooleanQuery()
  @IsBoolean()
  active?: boolean;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  deviceId?: string;

  @ApiPropertyOptional({ enum: SESSION_KINDS })
  @IsOptional()
  @IsIn(SESSION_KINDS)
  kind?: SessionKind;
}

export class LocationDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ example: 'vpn.example.com:51820' })
  endpoint: string;

  @ApiProperty({ format: 'uuid', description: 'The account the gateway belongs to' })
  scopeId: string;

  @ApiProperty({ enum: LINK_STATUSES })
  connection: LinkStatus;
}

export class LocationListDto {
  @ApiProperty({ type: [LocationDto] })
  items: LocationDto[];
}
