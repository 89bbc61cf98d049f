import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, IsUUID, MaxLength, ValidateIf } from 'class-validator';
import { CLIENT_ID_PATTERN } from '@app/protocol';
import { UpdatableEntityDto } from '../../common/list';
import { CursorListQueryDto, CursorListResultDto } from '../../common/list-cursor';
import { OptlockField } from '../../common/optlock';
import { IsClientId } from '../../common/validators';
import {
  CONNECTION_STATUSES,
  DEVICE_STATUSES,
  type ConnectionStatus,
  type Device,
  type DeviceStatus,
} from '../device.entity';

export class CreateDeviceDto {
  @ApiProperty({
    example: 'gw-0042',
    pattern: CLIENT_ID_PATTERN.source,
    description: 'MQTT client id; unique in the account',
  })
  @IsString()
  @IsClientId()
  clientId: string;

  @ApiPropertyOptional({ maxLength: 255 })
  @IsOptional()
  @IsString()
  @MaxLength(255)
  displayName?: string;

  @ApiPropertyOptional({ enum: DEVICE_STATUSES, default: 'ENABLED' })
  @IsOptional()
  @IsIn(DEVICE_STATUSES)
  status?: DeviceStatus;

  @ApiPropertyOptional({
    format: 'uuid',
    description:
      "Pin the device to this gateway (of its account or an ancestor); default: the nearest account's gateway",
  })
  @IsOptional()
  @IsUUID()
  gatewayId?: string;
}

export class UpdateDeviceDto {
  @ApiPropertyOptional({ maxLength: 255 })
  @IsOptional()
  @IsString()
  @MaxLength(255)
  displayName?: string;

  @ApiPropertyOptional({
    enum: DEVICE_STATUSES,
    description: 'DISABLED refuses its MQTT connections and commands',
  })
  @IsOptional()
  @IsIn(DEVICE_STATUSES)
  status?: DeviceStatus;

  @ApiPropertyOptional({
    format: 'uuid',
    nullable: true,
    type: String,
    description: 'Pin the device to this gateway; null unpins (the nearest account gateway is used)',
  })
  @ValidateIf((_o, v) => v !== null)
  @IsOptional()
  @IsUUID()
  gatewayId?: string | null;

  @OptlockField()
  optlock: number;
}

export class DeviceListQueryDto extends CursorListQueryDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(64)
  clientId?: string;

  @ApiPropertyOptional({ enum: DEVICE_STATUSES })
  @IsOptional()
  @IsIn(DEVICE_STATUSES)
  status?: DeviceStatus;

  @ApiPropertyOptional({ enum: CONNECTION_STATUSES })
  @IsOptional()
  @IsIn(CONNECTION_STATUSES)
  connectionStatus?: ConnectionStatus;

  @ApiPropertyOptional({ description: 'Case-insensitive substring of clientId, displayName or serialNumber' })
  @IsOptional()
  @IsString()
  @MaxLength(255)
  matchTerm?: string;
}

export class DeviceDto extends UpdatableEntityDto {
  @ApiProperty()
  clientId: string;

  @ApiProperty()
  displayName: string;

  @ApiProperty({ enum: DEVICE_STATUSES })
  status: string;

  @ApiProperty({ enum: CONNECTION_STATUSES })
  connectionStatus: string;

  @ApiProperty({ nullable: true, type: Date })
  lastEventOn: Date | null;

  @ApiProperty({ nullable: true, type: String })
  modelId: string | null;

  @ApiProperty({ nullable: true, type: String })
  serialNumber: string | null;

  @ApiProperty({ nullable: true, type: String })
  firmwareVersion: string | null;

  @ApiProperty({ nullable: true, type: String })
  connectionIp: string | null;

  @ApiProperty({ type: [String] })
  applicationIds: string[];

  @ApiProperty({ example: '10.200.0.7', description: 'Stable tunnel address from the account VPN subnet' })
  tunnelAddress: string;

  @ApiProperty({ nullable: true, type: String, description: 'WireGuard public key announced by the agent' })
  vpnPublicKey: string | null;

  @ApiProperty({
    nullable: true,
    type: String,
    format: 'uuid',
    description: 'The gateway the device is pinned to',
  })
  gatewayId: string | null;

  @ApiProperty({ nullable: true, type: String, description: 'MQTT username, once credentials were issued' })
  mqttUsername: string | null;

  @ApiProperty({ nullable: true, type: Date })
  credentialsIssuedOn: Date | null;
}

export class DeviceListDto extends CursorListResultDto {
  @ApiProperty({ type: [DeviceDto] })
  items: DeviceDto[];
}

export class DeviceCredentialsDto {
  @ApiProperty({ example: 'acme:gw-0042' })
  username: string;

  @ApiProperty({ description: 'Shown once; only a digest is stored' })
  password: string;

  @ApiProperty({ description: 'The MQTT client id the device must connect with' })
  clientId: string;

  @ApiProperty({ description: 'Account name: the account segment of the device topics' })
  account: string;
}

export function toDeviceDto(d: Device): DeviceDto {
  return {
    id: d.id,
    scopeId: d.scopeId,
    clientId: d.clientId,
    displayName: d.displayName,
    status: d.status,
    connectionStatus: d.connectionStatus,
    lastEventOn: d.lastEventOn,
    modelId: d.modelId,
    serialNumber: d.serialNumber,
    firmwareVersion: d.firmwareVersion,
    connectionIp: d.connectionIp,
    applicationIds: d.applicationIds ? d.applicationIds.split(',').filter(Boolean) : [],
    tunnelAddress: d.tunnelIp,
    vpnPublicKey: d.vpnPublicKey,
    gatewayId: d.gatewayId,
    mqttUsername: d.mqttUsername,
    credentialsIssuedOn: d.credentialsIssuedOn,
    createdOn: d.createdOn,
    createdBy: d.createdBy,
    modifiedOn: d.modifiedOn,
    modifiedBy: d.modifiedBy,
    optlock: d.optlock,
  };
}
