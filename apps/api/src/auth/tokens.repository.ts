import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, In, IsNull, Repository, type EntityManager } from 'typeorm';
import { apiKeyCreatorExists } from '../apikeys/api-keys.repository';
import { preparedQuery } from '../database/prepared-query';
import { AccessToken } from './access-token.entity';
import type { Role } from './roles';

/** An access token with what its holder may do now: its user's or API key's role, its account's path. */
export interface TokenPrincipalRow {
  revokedOn: Date | null;
  expiresOn: Date;
  scopeId: string;
  userId: string | null;
  apiKeyId: string | null;
  /** The role of the user or API key now; null when neither exists any more. */
  role: string | null;
  /** The user is enabled, or the API key and its creator still exist. */
  active: boolean;
  scopePath: string;
}

/** The row of a token that may be rotated: the fields a refresh checks and re-issues from. */
export type RefreshableToken = Pick<
  AccessToken,
  'id' | 'userId' | 'apiKeyId' | 'scopeId' | 'refreshDigest' | 'refreshExpiresOn'
>;

export type TokenSubject = { userId: string } | { apiKeyId: string };

/**
 * The token lookup behind every bearer token, as SQL parts for statements that fold it into a
 * read (one round trip instead of two, see VpnStatusStore.viewWithToken): the columns, over
 * `access_token t` joined with its account `a`, user `u` and API key `k`. Every such statement
 * reads the token row as it is now: nothing is cached, a revocation counts on the next request.
 */
export const TOKEN_PRINCIPAL_COLUMNS = `t.revoked_on, t.expires_on, t.scope_id, t.user_id, t.api_key_id,
       COALESCE(u.role, k.role) AS role,
       CASE WHEN t.user_id IS NOT NULL THEN u.enabled
            ELSE k.id IS NOT NULL AND ${apiKeyCreatorExists('k')} END AS active,
       a.path`;
export const TOKEN_PRINCIPAL_FROM = `access_token t
  JOIN account a ON a.id = t.scope_id
  LEFT JOIN app_user u ON u.id = t.user_id
  LEFT JOIN api_key k ON k.id = t.api_key_id`;

/** A row of TOKEN_PRINCIPAL_COLUMNS as `pg` returns it. */
export interface TokenPrincipalSqlRow {
  revoked_on: Date | null;
  expires_on: Date;
  scope_id: string;
  user_id: string | null;
  api_key_id: string | null;
  role: string | null;
  active: boolean | null;
  path: string;
}

export function toTokenPrincipalRow(row: TokenPrincipalSqlRow): TokenPrincipalRow {
  return {
    revokedOn: row.revoked_on,
    expiresOn: row.expires_on,
    scopeId: row.scope_id,
    userId: row.user_id,
    apiKeyId: row.api_key_id,
    role: row.role,
    active: row.active === true,
    scopePath: row.path,
  };
}

/**
 * Every SQL statement about access tokens. The lookup behind a bearer token runs on every
 * request, so it stays one raw statement that joins the token, its account and its user or API
 * key; methods that take an EntityManager run inside the caller's transaction.
 */
@Injectable()
export class TokensRepository {
  constructor(
    private readonly dataSource: DataSource,
    @InjectRepository(AccessToken) private readonly tokens: Repository<AccessToken>,
  ) {}

  private repo(em?: EntityManager): Repository<AccessToken> {
    return em ? em.getRepository(AccessToken) : this.tokens;
  }

  async insert(row: Omit<AccessToken, 'createdOn'>, em?: EntityManager): Promise<void> {
    await this.repo(em).insert(row);
  }

  /** The token `tokenId` with its holder's current role and its account's path; null when unknown. */
  async findPrincipal(tokenId: string): Promise<TokenPrincipalRow | null> {
    // On every authenticated request: a prepared statement (parsed and planned once per connection).
    const rows = await preparedQuery<TokenPrincipalSqlRow>(
      this.dataSource,
      'token_principal',
      `SELECT ${TOKEN_PRINCIPAL_COLUMNS} FROM ${TOKEN_PRINCIPAL_FROM} WHERE t.id = $1`,
      [tokenId],
    );
    return rows[0] ? toTokenPrincipalRow(rows[0]) : null;
  }

  /**
   * Of the given token ids, those still usable now (not revoked or expired, user enabled, API
   * key and its creator present), with the role each has now.
   */
  async liveRoles(tokenIds: readonly string[]): Promise<Map<string, Role>> {
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

  /** The unrevoked token `tokenId`, locked until the transaction ends (one rotation wins). */
  async lockUnrevoked(em: EntityManager, tokenId: string): Promise<RefreshableToken | null> {
    return em.getRepository(AccessToken).findOne({
      where: { id: tokenId, revokedOn: IsNull() },
      lock: { mode: 'pessimistic_write' },
    });
  }

  /** Marks one token revoked (a no-op when it already is). */
  async revoke(tokenId: string, em?: EntityManager): Promise<void> {
    await this.repo(em).update({ id: tokenId, revokedOn: IsNull() }, { revokedOn: new Date() });
  }

  /** Revokes every live token of a user or API key (on delete, disable or password change). */
  async revokeAllOf(subject: TokenSubject, em?: EntityManager): Promise<void> {
    await this.repo(em).update({ ...subject, revokedOn: IsNull() }, { revokedOn: new Date() });
  }

  /** Revokes every live token of these API keys (the keys deleted with their creator). */
  async revokeAllOfApiKeys(apiKeyIds: readonly string[], em?: EntityManager): Promise<void> {
    if (apiKeyIds.length === 0) return;
    await this.repo(em).update(
      { apiKeyId: In([...apiKeyIds]), revokedOn: IsNull() },
      { revokedOn: new Date() },
    );
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
}
