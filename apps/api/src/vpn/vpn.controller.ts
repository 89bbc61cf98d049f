import { Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { VpnCommand } from '@app/protocol';
import type { Response } from 'express';
import { ApiErrors } from '../common/api-errors.decorator';
import { UuidParam } from '../common/uuid.pipe';
import {
  ApiScopeParam,
  Authenticated,
  CurrentPrincipal,
  CurrentScope,
  TokenCheck,
} from '../auth/auth.decorators';
import type { PendingTokenCheck } from '../auth/token-check';
import type { Principal, RequestScope } from '../auth/principal';
import {
  DeviceOperationDto,
  DeviceOperationListDto,
  OperationListQueryDto,
  VpnCommandQueryDto,
  VpnStatusDto,
} from './dto/vpn.dto';
import { VpnCommandService } from './vpn-command.service';
import { VpnService } from './vpn.service';

const ASYNC_ACCEPTED = {
  type: DeviceOperationDto,
  description: 'async=true: the command was sent; poll the operation until it leaves RUNNING',
  headers: {
    Location: {
      description: 'The operation: /v1/{scopeId}/devices/{deviceId}/operations/{id}',
      schema: { type: 'string' },
    },
  },
};

@ApiTags('vpn')
@ApiScopeParam()
@Controller('v1/:scopeId/devices/:deviceId')
export class VpnController {
  constructor(
    private readonly vpn: VpnService,
    private readonly commands: VpnCommandService,
  ) {}

  @Get('vpn')
  @Authenticated({ permission: 'vpn:read', tokenCheckedInRead: true })
  @ApiOperation({ summary: 'The last VPN status the agent reported; never waits on the device' })
  @ApiOkResponse({ type: VpnStatusDto, description: 'The VPN status' })
  @ApiErrors(404)
  @ApiParam({ name: 'deviceId', schema: { type: 'string', format: 'uuid' } })
  status(
    @TokenCheck() check: PendingTokenCheck,
    // Checked in the read, after the token (a bad token is 401 before a bad id is 400).
    @Param('deviceId') id: string,
  ): Promise<VpnStatusDto> {
    return this.vpn.statusForToken(check, id);
  }

  @Post('vpn/_connect')
  @HttpCode(200)
  @Authenticated({ permission: 'vpn:connect' })
  @ApiOperation({ summary: 'Tell the device to bring its VPN tunnel up; answers with the new status' })
  @ApiOkResponse({ type: VpnStatusDto, description: 'The device answered: its new VPN status' })
  @ApiAcceptedResponse(ASYNC_ACCEPTED)
  @ApiErrors(404, 409, 502, 504)
  connect(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('deviceId') id: string,
    @Query() query: VpnCommandQueryDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<VpnStatusDto | DeviceOperationDto> {
    return this.command(scope, principal, id, 'connect', query, res);
  }

  @Post('vpn/_disconnect')
  @HttpCode(200)
  @Authenticated({ permission: 'vpn:connect' })
  @ApiOperation({ summary: 'Tell the device to bring its VPN tunnel down; answers with the new status' })
  @ApiOkResponse({ type: VpnStatusDto, description: 'The device answered: its new VPN status' })
  @ApiAcceptedResponse(ASYNC_ACCEPTED)
  @ApiErrors(404, 409, 502, 504)
  disconnect(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('deviceId') id: string,
    @Query() query: VpnCommandQueryDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<VpnStatusDto | DeviceOperationDto> {
    return this.command(scope, principal, id, 'disconnect', query, res);
  }

  /** Everyware Cloud's misspelt route, kept so its clients keep working. */
  @Post('vpn/_discconect')
  @HttpCode(200)
  @Authenticated({ permission: 'vpn:connect' })
  @ApiOperation({
    summary: 'Deprecated alias of vpn/_disconnect (Everyware Cloud spelling)',
    deprecated: true,
  })
  @ApiOkResponse({ type: VpnStatusDto, description: 'The device answered: its new VPN status' })
  @ApiAcceptedResponse(ASYNC_ACCEPTED)
  @ApiErrors(404, 409, 502, 504)
  disconnectAlias(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('deviceId') id: string,
    @Query() query: VpnCommandQueryDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<VpnStatusDto | DeviceOperationDto> {
    return this.command(scope, principal, id, 'disconnect', query, res);
  }

  @Get('operations/:operationId')
  @Authenticated({ permission: 'vpn:read' })
  @ApiOperation({ summary: 'One command of the device: RUNNING until it reaches its outcome' })
  @ApiOkResponse({ type: DeviceOperationDto, description: 'The operation' })
  @ApiErrors(404)
  operation(
    @CurrentScope() scope: RequestScope,
    @UuidParam('deviceId') id: string,
    @UuidParam('operationId') operationId: string,
  ): Promise<DeviceOperationDto> {
    return this.vpn.getOperation(scope.id, id, operationId);
  }

  /** Waits for the device's answer, or with `async=true` answers 202 with the operation at once. */
  private async command(
    scope: RequestScope,
    principal: Principal,
    deviceId: string,
    verb: VpnCommand,
    query: VpnCommandQueryDto,
    res: Response,
  ): Promise<VpnStatusDto | DeviceOperationDto> {
    if (!query.async) return this.commands.execute(scope.id, deviceId, verb, query.timeout, principal);
    const operation = await this.commands.executeAsync(scope.id, deviceId, verb, query.timeout, principal);
    res.status(202);
    res.setHeader('Location', `/v1/${scope.id}/devices/${deviceId}/operations/${operation.id}`);
    return operation;
  }

  @Get('operations')
  @Authenticated({ permission: 'vpn:read' })
  @ApiOperation({ summary: 'The command history of the device, newest first' })
  @ApiOkResponse({ type: DeviceOperationListDto, description: 'One page of operations' })
  @ApiErrors(404)
  operations(
    @CurrentScope() scope: RequestScope,
    @UuidParam('deviceId') id: string,
    @Query() query: OperationListQueryDto,
  ): Promise<DeviceOperationListDto> {
    return this.vpn.listOperations(scope.id, id, query);
  }
}
