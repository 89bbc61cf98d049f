import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiAuthenticated, ApiErrors } from '../common/api-errors.decorator';
import { uuidPipe } from '../common/uuid.pipe';
import { CurrentPrincipal, CurrentScope, RequirePermission } from '../auth/auth.decorators';
import type { Principal, RequestScope } from '../auth/principal';
import {
  DeviceOperationListDto,
  OperationListQueryDto,
  VpnCommandQueryDto,
  VpnStatusDto,
} from './dto/vpn.dto';
import { VpnCommandService } from './vpn-command.service';
import { VpnService } from './vpn.service';

@ApiTags('vpn')
@ApiAuthenticated()
@ApiParam({ name: 'scopeId', description: "Account id, or _ for the caller's own account" })
@Controller('v1/:scopeId/devices/:deviceId')
export class VpnController {
  constructor(
    private readonly vpn: VpnService,
    private readonly commands: VpnCommandService,
  ) {}

  @Get('vpn')
  @RequirePermission('vpn:read')
  @ApiOperation({ summary: 'The last VPN status the agent reported; never waits on the device' })
  @ApiOkResponse({ type: VpnStatusDto })
  @ApiErrors(400, 404)
  status(
    @CurrentScope() scope: RequestScope,
    @Param('deviceId', uuidPipe) id: string,
  ): Promise<VpnStatusDto> {
    return this.vpn.status(scope.id, id);
  }

  @Post('vpn/_connect')
  @HttpCode(200)
  @RequirePermission('vpn:connect')
  @ApiOperation({ summary: 'Tell the device to bring its VPN tunnel up; answers with the new status' })
  @ApiOkResponse({ type: VpnStatusDto })
  @ApiErrors(400, 404, 409, 502, 503, 504)
  connect(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Param('deviceId', uuidPipe) id: string,
    @Query() query: VpnCommandQueryDto,
  ): Promise<VpnStatusDto> {
    return this.commands.execute(scope.id, id, 'connect', query.timeout, principal);
  }

  @Post('vpn/_disconnect')
  @HttpCode(200)
  @RequirePermission('vpn:connect')
  @ApiOperation({ summary: 'Tell the device to bring its VPN tunnel down; answers with the new status' })
  @ApiOkResponse({ type: VpnStatusDto })
  @ApiErrors(400, 404, 409, 502, 503, 504)
  disconnect(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Param('deviceId', uuidPipe) id: string,
    @Query() query: VpnCommandQueryDto,
  ): Promise<VpnStatusDto> {
    return this.commands.execute(scope.id, id, 'disconnect', query.timeout, principal);
  }

  /** Everyware Cloud's misspelt route, kept so its clients keep working. */
  @Post('vpn/_discconect')
  @HttpCode(200)
  @RequirePermission('vpn:connect')
  @ApiOperation({
    summary: 'Deprecated alias of vpn/_disconnect (Everyware Cloud spelling)',
    deprecated: true,
  })
  @ApiOkResponse({ type: VpnStatusDto })
  @ApiErrors(400, 404, 409, 502, 503, 504)
  disconnectAlias(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Param('deviceId', uuidPipe) id: string,
    @Query() query: VpnCommandQueryDto,
  ): Promise<VpnStatusDto> {
    return this.commands.execute(scope.id, id, 'disconnect', query.timeout, principal);
  }

  @Get('operations')
  @RequirePermission('vpn:read')
  @ApiOperation({ summary: 'The command history of the device, newest first' })
  @ApiOkResponse({ type: DeviceOperationListDto })
  @ApiErrors(400, 404)
  operations(
    @CurrentScope() scope: RequestScope,
    @Param('deviceId', uuidPipe) id: string,
    @Query() query: OperationListQueryDto,
  ): Promise<DeviceOperationListDto> {
    return this.vpn.listOperations(scope.id, id, query);
  }
}
