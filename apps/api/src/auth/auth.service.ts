import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { AppError } from '../common/app-error';
import { ApiKey } from '../apikeys/api-key.entity';
import { parseApiKey } from '../apikeys/api-key.format';
import { User } from '../users/user.entity';
import { LoginThrottle } from './login-throttle';
import type { Principal } from './principal';
import { digestEquals, dummyPasswordHash, verifyPassword } from './secrets';
import { TokenService, type IssuedToken } from './token.service';

const authFailed = () => new AppError('AUTH_FAILED', 'Authentication failed', 'Wrong credentials');

/** Sign-in with a password or an API key, refresh, logout. */
@Injectable()
export class AuthService {
  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    @InjectRepository(ApiKey) private readonly apiKeys: Repository<ApiKey>,
    private readonly tokens: TokenService,
    private readonly throttle: LoginThrottle,
  ) {}

  /** Same work and same answer whether or not the user exists, so neither timing nor body tells. */
  async loginUser(source: string, username: string, password: string): Promise<IssuedToken> {
    this.throttle.check(source);
    const user = await this.users.findOne({ where: { username } });
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyPasswordHash()));
    if (!user || !ok || !user.enabled || !user.scopeId) {
      this.throttle.fail(source);
      throw authFailed();
    }
    this.throttle.succeed(source);
    return this.tokens.issue({ userId: user.id }, user.scopeId);
  }

  async loginApiKey(source: string, apiKey: string): Promise<IssuedToken> {
    this.throttle.check(source);
    const parsed = parseApiKey(apiKey);
    const key = parsed ? await this.apiKeys.findOne({ where: { id: parsed.id } }) : null;
    if (!parsed || !key || !key.scopeId || !digestEquals(parsed.secret, key.keyDigest)) {
      this.throttle.fail(source);
      throw authFailed();
    }
    this.throttle.succeed(source);
    await this.apiKeys.update({ id: key.id }, { lastUsedOn: new Date() });
    return this.tokens.issue({ apiKeyId: key.id }, key.scopeId);
  }

  async refresh(source: string, tokenId: string, refreshToken: string): Promise<IssuedToken> {
    this.throttle.check(source);
    try {
      return await this.tokens.refresh(tokenId, refreshToken);
    } catch (err) {
      this.throttle.fail(source);
      if (err instanceof AppError && err.code === 'UNAUTHORIZED') throw authFailed();
      throw err;
    }
  }

  logout(principal: Principal): Promise<void> {
    return this.tokens.revoke(principal.tokenId);
  }
}
