import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';
import { VPN_STATUSES } from '@app/protocol';
import { BooleanQuery, ListQueryDto, ListResultDto } from '../../common/list';
import { CONNECTION_STATUSES } from '../../devices/device.entity';
import { OPERATION_STATUSES, type DeviceOperation } from '../device-operation.entity';

export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

export class VpnCommandQueryDto {
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1000,
    maximum: 300000,
    default: DEFAULT_COMMAND_TIMEOUT_MS,
    description: 'How long to wait for the device, in ms',
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1000)
  @Max(300_000)
  timeout: number = DEFAULT_COMMAND_TIMEOUT_MS;

  @ApiPropertyOptional({
    default: false,
    description:
      'true: answer 202 with the RUNNING operation (Location: its URL) at once; the command runs to its ' +
      'outcome without the caller, which polls the operation',
  })
  @IsOptional()
  @BooleanQuery()
  @IsBoolean({ message: 'async must be one of: true, false' })
  async: boolean = false;
}

export class VpnTunnelDto {
  @ApiProperty({
    format: 'uuid',
    example: '3f1e8a52-9c4d-4b7e-8f21-6a0d5c9b7e13',
    description: 'The gateway that carries the tunnel',
  })
  gatewayId: string;

  @ApiProperty({ example: '10.200.0.1', description: "The gateway's address in the device's subnet" })
  gatewayAddress: string;

  @ApiProperty({
    nullable: true,
    type: Date,
    example: '2025-06-01T09:41:07.000Z',
    description: "The gateway's latest WireGuard handshake with the device",
  })
  lastHandshakeOn: Date | null;

  @ApiProperty({ example: 482113, description: 'Bytes the gateway received from the device' })
  rxBytes: number;

  @ApiProperty({ example: 1290544, description: 'Bytes the gateway sent to the device' })
  txBytes: number;
}

export class VpnStatusDto {
  @ApiProperty({
    example: true,
    description:
      'True while the agent reports its tunnel up and the device is provably there: its MQTT link is ' +
      'CONNECTED, or its gateway saw a handshake within VPN_HANDSHAKE_FRESH_SECONDS (default 3 minutes); ' +
      'a device with a WireGuard key must also still have its peer on a gateway',
  })
  connected: boolean;

  @ApiProperty({ example: '10.200.12.49', description: '"0.0.0.0" when not connected' })
  ipAddress: string;

  @ApiProperty({ enum: VPN_STATUSES, example: 'connected' })
  status: string;

  @ApiProperty({
    example: '004',
    description:
      'IXON-style step code: 000 unknown, 001 n/a, 002 pending, 003 done, 004 active, 010 error; ' +
      '1XY sign-in, 2XY agent, 3XY VPN configuration, 7XY tunnel, 8XY routes (docs/protocol.md)',
  })
  statusCode: string;

  @ApiProperty({ enum: CONNECTION_STATUSES, example: 'CONNECTED', description: "The device's MQTT link" })
  deviceConnection: string;

  @ApiProperty({
    nullable: true,
    type: Date,
    example: '2025-06-01T09:41:05.000Z',
    description: 'When the agent last reported; null if never',
  })
  reportedOn: Date | null;

  @ApiProperty({
    nullable: true,
    type: VpnTunnelDto,
    description: 'The tunnel as its gateway sees it; null for a device without a gateway peer (e.g. keyless)',
  })
  tunnel: VpnTunnelDto | null;
}

export class OperationListQueryDto extends ListQueryDto {}

export class DeviceOperationDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ format: 'uuid' })
  deviceId: string;

  @ApiProperty()
  requestId: string;

  @ApiProperty({ enum: ['connect', 'disconnect', 'status'] })
  command: string;

  @ApiProperty({ enum: OPERATION_STATUSES })
  status: string;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  requestedBy: string | null;

  @ApiProperty()
  startedOn: Date;

  @ApiProperty({ nullable: true, type: Date })
  endedOn: Date | null;

  @ApiProperty({ nullable: true, type: Number })
  durationMs: number | null;

  @ApiProperty({ nullable: true, type: Number })
  responseCode: number | null;

  @ApiProperty({ nullable: true, type: String })
  errorMessage: string | null;
}

export class DeviceOperationListDto extends ListResultDto {
  @ApiProperty({ type: [DeviceOperationDto] })
  items: DeviceOperationDto[];
}

export function toOperationDto(o: DeviceOperation): DeviceOperationDto {
  return {
    id: o.id,
    deviceId: o.deviceId,
    requestId: o.requestId,
    command: o.command,
    status: o.status,
    requestedBy: o.requestedBy,
    startedOn: o.startedOn,
    endedOn: o.endedOn,
    durationMs: o.durationMs,
    responseCode: o.responseCode,
    errorMessage: o.errorMessage,
  };
}
