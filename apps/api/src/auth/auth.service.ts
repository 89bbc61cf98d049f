import { Injectable, Logger } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { ApiKeysRepository } from '../apikeys/api-keys.repository';
import { parseApiKey } from '../apikeys/api-key.format';
import { UsersRepository, type UserCredentials } from '../users/users.repository';
import { LoginThrottle } from './login-throttle';
import type { Principal } from './principal';
import {
  digestEquals,
  dummyPasswordHash,
  hashPassword,
  needsRehash,
  verifyPassword,
} from '../common/secrets';
import { TokenService, type IssuedToken } from './token.service';

const authFailed = () => new AppError('AUTH_FAILED', 'Authentication failed', 'Wrong credentials');

/**
 * Sign-in with a password or an API key, refresh, logout. Every sign-in path (the REST routes
 * and FendVPN's signin) comes through here, so all of them share the throttle.
 */
@Injectable()
export class AuthService {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly users: UsersRepository,
    private readonly apiKeys: ApiKeysRepository,
    private readonly tokens: TokenService,
    private readonly throttle: LoginThrottle,
  ) {}

  /** Same work and same answer whether or not the user exists, so neither timing nor body tells. */
  async loginUser(source: string, username: string, password: string): Promise<IssuedToken> {
    const ticket = await this.throttle.check({ address: source, username });
    const user = await this.users.findByUsername(username);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyPasswordHash()));
    if (!user || !ok || !user.enabled || !user.scopeId) {
      await this.throttle.fail(ticket);
      throw authFailed();
    }
    await this.throttle.succeed(ticket);
    if (needsRehash(user.passwordHash)) await this.rehash(user, password);
    return this.tokens.issue({ userId: user.id }, user.scopeId);
  }

  /**
   * Upgrades a hash made with older scrypt parameters, now that the password is known. Not a
   * change of the user: optlock and modifiedOn stay; a concurrent password change wins.
   */
  private async rehash(user: UserCredentials, password: string): Promise<void> {
    try {
      await this.users.upgradePasswordHash(user.id, user.passwordHash, await hashPassword(password));
    } catch (err) {
      this.logger.warn({ err, userId: user.id }, 'could not upgrade a password hash');
    }
  }

  async loginApiKey(source: string, apiKey: string): Promise<IssuedToken> {
    const ticket = await this.throttle.check({ address: source });
    const parsed = parseApiKey(apiKey);
    const key = parsed ? await this.apiKeys.findCredentials(parsed.id) : null;
    if (
      !parsed ||
      !key ||
      !key.scopeId ||
      !key.creatorExists ||
      !digestEquals(parsed.secret, key.keyDigest)
    ) {
      await this.throttle.fail(ticket);
      throw authFailed();
    }
    await this.throttle.succeed(ticket);
    await this.apiKeys.markUsed(key.id);
    return this.tokens.issue({ apiKeyId: key.id }, key.scopeId);
  }

  async refresh(source: string, tokenId: string, refreshToken: string): Promise<IssuedToken> {
    const ticket = await this.throttle.check({ address: source });
    try {
      return await this.tokens.refresh(tokenId, refreshToken);
    } catch (err) {
      if (err instanceof AppError && (err.code === 'UNAUTHORIZED' || err.code === 'AUTH_FAILED')) {
        await this.throttle.fail(ticket);
        throw err.code === 'AUTH_FAILED' ? err : authFailed();
      }
      throw err;
    }
  }

  logout(principal: Principal): Promise<void> {
    return this.tokens.revoke(principal.tokenId);
  }
}
