import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, IsNull, Repository, type EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { apiKeyCreatorExists } from '../apikeys/api-key-creator';
import { AccessToken } from './access-token.entity';
import type { Principal } from './principal';
import { ROLE_PERMISSIONS, ROLES, type Role } from './roles';
import { digest, digestEquals, generateSecret } from './secrets';

export interface IssuedToken {
  tokenId: string;
  refreshToken: string;
  expiresOn: Date;
  refreshExpiresOn: Date;
  scopeId: string;
  userId: string | null;
  apiKeyId: string | null;
}

interface JwtClaims {
  sub: string;
  sId: string;
  jti: string;
  typ: 'user' | 'apikey';
}

interface PrincipalRow {
  revoked_on: Date | null;
  expires_on: Date;
  scope_id: string;
  user_id: string | null;
  api_key_id: string | null;
  role: string | null;
  active: boolean | null;
  path: string;
}

const unauthorized = (details: string) => new AppError('UNAUTHORIZED', 'Authentication required', details);

/**
 * Issues, checks, rotates and revokes access tokens. The JWT is HS256-signed and
 * its `jti` must name a live row in `access_token`, so a logout is refused at
 * once by every instance.
 */
@Injectable()
export class TokenService {
  constructor(
    private readonly jwt: JwtService,
    private readonly dataSource: DataSource,
    @InjectRepository(AccessToken) private readonly tokens: Repository<AccessToken>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async issue(subject: { userId: string } | { apiKeyId: string }, scopeId: string): Promise<IssuedToken> {
    const jti = randomUUID();
    const now = Date.now();
    const expiresOn = new Date(now + this.config.accessTokenTtlSeconds * 1000);
    const refreshExpiresOn = new Date(now + this.config.refreshTokenTtlSeconds * 1000);
    const refreshToken = generateSecret();
    const userId = 'userId' in subject ? subject.userId : null;
    const apiKeyId = 'apiKeyId' in subject ? subject.apiKeyId : null;
    await this.tokens.insert({
      id: jti,
      userId,
      apiKeyId,
      scopeId,
      expiresOn,
      refreshDigest: digest(refreshToken),
      refreshExpiresOn,
      revokedOn: null,
    });
    const claims: Omit<JwtClaims, 'jti'> = {
      sub: userId ?? apiKeyId ?? '',
      sId: scopeId,
      typ: userId ? 'user' : 'apikey',
    };
    const tokenId = await this.jwt.signAsync(claims, {
      jwtid: jti,
      expiresIn: this.config.accessTokenTtlSeconds,
      algorithm: 'HS256',
    });
    return { tokenId, refreshToken, expiresOn, refreshExpiresOn, scopeId, userId, apiKeyId };
  }

  private async decode(token: string, ignoreExpiration: boolean): Promise<JwtClaims> {
    try {
      const claims = await this.jwt.verifyAsync<JwtClaims>(token, {
        algorithms: ['HS256'],
        ignoreExpiration,
      });
      if (
        typeof claims.jti !== 'string' ||
        typeof claims.sub !== 'string' ||
        typeof claims.sId !== 'string'
      ) {
        throw new Error('missing claims');
      }
      return claims;
    } catch (err) {
      const expired = err instanceof Error && err.name === 'TokenExpiredError';
      throw unauthorized(expired ? 'The access token has expired' : 'The access token is invalid');
    }
  }

  /** Resolves a bearer token to the caller, with the role its user or API key has now. */
  async authenticate(token: string): Promise<Principal> {
    const claims = await this.decode(token, false);
    if (!/^[0-9a-f-]{36}$/i.test(claims.jti)) throw unauthorized('The access token is invalid');
    return this.principalOf(claims.jti);
  }

  /**
   * The caller behind a live access token, by its id (`jti`): for credentials that stand in for
   * the token (an event stream ticket) and for re-checking a long-lived stream.
   */
  async principalOf(tokenId: string): Promise<Principal> {
    const rows: PrincipalRow[] = await this.dataSource.query(
      `SELECT t.revoked_on, t.expires_on, t.scope_id, t.user_id, t.api_key_id,
              COALESCE(u.role, k.role) AS role,
              CASE WHEN t.user_id IS NOT NULL THEN u.enabled
                   ELSE k.id IS NOT NULL AND ${apiKeyCreatorExists('k')} END AS active,
              a.path
         FROM access_token t
         JOIN account a ON a.id = t.scope_id
         LEFT JOIN app_user u ON u.id = t.user_id
         LEFT JOIN api_key k ON k.id = t.api_key_id
        WHERE t.id = $1`,
      [tokenId],
    );
    const row = rows[0];
    if (!row || row.revoked_on || !row.active || row.expires_on.getTime() <= Date.now()) {
      throw unauthorized('The access token has been revoked or is no longer valid');
    }
    const role = row.role as Role;
    if (!ROLES.includes(role)) throw unauthorized('The access token is invalid');
    return {
      tokenId,
      userId: row.user_id,
      apiKeyId: row.api_key_id,
      scopeId: row.scope_id,
      scopePath: row.path,
      role,
      permissions: ROLE_PERMISSIONS[role],
      expiresOn: row.expires_on,
    };
  }

  /**
   * Of the given access token ids, those still usable now (not revoked or expired, user enabled,
   * API key and its creator present) with the role each has now: one statement for many streams.
   */
  async liveTokens(tokenIds: readonly string[]): Promise<Map<string, Role>> {
    if (tokenIds.length === 0) return new Map();
    const rows: Array<{ id: string; role: string }> = await this.dataSource.query(
      `SELECT t.id, COALESCE(u.role, k.role) AS role
         FROM access_token t
         LEFT JOIN app_user u ON u.id = t.user_id
         LEFT JOIN api_key k ON k.id = t.api_key_id
        WHERE t.id = ANY($1::uuid[]) AND t.revoked_on IS NULL AND t.expires_on > now()
          AND CASE WHEN t.user_id IS NOT NULL THEN u.enabled
                   ELSE k.id IS NOT NULL AND ${apiKeyCreatorExists('k')} END`,
      [tokenIds],
    );
    return new Map(rows.map((r) => [r.id, r.role as Role]));
  }

  /** Rotates: the old access and refresh tokens are revoked, a new pair is issued. */
  async refresh(tokenId: string, refreshToken: string): Promise<IssuedToken> {
    const claims = await this.decode(tokenId, true);
    const failed = () =>
      new AppError('AUTH_FAILED', 'Authentication failed', 'Invalid or expired refresh token');
    return this.dataSource.transaction(async (em) => {
      const row = await em.getRepository(AccessToken).findOne({
        where: { id: claims.jti, revokedOn: IsNull() },
        lock: { mode: 'pessimistic_write' },
      });
      if (
        !row ||
        row.refreshExpiresOn.getTime() <= Date.now() ||
        !digestEquals(refreshToken, row.refreshDigest)
      ) {
        throw failed();
      }
      await em.getRepository(AccessToken).update({ id: row.id }, { revokedOn: new Date() });
      const subject = row.userId ? { userId: row.userId } : { apiKeyId: row.apiKeyId ?? '' };
      const scoped = new TokenService(this.jwt, this.dataSource, em.getRepository(AccessToken), this.config);
      return scoped.issue(subject, row.scopeId);
    });
  }

  async revoke(tokenId: string): Promise<void> {
    await this.tokens.update({ id: tokenId, revokedOn: IsNull() }, { revokedOn: new Date() });
  }

  /**
   * Deletes token rows nobody can use any more: past both their access and refresh expiry, or
   * revoked and past their access expiry (a missing row is refused like a revoked one).
   */
  async purgeExpired(batch = 5000): Promise<number> {
    let total = 0;
    for (;;) {
      const [, affected] = await this.dataSource.query<[unknown, number]>(
        `DELETE FROM access_token WHERE id IN (
           SELECT id FROM access_token
            WHERE GREATEST(expires_on, refresh_expires_on) < now()
               OR (revoked_on IS NOT NULL AND expires_on < now())
            LIMIT $1)`,
        [batch],
      );
      total += affected;
      if (affected < batch) return total;
    }
  }

  /** Revokes every live token of a user or API key (on delete, disable or password change). */
  async revokeAllOf(subject: { userId: string } | { apiKeyId: string }, em?: EntityManager): Promise<void> {
    const repo = em ? em.getRepository(AccessToken) : this.tokens;
    await repo.update({ ...subject, revokedOn: IsNull() }, { revokedOn: new Date() });
  }
}
