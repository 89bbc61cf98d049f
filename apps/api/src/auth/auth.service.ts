import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { AppError } from '../common/app-error';
import { ApiKey } from '../apikeys/api-key.entity';
import { apiKeyCreatorExists } from '../apikeys/api-key-creator';
import { parseApiKey } from '../apikeys/api-key.format';
import { User } from '../users/user.entity';
import { LoginThrottle } from './login-throttle';
import type { Principal } from './principal';
import { digestEquals, dummyPasswordHash, hashPassword, needsRehash, verifyPassword } from './secrets';
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
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly dataSource: DataSource,
    private readonly tokens: TokenService,
    private readonly throttle: LoginThrottle,
  ) {}

  /** Same work and same answer whether or not the user exists, so neither timing nor body tells. */
  async loginUser(source: string, username: string, password: string): Promise<IssuedToken> {
    const ticket = await this.throttle.check({ address: source, username });
    const user = await this.users.findOne({ where: { username } });
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
  private async rehash(user: User, password: string): Promise<void> {
    try {
      await this.dataSource.query(
        'UPDATE app_user SET password_hash = $1 WHERE id = $2 AND password_hash = $3',
        [await hashPassword(password), user.id, user.passwordHash],
      );
    } catch (err) {
      this.logger.warn({ err, userId: user.id }, 'could not upgrade a password hash');
    }
  }

  async loginApiKey(source: string, apiKey: string): Promise<IssuedToken> {
    const ticket = await this.throttle.check({ address: source });
    const parsed = parseApiKey(apiKey);
    const rows: Array<{ id: string; scope_id: string | null; key_digest: Buffer; creator_exists: boolean }> =
      parsed
        ? await this.dataSource.query(
            `SELECT k.id, k.scope_id, k.key_digest, ${apiKeyCreatorExists('k')} AS creator_exists
               FROM api_key k WHERE k.id = $1`,
            [parsed.id],
          )
        : [];
    const key = rows[0];
    if (
      !parsed ||
      !key ||
      !key.scope_id ||
      !key.creator_exists ||
      !digestEquals(parsed.secret, key.key_digest)
    ) {
      await this.throttle.fail(ticket);
      throw authFailed();
    }
    await this.throttle.succeed(ticket);
    await this.dataSource.getRepository(ApiKey).update({ id: key.id }, { lastUsedOn: new Date() });
    return this.tokens.issue({ apiKeyId: key.id }, key.scope_id);
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
