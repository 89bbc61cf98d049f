import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
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
import { ApiKeysService } from './api-keys.service';
import {
  ApiKeyDto,
  ApiKeyListDto,
  ApiKeyListQueryDto,
  CreateApiKeyDto,
  CreatedApiKeyDto,
} from './dto/api-key.dto';

@ApiTags('apikeys')
@ApiParam({ name: 'scopeId', description: "Account id, or _ for the caller's own account" })
@Controller('v1/:scopeId/apikeys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Get()
  @Authenticated({ permission: 'apikey:read' })
  @ApiOkResponse({ type: ApiKeyListDto })
  list(@CurrentScope() scope: RequestScope, @Query() query: ApiKeyListQueryDto): Promise<ApiKeyListDto> {
    return this.keys.list(scope.id, query);
  }

  @Post()
  @Authenticated({ permission: 'apikey:write' })
  @ApiOperation({ summary: 'Create an API key; the secret is returned once' })
  @ApiCreatedResponse({ type: CreatedApiKeyDto })
  create(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateApiKeyDto,
  ): Promise<CreatedApiKeyDto> {
    return this.keys.create(scope.id, body, principal);
  }

  @Get(':apiKeyId')
  @Authenticated({ permission: 'apikey:read' })
  @ApiOkResponse({ type: ApiKeyDto })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @Param('apiKeyId', uuidPipe) id: string): Promise<ApiKeyDto> {
    return this.keys.get(scope.id, id);
  }

  @Delete(':apiKeyId')
  @Authenticated({ permission: 'apikey:write' })
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete an API key; its tokens stop working at once' })
  @ApiNoContentResponse()
  @ApiErrors(404)
  async delete(@CurrentScope() scope: RequestScope, @Param('apiKeyId', uuidPipe) id: string): Promise<void> {
    await this.keys.delete(scope.id, id);
  }
}
