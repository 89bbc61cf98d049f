import { ApiProperty } from '@nestjs/swagger';
import { ListQueryDto, ListResultDto } from '../../common/list';
import type { DeviceEvent } from '../device-event.entity';

export class DeviceEventListQueryDto extends ListQueryDto {}

export class DeviceEventDto {
  @ApiProperty()
  id: string;

  @ApiProperty({ format: 'uuid' })
  deviceId: string;

  @ApiProperty({ example: 'BIRTH', description: 'BIRTH, DC, LWT or VPN_STATUS' })
  type: string;

  @ApiProperty()
  receivedOn: Date;

  @ApiProperty({ nullable: true, type: Date })
  sentOn: Date | null;

  @ApiProperty({ type: 'object', additionalProperties: true })
  details: Record<string, unknown>;
}

export class DeviceEventListDto extends ListResultDto {
  @ApiProperty({ type: [DeviceEventDto] })
  items: DeviceEventDto[];
}

export function toDeviceEventDto(e: DeviceEvent): DeviceEventDto {
  return {
    id: e.id,
    deviceId: e.deviceId,
    type: e.type,
    receivedOn: e.receivedOn,
    sentOn: e.sentOn,
    details: e.details,
  };
}
