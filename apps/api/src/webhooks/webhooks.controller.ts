import { Body, Controller, Delete, Get, HttpCode, Post, Put, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { UuidParam } from '../common/uuid.pipe';
import { Authenticated, CurrentPrincipal, CurrentScope, ApiScopeParam } from '../auth/auth.decorators';
import type { Principal, RequestScope } from '../auth/principal';
import { WebhooksService } from './webhooks.service';
import {
  CreatedWebhookDto,
  CreateWebhookDto,
  DeliveryListQueryDto,
  UpdateWebhookDto,
  WebhookDeliveryDto,
  WebhookDeliveryListDto,
  WebhookDto,
  WebhookListDto,
  WebhookListQueryDto,
} from './dto/webhook.dto';

@ApiTags('webhooks')
@ApiScopeParam()
@Controller('v1/:scopeId/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Get()
  @Authenticated({ permission: 'webhook:read' })
  @ApiOperation({ summary: 'List the webhook endpoints of the account (never their secrets)' })
  @ApiOkResponse({ type: WebhookListDto, description: 'One page of webhook endpoints' })
  list(@CurrentScope() scope: RequestScope, @Query() query: WebhookListQueryDto): Promise<WebhookListDto> {
    return this.webhooks.list(scope.id, query);
  }

  @Post()
  @Authenticated({ permission: 'webhook:write' })
  @ApiOperation({ summary: 'Create a webhook endpoint; its signing secret is returned once' })
  @ApiCreatedResponse({ type: CreatedWebhookDto, description: 'The new endpoint with its signing secret' })
  @ApiErrors(409)
  create(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateWebhookDto,
  ): Promise<CreatedWebhookDto> {
    return this.webhooks.create(scope.id, body, principal);
  }

  @Get(':webhookId')
  @Authenticated({ permission: 'webhook:read' })
  @ApiOperation({ summary: 'One webhook endpoint (never its secret)' })
  @ApiOkResponse({ type: WebhookDto, description: 'The endpoint' })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @UuidParam('webhookId') id: string): Promise<WebhookDto> {
    return this.webhooks.get(scope.id, id);
  }

  @Put(':webhookId')
  @Authenticated({ permission: 'webhook:write' })
  @ApiOperation({ summary: 'Change a webhook endpoint (optimistic lock)' })
  @ApiOkResponse({ type: WebhookDto, description: 'The updated endpoint' })
  @ApiErrors(404, 409)
  update(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('webhookId') id: string,
    @Body() body: UpdateWebhookDto,
  ): Promise<WebhookDto> {
    return this.webhooks.update(scope.id, id, body, principal);
  }

  @Delete(':webhookId')
  @Authenticated({ permission: 'webhook:write' })
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a webhook endpoint and its deliveries' })
  @ApiNoContentResponse({ description: 'The endpoint is deleted' })
  @ApiErrors(404)
  async delete(@CurrentScope() scope: RequestScope, @UuidParam('webhookId') id: string): Promise<void> {
    await this.webhooks.delete(scope.id, id);
  }

  @Get(':webhookId/deliveries')
  @Authenticated({ permission: 'webhook:read' })
  @ApiOperation({ summary: "The endpoint's deliveries, newest first" })
  @ApiOkResponse({ type: WebhookDeliveryListDto, description: 'One page of deliveries' })
  @ApiErrors(404)
  deliveries(
    @CurrentScope() scope: RequestScope,
    @UuidParam('webhookId') id: string,
    @Query() query: DeliveryListQueryDto,
  ): Promise<WebhookDeliveryListDto> {
    return this.webhooks.listDeliveries(scope.id, id, query);
  }

  @Post(':webhookId/_test')
  @Authenticated({ permission: 'webhook:write' })
  @HttpCode(202)
  @ApiOperation({ summary: 'Enqueue a webhook.test delivery to the endpoint' })
  @ApiAcceptedResponse({ type: WebhookDeliveryDto, description: 'The delivery, enqueued' })
  @ApiErrors(404, 409)
  sendTest(
    @CurrentScope() scope: RequestScope,
    @UuidParam('webhookId') id: string,
  ): Promise<WebhookDeliveryDto> {
    return this.webhooks.sendTest(scope.id, id);
  }
}
