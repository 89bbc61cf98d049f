import { Body, Controller, Delete, Get, HttpCode, Post, Query } from '@nestjs/common';
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
import type { Principal, RequestScope } from '../auth/principal';
import { ApiKeysService } from './api-keys.service';
import {
  ApiKeyDto,
  ApiKeyListDto,
  ApiKeyListQueryDto,
  CreateApiKeyDto,
  CreatedApiKeyDto,
} from './dto/api-key.dto';

@ApiTags('apikeys')
@ApiScopeParam()
@Controller('v1/:scopeId/apikeys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Get()
  @Authenticated({ permission: 'apikey:read' })
  @ApiOperation({ summary: 'List the API keys of the account (never their secrets)' })
  @ApiOkResponse({ type: ApiKeyListDto, description: 'One page of API keys' })
  list(@CurrentScope() scope: RequestScope, @Query() query: ApiKeyListQueryDto): Promise<ApiKeyListDto> {
    return this.keys.list(scope.id, query);
  }

  @Post()
  @Authenticated({ permission: 'apikey:write' })
  @ApiOperation({ summary: 'Create an API key; the secret is returned once' })
  @ApiCreatedResponse({ type: CreatedApiKeyDto, description: 'The new API key with its secret' })
  create(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateApiKeyDto,
  ): Promise<CreatedApiKeyDto> {
    return this.keys.create(scope.id, body, principal);
  }

  @Get(':apiKeyId')
  @Authenticated({ permission: 'apikey:read' })
  @ApiOperation({ summary: 'One API key (never its secret)' })
  @ApiOkResponse({ type: ApiKeyDto, description: 'The API key' })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @UuidParam('apiKeyId') id: string): Promise<ApiKeyDto> {
    return this.keys.get(scope.id, id);
  }

  @Delete(':apiKeyId')
  @Authenticated({ permission: 'apikey:write' })
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete an API key; its tokens stop working at once' })
  @ApiNoContentResponse({ description: 'The API key is deleted' })
  @ApiErrors(404)
  async delete(@CurrentScope() scope: RequestScope, @UuidParam('apiKeyId') id: string): Promise<void> {
    await this.keys.delete(scope.id, id);
  }
}
