import { Body, Controller, Get, HttpCode, Ip, Post, Query, Req } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiErrors } from '../common/api-errors.decorator';
import { Public } from '../common/public.decorator';
import { uuidPipe } from '../common/uuid.pipe';
import { Authenticated, CurrentPrincipal } from '../auth/auth.decorators';
import type { Principal } from '../auth/principal';
import {
  ConnectDto,
  ConnectResponseDto,
  DisconnectDto,
  FendCredentialsDto,
  FendLocationDto,
  PingDto,
  SigninDto,
  SigninResponseDto,
} from './fendvpn.dto';
import { FendVpnService } from './fendvpn.service';

/** This API's base URL as the client reached it (PUBLIC_URL overrides it). */
const baseUrlOf = (req: Request): string => `${req.protocol}://${req.get('host') ?? 'localhost'}`;

/**
 * FendVPN's client API (docs/fendvpn.md), so a FendVPN-style WireGuard client works unchanged:
 * snake_case bodies, errors in the same `{result, error, details}` body as the rest of the API.
 */
@ApiTags('fendvpn client')
@Controller('api/client')
export class FendVpnController {
  constructor(private readonly fend: FendVpnService) {}

  @Public()
  @Post('signin')
  @HttpCode(200)
  @ApiOperation({ summary: 'Sign in to a project (account) with a password or an API key' })
  @ApiOkResponse({ type: SigninResponseDto, description: 'Signed in: the token and the API to use it with' })
  @ApiErrors(400, 401, 429)
  signin(@Ip() ip: string, @Req() req: Request, @Body() body: SigninDto): Promise<SigninResponseDto> {
    return this.fend.signin(ip, body, baseUrlOf(req));
  }

  @Get('locations')
  @Authenticated({ permission: 'vpn:session' })
  @ApiOperation({ summary: 'The locations (gateways) the caller may connect through' })
  @ApiOkResponse({ type: [FendLocationDto], description: 'The locations, nearest first' })
  locations(@CurrentPrincipal() principal: Principal): Promise<FendLocationDto[]> {
    return this.fend.locations(principal);
  }

  @Get('credentials')
  @Authenticated({ permission: 'vpn:session' })
  @ApiQuery({ name: 'location', format: 'uuid', required: true })
  @ApiOperation({ summary: 'Where to connect for a location (this API serves connect)' })
  @ApiOkResponse({ type: [FendCredentialsDto], description: 'Where to connect for the location' })
  @ApiErrors(404)
  credentials(
    @CurrentPrincipal() principal: Principal,
    @Req() req: Request,
    @Query('location', uuidPipe) location: string,
  ): Promise<FendCredentialsDto[]> {
    return this.fend.credentials(principal, location, baseUrlOf(req));
  }

  @Post('connect')
  @HttpCode(200)
  @Authenticated({ permission: 'vpn:session' })
  @ApiOperation({
    summary:
      'Open a site session with a WireGuard key: the devices of the caller account subtree, through the location',
  })
  @ApiOkResponse({
    type: ConnectResponseDto,
    description: 'The session: its WireGuard configuration and the ids to ping and end it with',
  })
  @ApiErrors(404, 409, 507)
  connect(@CurrentPrincipal() principal: Principal, @Body() body: ConnectDto): Promise<ConnectResponseDto> {
    return this.fend.connect(principal, body);
  }

  @Post('ping')
  @HttpCode(204)
  @Authenticated({ permission: 'vpn:session' })
  @ApiOperation({ summary: 'Keep the session alive; 404 once the cloud has ended it' })
  @ApiNoContentResponse({ description: 'The session is kept alive' })
  @ApiErrors(404)
  async ping(@CurrentPrincipal() principal: Principal, @Body() body: PingDto): Promise<void> {
    await this.fend.ping(principal, body.installation_id, body.session_id);
  }

  @Post('disconnect')
  @HttpCode(204)
  @Authenticated({ permission: 'vpn:session' })
  @ApiOperation({ summary: 'End the session' })
  @ApiNoContentResponse({ description: 'The session has ended' })
  @ApiErrors(404)
  async disconnect(@CurrentPrincipal() principal: Principal, @Body() body: DisconnectDto): Promise<void> {
    await this.fend.disconnect(principal, body.installation_id, body.session_id);
  }
}
