import { Body, Controller, Delete, Get, HttpCode, Post, Put, Query } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { Authenticated, CurrentPrincipal, CurrentScope, ApiScopeParam } from '../auth/auth.decorators';
import { actorId, type Principal, type RequestScope } from '../auth/principal';
import { AccountsService } from './accounts.service';
import {
  AccountDto,
  AccountListDto,
  AccountListQueryDto,
  CreateAccountDto,
  UpdateAccountDto,
} from './dto/account.dto';
import { UuidParam } from '../common/uuid.pipe';

@ApiTags('accounts')
@ApiScopeParam()
@Controller('v1/:scopeId/accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @Get()
  @Authenticated({ permission: 'account:read' })
  @ApiOperation({ summary: 'List the child accounts of the scope (recursive=true: all descendants)' })
  @ApiOkResponse({ type: AccountListDto, description: 'One page of accounts' })
  list(@CurrentScope() scope: RequestScope, @Query() query: AccountListQueryDto): Promise<AccountListDto> {
    return this.accounts.list(scope, query);
  }

  @Post()
  @Authenticated({ permission: 'account:write' })
  @ApiOperation({
    summary: 'Create a child account',
    description:
      'Only admins of the root account may choose vpnSubnet (403 otherwise); other accounts get the next free block. ' +
      'An account has at most ACCOUNT_MAX_CHILDREN children and a tenant at most ACCOUNT_MAX_DESCENDANTS accounts below it (409).',
  })
  @ApiCreatedResponse({ type: AccountDto, description: 'The new account' })
  @ApiErrors(409)
  create(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateAccountDto,
  ): Promise<AccountDto> {
    return this.accounts.create(scope, body, principal);
  }

  @Get(':accountId')
  @Authenticated({ permission: 'account:read' })
  @ApiOperation({ summary: 'One account of the scope or below it' })
  @ApiOkResponse({ type: AccountDto, description: 'The account' })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @UuidParam('accountId') id: string): Promise<AccountDto> {
    return this.accounts.get(scope, id);
  }

  @Put(':accountId')
  @Authenticated({ permission: 'account:write' })
  @ApiOperation({ summary: 'Update an account (send the current optlock)' })
  @ApiOkResponse({ type: AccountDto, description: 'The updated account' })
  @ApiErrors(404, 409)
  update(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('accountId') id: string,
    @Body() body: UpdateAccountDto,
  ): Promise<AccountDto> {
    return this.accounts.update(scope, id, body, actorId(principal));
  }

  @Delete(':accountId')
  @Authenticated({ permission: 'account:write' })
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete an account without children or devices' })
  @ApiNoContentResponse({ description: 'The account is deleted' })
  @ApiErrors(404, 409)
  async delete(@CurrentScope() scope: RequestScope, @UuidParam('accountId') id: string): Promise<void> {
    await this.accounts.delete(scope, id);
  }
}
