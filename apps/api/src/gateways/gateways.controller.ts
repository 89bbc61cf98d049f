import { Body, Controller, Delete, Get, HttpCode, Patch, Post, Query } from '@nestjs/common';
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
import {
  CreateGatewayDto,
  GatewayCredentialsDto,
  GatewayDto,
  GatewayListDto,
  GatewayListQueryDto,
  UpdateGatewayDto,
} from './dto/gateway.dto';
import { GatewaysService } from './gateways.service';

@ApiTags('gateways')
@ApiScopeParam()
@Controller('v1/:scopeId/gateways')
export class GatewaysController {
  constructor(private readonly gateways: GatewaysService) {}

  @Get()
  @Authenticated({ permission: 'gateway:read' })
  @ApiOperation({ summary: 'List the VPN gateways of the account' })
  @ApiOkResponse({ type: GatewayListDto, description: 'One page of gateways' })
  list(@CurrentScope() scope: RequestScope, @Query() query: GatewayListQueryDto): Promise<GatewayListDto> {
    return this.gateways.list(scope.id, query);
  }

  @Post()
  @Authenticated({ permission: 'gateway:write' })
  @ApiOperation({
    summary: 'Register a VPN gateway; devices of this account and its sub-accounts tunnel through it',
  })
  @ApiCreatedResponse({ type: GatewayDto, description: 'The new gateway' })
  @ApiErrors(409)
  create(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateGatewayDto,
  ): Promise<GatewayDto> {
    return this.gateways.create(scope.id, body, actorId(principal));
  }

  @Get(':gatewayId')
  @Authenticated({ permission: 'gateway:read' })
  @ApiOperation({ summary: 'One gateway, with its connection and the number of peers it carries' })
  @ApiOkResponse({ type: GatewayDto, description: 'The gateway' })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @UuidParam('gatewayId') id: string): Promise<GatewayDto> {
    return this.gateways.get(scope.id, id);
  }

  @Patch(':gatewayId')
  @Authenticated({ permission: 'gateway:write' })
  @ApiOperation({ summary: 'Change the endpoint or description (send the current optlock)' })
  @ApiOkResponse({ type: GatewayDto, description: 'The updated gateway' })
  @ApiErrors(404, 409)
  update(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('gatewayId') id: string,
    @Body() body: UpdateGatewayDto,
  ): Promise<GatewayDto> {
    return this.gateways.update(scope.id, id, body, actorId(principal));
  }

  @Delete(':gatewayId')
  @Authenticated({ permission: 'gateway:write' })
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a gateway that carries no tunnels (409 while it does)' })
  @ApiNoContentResponse({ description: 'The gateway is deleted' })
  @ApiErrors(404, 409)
  async delete(@CurrentScope() scope: RequestScope, @UuidParam('gatewayId') id: string): Promise<void> {
    await this.gateways.delete(scope.id, id);
  }

  @Post(':gatewayId/credentials')
  @Authenticated({ permission: 'gateway:write' })
  @ApiOperation({ summary: 'Issue or rotate the gateway MQTT credentials; the password is shown once' })
  @ApiCreatedResponse({
    type: GatewayCredentialsDto,
    description: 'The MQTT credentials, with the password this once',
  })
  @ApiErrors(404)
  credentials(
    @CurrentScope() scope: RequestScope,
    @UuidParam('gatewayId') id: string,
  ): Promise<GatewayCredentialsDto> {
    return this.gateways.issueCredentials(scope.id, id);
  }
}
