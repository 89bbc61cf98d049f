import { Body, Controller, Get, HttpCode, Ip, Post } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { Public } from '../common/public.decorator';
import { ANY_AUTHENTICATED, Authenticated, CurrentPrincipal } from './auth.decorators';
import { AuthService } from './auth.service';
import {
  AccessTokenDto,
  ApiKeyCredentialsDto,
  AuthInfoDto,
  RefreshTokenDto,
  UserCredentialsDto,
} from './dto/auth.dto';
import type { Principal } from './principal';

@ApiTags('authentication')
@Controller('v1/authentication')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Public()
  @Post('user')
  @HttpCode(200)
  @ApiOperation({ summary: 'Sign in with username and password' })
  @ApiOkResponse({ type: AccessTokenDto, description: 'Signed in: an access token and its refresh token' })
  @ApiErrors(400, 401, 429, 503)
  login(@Ip() ip: string, @Body() body: UserCredentialsDto): Promise<AccessTokenDto> {
    return this.auth.loginUser(ip, body.username, body.password);
  }

  @Public()
  @Post('apikey')
  @HttpCode(200)
  @ApiOperation({ summary: 'Sign in with an API key' })
  @ApiOkResponse({ type: AccessTokenDto, description: 'Signed in: an access token and its refresh token' })
  @ApiErrors(400, 401, 429, 503)
  loginApiKey(@Ip() ip: string, @Body() body: ApiKeyCredentialsDto): Promise<AccessTokenDto> {
    return this.auth.loginApiKey(ip, body.apiKey);
  }

  @Public()
  @Post('refresh')
  @HttpCode(200)
  @ApiOperation({ summary: 'Rotate a token pair: the old access and refresh tokens stop working' })
  @ApiOkResponse({ type: AccessTokenDto, description: 'The new token pair' })
  @ApiErrors(400, 401, 429, 503)
  refresh(@Ip() ip: string, @Body() body: RefreshTokenDto): Promise<AccessTokenDto> {
    return this.auth.refresh(ip, body.tokenId, body.refreshToken);
  }

  @Post('logout')
  @Authenticated({ permission: ANY_AUTHENTICATED })
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke the calling access token (and its refresh token)' })
  @ApiNoContentResponse({ description: 'The token and its refresh token are revoked' })
  async logout(@CurrentPrincipal() principal: Principal): Promise<void> {
    await this.auth.logout(principal);
  }

  @Get('info')
  @Authenticated({ permission: ANY_AUTHENTICATED })
  @ApiOperation({ summary: 'Who the token belongs to and what it may do' })
  @ApiOkResponse({ type: AuthInfoDto, description: 'The principal behind the token' })
  info(@CurrentPrincipal() principal: Principal): AuthInfoDto {
    return {
      tokenId: principal.tokenId,
      scopeId: principal.scopeId,
      userId: principal.userId,
      apiKeyId: principal.apiKeyId,
      role: principal.role,
      permissions: [...principal.permissions].sort(),
    };
  }
}
