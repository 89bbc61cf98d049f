import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { Public } from '../common/public.decorator';
import { UuidParam, uuidPipe } from '../common/uuid.pipe';
import { AuthGuard } from '../auth/auth.guard';
import { Authenticated, CurrentPrincipal, CurrentScope, ApiScopeParam } from '../auth/auth.decorators';
import type { AuthenticatedRequest, Principal, RequestScope } from '../auth/principal';
import {
  CreateSessionDto,
  LocationListDto,
  PingSessionDto,
  SessionCreatedDto,
  SessionListDto,
  SessionListQueryDto,
  SessionPingDto,
} from './dto/session.dto';
import { VpnSessionsService } from './vpn-sessions.service';

@ApiTags('vpn sessions')
@ApiScopeParam()
@Controller('v1/:scopeId/devices/:deviceId/vpn/sessions')
export class DeviceSessionsController {
  constructor(
    private readonly sessions: VpnSessionsService,
    private readonly auth: AuthGuard,
  ) {}

  @Post()
  @Authenticated({ permission: 'vpn:session' })
  @ApiOperation({
    summary:
      "Open an engineer's session to the device: its peer is on the device's gateway before the answer",
  })
  @ApiCreatedResponse({
    type: SessionCreatedDto,
    description: 'The session: its WireGuard configuration and ping token',
  })
  @ApiErrors(404, 409, 504, 507)
  open(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('deviceId') deviceId: string,
    @Body() body: CreateSessionDto,
  ): Promise<SessionCreatedDto> {
    return this.sessions.openForDevice(scope.id, deviceId, body.publicKey, principal);
  }

  @Delete(':sessionId')
  @Authenticated({ permission: 'vpn:session' })
  @HttpCode(204)
  @ApiOperation({ summary: 'End the session: its peer leaves the gateway' })
  @ApiNoContentResponse({ description: 'The session has ended' })
  @ApiErrors(404)
  async close(
    @CurrentScope() scope: RequestScope,
    @UuidParam('deviceId') deviceId: string,
    @UuidParam('sessionId') id: string,
  ): Promise<void> {
    await this.sessions.close(scope.id, deviceId, id);
  }

  /**
   * Public on purpose: the session's pingToken authenticates it, so a session outlives the
   * caller's 30-minute access token. Without a pingToken a bearer token with vpn:session is needed.
   */
  @Public()
  @Post(':sessionId/_ping')
  @HttpCode(200)
  @ApiBearerAuth('bearer')
  @ApiOperation({
    summary: 'Keep the session alive (its pingToken, or an access token); 404 once it has ended',
  })
  @ApiOkResponse({ type: SessionPingDto, description: 'The session is kept alive until expiresOn' })
  @ApiErrors(400, 401, 403, 404)
  async ping(
    @Req() req: AuthenticatedRequest,
    @Param('scopeId') rawScope: string,
    @UuidParam('deviceId') deviceId: string,
    @UuidParam('sessionId') id: string,
    @Body() body: PingSessionDto,
  ): Promise<SessionPingDto> {
    if (body.pingToken !== undefined) {
      // The session id and its 256-bit token authenticate the ping; `_` (no caller to resolve it
      // against) skips the scope check, a real scope id must match the session's.
      const scopeId =
        rawScope === '_' ? null : await uuidPipe.transform(rawScope, { type: 'param', data: 'scopeId' });
      return { expiresOn: await this.sessions.pingWithToken(scopeId, deviceId, id, body.pingToken) };
    }
    await this.auth.check(req, 'vpn:session');
    return { expiresOn: await this.sessions.ping(req.scope!.id, deviceId, id) };
  }
}

@ApiTags('vpn sessions')
@ApiScopeParam()
@Controller('v1/:scopeId/vpn')
export class VpnScopeController {
  constructor(private readonly sessions: VpnSessionsService) {}

  @Get('sessions')
  @Authenticated({ permission: 'vpn:read' })
  @ApiOperation({
    summary: "The audit trail of engineers' sessions in the account: who reached what, when, how long, bytes",
  })
  @ApiOkResponse({ type: SessionListDto, description: 'One page of sessions' })
  list(@CurrentScope() scope: RequestScope, @Query() query: SessionListQueryDto): Promise<SessionListDto> {
    return this.sessions.list(scope.id, query);
  }

  @Get('locations')
  @Authenticated({ permission: 'vpn:read' })
  @ApiOperation({ summary: "The gateways the account may use (its own and its ancestors'), nearest first" })
  @ApiOkResponse({ type: LocationListDto, description: 'The gateways, nearest first' })
  async locations(@CurrentScope() scope: RequestScope): Promise<LocationListDto> {
    return { items: await this.sessions.locations(scope.id) };
  }
}
