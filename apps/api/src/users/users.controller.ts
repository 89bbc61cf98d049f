import { Body, Controller, Delete, Get, HttpCode, Post, Put, Query } from '@nestjs/common';
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
import { actorId, type Principal, type RequestScope } from '../auth/principal';
import { CreateUserDto, UpdateUserDto, UserDto, UserListDto, UserListQueryDto } from './dto/user.dto';
import { UsersService } from './users.service';

@ApiTags('users')
@ApiScopeParam()
@Controller('v1/:scopeId/users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get()
  @Authenticated({ permission: 'user:read' })
  @ApiOperation({ summary: 'List the users of the account' })
  @ApiOkResponse({ type: UserListDto, description: 'One page of users' })
  list(@CurrentScope() scope: RequestScope, @Query() query: UserListQueryDto): Promise<UserListDto> {
    return this.users.list(scope.id, query);
  }

  @Post()
  @Authenticated({ permission: 'user:write' })
  @ApiOperation({ summary: 'Create a user in the account' })
  @ApiCreatedResponse({ type: UserDto, description: 'The new user' })
  @ApiErrors(409)
  create(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateUserDto,
  ): Promise<UserDto> {
    return this.users.create(scope.id, body, actorId(principal));
  }

  @Get(':userId')
  @Authenticated({ permission: 'user:read' })
  @ApiOperation({ summary: 'One user of the account' })
  @ApiOkResponse({ type: UserDto, description: 'The user' })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @UuidParam('userId') id: string): Promise<UserDto> {
    return this.users.get(scope.id, id);
  }

  @Put(':userId')
  @Authenticated({ permission: 'user:write' })
  @ApiOperation({ summary: 'Update a user (send the current optlock)' })
  @ApiOkResponse({ type: UserDto, description: 'The updated user' })
  @ApiErrors(404, 409)
  update(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @UuidParam('userId') id: string,
    @Body() body: UpdateUserDto,
  ): Promise<UserDto> {
    return this.users.update(scope.id, id, body, actorId(principal));
  }

  @Delete(':userId')
  @Authenticated({ permission: 'user:write' })
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a user; their tokens stop working at once' })
  @ApiNoContentResponse({ description: 'The user is deleted' })
  @ApiErrors(404)
  async delete(@CurrentScope() scope: RequestScope, @UuidParam('userId') id: string): Promise<void> {
    await this.users.delete(scope.id, id);
  }
}
