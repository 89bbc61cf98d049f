import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
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
import { actorId, type Principal, type RequestScope } from '../auth/principal';
import { CreateUserDto, UpdateUserDto, UserDto, UserListDto, UserListQueryDto } from './dto/user.dto';
import { UsersService } from './users.service';

@ApiTags('users')
@ApiParam({ name: 'scopeId', description: "Account id, or _ for the caller's own account" })
@Controller('v1/:scopeId/users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get()
  @Authenticated({ permission: 'user:read' })
  @ApiOkResponse({ type: UserListDto })
  list(@CurrentScope() scope: RequestScope, @Query() query: UserListQueryDto): Promise<UserListDto> {
    return this.users.list(scope.id, query);
  }

  @Post()
  @Authenticated({ permission: 'user:write' })
  @ApiOperation({ summary: 'Create a user in the account' })
  @ApiCreatedResponse({ type: UserDto })
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
  @ApiOkResponse({ type: UserDto })
  @ApiErrors(404)
  get(@CurrentScope() scope: RequestScope, @Param('userId', uuidPipe) id: string): Promise<UserDto> {
    return this.users.get(scope.id, id);
  }

  @Put(':userId')
  @Authenticated({ permission: 'user:write' })
  @ApiOkResponse({ type: UserDto })
  @ApiErrors(404, 409)
  update(
    @CurrentScope() scope: RequestScope,
    @CurrentPrincipal() principal: Principal,
    @Param('userId', uuidPipe) id: string,
    @Body() body: UpdateUserDto,
  ): Promise<UserDto> {
    return this.users.update(scope.id, id, body, actorId(principal));
  }

  @Delete(':userId')
  @Authenticated({ permission: 'user:write' })
  @HttpCode(204)
  @ApiNoContentResponse()
  @ApiErrors(404)
  async delete(@CurrentScope() scope: RequestScope, @Param('userId', uuidPipe) id: string): Promise<void> {
    await this.users.delete(scope.id, id);
  }
}
