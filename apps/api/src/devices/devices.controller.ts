import { Body, Controller, Delete, Get, HttpCode, Post, Put, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { UuidParam } from '../common/uuid.pipe';
import { Authenticated, CurrentPrincipal, CurrentScope, ApiScopeParam } from '../auth/auth.decorators';
import { actorId } from '../auth/principal';
import type { Principal, RequestScope } from '../auth/principal';
import { DevicesService } from './devices.service';
import { DeviceEventListDto, DeviceEventListQueryDto } from './dto/device-event.dto';
import {
  CreateDeviceDto,
  DeviceCredentialsDto,
  DeviceDto,
  DeviceListDto,
  DeviceListQueryDto,
  UpdateDeviceDto,
} from './dto/device.dto';

@ApiTags('devices')
@ApiScopeParam()
@Controller('v1/:scopeId/devices')
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  @Get()
  @Authenticated({ permission: 'device:read' })
  @ApiOperation({ summary: 'List the devices of the account' })
  @ApiOkResponse({ type: DeviceListDto, description: 'One page of devices' })
  list(
    @CurrentScope() scope: RequestScope,
    @Query() query: DeviceListQueryDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<string> {
    // The body is DeviceListDto's JSON, written by the page statement: sent as it is.
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    return this.devices.listJson(scope.id, query);
  }

  @Post()
  @Authenticated({ permission: 'device:write' })
  @ApiOperation({ summary: 'Register a device; it gets a stable tunnel address from the account subnet' })
  @ApiCreatedResponse({ type: DeviceDto, description: 'The new device' })
  @ApiErrors(409)
  create(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateDeviceDto,
  ): Promise<DeviceDto> {
    return this.devices.create(scope.id, body, actorId(principal));
  }

  @Get(':deviceId')
  @Authenticated({ permission: 'device:read' })
  @ApiOperation({ summary: 'One device of the account' })
  @ApiOkResponse({ type: DeviceDto, description: 'The device' })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @UuidParam('deviceId') id: string): Promise<DeviceDto> {
    return this.devices.get(scope.id, id);
  }

  @Put(':deviceId')
  @Authenticated({ permission: 'device:write' })
  @ApiOperation({ summary: 'Update a device (send the current optlock)' })
  @ApiOkResponse({ type: DeviceDto, description: 'The updated device' })
  @ApiErrors(404, 409)
  update(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('deviceId') id: string,
    @Body() body: UpdateDeviceDto,
  ): Promise<DeviceDto> {
    return this.devices.update(scope.id, id, body, actorId(principal));
  }

  @Delete(':deviceId')
  @Authenticated({ permission: 'device:write' })
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a device; its credentials and tunnel peer go with it' })
  @ApiNoContentResponse({ description: 'The device is deleted' })
  @ApiErrors(404)
  async delete(@CurrentScope() scope: RequestScope, @UuidParam('deviceId') id: string): Promise<void> {
    await this.devices.delete(scope.id, id);
  }

  @Post(':deviceId/credentials')
  @Authenticated({ permission: 'device:write' })
  @ApiOperation({ summary: 'Issue or rotate the device MQTT credentials; the password is shown once' })
  @ApiCreatedResponse({
    type: DeviceCredentialsDto,
    description: 'The MQTT credentials, with the password this once',
  })
  @ApiErrors(404)
  credentials(
    @CurrentScope() scope: RequestScope,
    @UuidParam('deviceId') id: string,
  ): Promise<DeviceCredentialsDto> {
    return this.devices.issueCredentials(scope.id, id);
  }

  @Get(':deviceId/events')
  @Authenticated({ permission: 'device:read' })
  @ApiOperation({ summary: 'Lifecycle and status events of the device, newest first' })
  @ApiOkResponse({ type: DeviceEventListDto, description: 'One page of events' })
  @ApiErrors(404)
  events(
    @CurrentScope() scope: RequestScope,
    @UuidParam('deviceId') id: string,
    @Query() query: DeviceEventListQueryDto,
  ): Promise<DeviceEventListDto> {
    return this.devices.listEvents(scope.id, id, query);
  }
}
