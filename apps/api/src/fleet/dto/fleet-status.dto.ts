import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsOptional, Matches } from 'class-validator';
import { VPN_STATUSES } from '@app/protocol';
import { BooleanQuery } from '../../common/list';
import { CursorListQueryDto, CursorListResultDto } from '../../common/list-cursor';
import { CONNECTION_STATUSES } from '../../devices/device.entity';
import { VpnStatusDto } from '../../vpn/dto/vpn.dto';

/** `a,b` or a repeated parameter → a list; anything else is left for the validators to refuse. */
const CommaList = () =>
  Transform(({ value }: { value: unknown }) => {
    const parts = Array.isArray(value) ? value : typeof value === 'string' ? [value] : null;
    if (!parts || !parts.every((p) => typeof p === 'string')) return value;
    return parts.flatMap((p) => p.split(',')).map((p) => p.trim());
  });

const oneOf = (name: string, allowed: readonly string[]) => ({
  each: true,
  message: `${name} must be one of: ${allowed.join(', ')}`,
});

export class FleetScopeQueryDto {
  @ApiPropertyOptional({ default: false, description: "Cover the scope's whole account subtree" })
  @IsOptional()
  @BooleanQuery()
  @IsBoolean()
  recursive: boolean = false;
}

export class FleetStatusQueryDto extends CursorListQueryDto {
  @ApiPropertyOptional({ default: false, description: "Cover the scope's whole account subtree" })
  @IsOptional()
  @BooleanQuery()
  @IsBoolean()
  recursive: boolean = false;

  @ApiPropertyOptional({ description: 'Only devices whose `connected` is this value' })
  @IsOptional()
  @BooleanQuery()
  @IsBoolean({ message: 'connected must be one of: true, false' })
  connected?: boolean;

  @ApiPropertyOptional({
    type: [String],
    enum: CONNECTION_STATUSES,
    description: 'MQTT link states (comma-separated or repeated: any of them)',
  })
  @IsOptional()
  @CommaList()
  @IsArray()
  @ArrayMaxSize(CONNECTION_STATUSES.length)
  @IsIn(CONNECTION_STATUSES, oneOf('deviceConnection', CONNECTION_STATUSES))
  deviceConnection?: string[];

  @ApiPropertyOptional({
    type: [String],
    enum: VPN_STATUSES,
    description: 'VPN states as the items show them (comma-separated or repeated: any of them)',
  })
  @IsOptional()
  @CommaList()
  @IsArray()
  @ArrayMaxSize(VPN_STATUSES.length)
  @IsIn(VPN_STATUSES, oneOf('status', VPN_STATUSES))
  status?: string[];

  @ApiPropertyOptional({
    type: [String],
    example: ['220', '750'],
    description: 'Three-digit status codes as the items show them (comma-separated or repeated: any of them)',
  })
  @IsOptional()
  @CommaList()
  @IsArray()
  @ArrayMaxSize(32)
  @Matches(/^[0-9]{3}$/, {
    each: true,
    message: 'statusCode must be three digits (000-999), e.g. 004 or 220',
  })
  statusCode?: string[];
}

export class FleetStatusItemDto extends VpnStatusDto {
  @ApiProperty({ format: 'uuid' })
  deviceId: string;

  @ApiProperty()
  clientId: string;

  @ApiProperty()
  displayName: string;

  @ApiProperty({ format: 'uuid', description: 'The account that owns the device' })
  scopeId: string;
}

export class FleetStatusListDto extends CursorListResultDto {
  @ApiProperty({ type: [FleetStatusItemDto] })
  items: FleetStatusItemDto[];
}

export class DeviceConnectionCountsDto {
  @ApiProperty()
  NEVER_CONNECTED: number;

  @ApiProperty()
  CONNECTED: number;

  @ApiProperty()
  DISCONNECTED: number;

  @ApiProperty()
  MISSING: number;
}

export class VpnStatusCountsDto {
  @ApiProperty()
  idle: number;

  @ApiProperty()
  connecting: number;

  @ApiProperty()
  connected: number;

  @ApiProperty()
  disconnecting: number;

  @ApiProperty()
  error: number;
}

export class FleetVpnCountsDto {
  @ApiProperty({ description: 'Devices whose `connected` is true' })
  connected: number;

  @ApiProperty({ description: 'Every other device' })
  notConnected: number;

  @ApiProperty({ type: VpnStatusCountsDto, description: 'Devices by `status`, every state present' })
  byStatus: VpnStatusCountsDto;

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'number' },
    example: { '000': 3, '004': 40, '220': 2 },
    description: 'Devices by `statusCode`; only the codes that occur',
  })
  byStatusCode: Record<string, number>;
}

export class FleetSummaryDto {
  @ApiProperty({ description: 'Devices in the scope (or subtree)' })
  devices: number;

  @ApiProperty({ type: DeviceConnectionCountsDto, description: 'Devices by MQTT link state' })
  deviceConnection: DeviceConnectionCountsDto;

  @ApiProperty({ type: FleetVpnCountsDto })
  vpn: FleetVpnCountsDto;
}
