import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { uuidPipe } from '../common/uuid.pipe';
import { Authenticated, CurrentPrincipal, CurrentScope } from '../auth/auth.decorators';
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
@ApiParam({ name: 'scopeId', description: "Account id, or _ for the caller's own account" })
@Controller('v1/:scopeId/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Get()
  @Authenticated({ permission: 'webhook:read' })
  @ApiOkResponse({ type: WebhookListDto })
  list(@CurrentScope() scope: RequestScope, @Query() query: WebhookListQueryDto): Promise<WebhookListDto> {
    return this.webhooks.list(scope.id, query);
  }

  @Post()
  @Authenticated({ permission: 'webhook:write' })
  @ApiOperation({ summary: 'Create a webhook endpoint; its signing secret is returned once' })
  @ApiCreatedResponse({ type: CreatedWebhookDto })
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
  @ApiOkResponse({ type: WebhookDto })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @Param('webhookId', uuidPipe) id: string): Promise<WebhookDto> {
    return this.webhooks.get(scope.id, id);
  }

  @Put(':webhookId')
  @Authenticated({ permission: 'webhook:write' })
  @ApiOperation({ summary: 'Change a webhook endpoint (optimistic lock)' })
  @ApiOkResponse({ type: WebhookDto })
  @ApiErrors(404, 409)
  update(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Param('webhookId', uuidPipe) id: string,
    @Body() body: UpdateWebhookDto,
  ): Promise<WebhookDto> {
    return this.webhooks.update(scope.id, id, body, principal);
  }

  @Delete(':webhookId')
  @Authenticated({ permission: 'webhook:write' })
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a webhook endpoint and its deliveries' })
  @ApiNoContentResponse()
  @ApiErrors(404)
  async delete(@CurrentScope() scope: RequestScope, @Param('webhookId', uuidPipe) id: string): Promise<void> {
    await this.webhooks.delete(scope.id, id);
  }

  @Get(':webhookId/deliveries')
  @Authenticated({ permission: 'webhook:read' })
  @ApiOperation({ summary: "The endpoint's deliveries, newest first" })
  @ApiOkResponse({ type: WebhookDeliveryListDto })
  @ApiErrors(404)
  deliveries(
    @CurrentScope() scope: RequestScope,
    @Param('webhookId', uuidPipe) id: string,
    @Query() query: DeliveryListQueryDto,
  ): Promise<WebhookDeliveryListDto> {
    return this.webhooks.listDeliveries(scope.id, id, query);
  }

  @Post(':webhookId/_test')
  @Authenticated({ permission: 'webhook:write' })
  @HttpCode(202)
  @ApiOperation({ summary: 'Enqueue a webhook.test delivery to the endpoint' })
  @ApiAcceptedResponse({ type: WebhookDeliveryDto })
  @ApiErrors(404, 409)
  sendTest(
    @CurrentScope() scope: RequestScope,
    @Param('webhookId', uuidPipe) id: string,
  ): Promise<WebhookDeliveryDto> {
    return this.webhooks.sendTest(scope.id, id);
  }
}
