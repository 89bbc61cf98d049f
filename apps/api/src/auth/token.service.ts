import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { randomUUID } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { digest, digestEquals, generateSecret } from '../common/secrets';
import type { Principal } from './principal';
import { ROLE_PERMISSIONS, ROLES, type Role } from './roles';
import { TokensRepository, type TokenPrincipalRow, type TokenSubject } from './tokens.repository';

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
  exp?: number;
}

interface VerifiedToken {
  tokenId: string;
  subject: TokenSubject;
  /** The JWT's `exp`, in seconds. */
  expiresAt: number;
}

/** How many verified JWTs `verify` remembers (about 1 MiB of tokens). */
const VERIFIED_TOKENS_KEPT = 4096;

const unauthorized = (details: string) => new AppError('UNAUTHORIZED', 'Authentication required', details);

/**
 * Issues, checks, rotates and revokes access tokens. The JWT is HS256-signed and
 * its `jti` must name a live row in `access_token`, so a logout is refused at
 * once by every instance.
 */
@Injectable()
export class TokenService {
  /** Tokens whose signature was verified, by the token string (see `verify`). */
  private readonly verified = new Map<string, VerifiedToken>();

  constructor(
    private readonly jwt: JwtService,
    private readonly dataSource: DataSource,
    private readonly tokens: TokensRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Issues a token pair; with `em`, its row is written in that transaction. */
  async issue(subject: TokenSubject, scopeId: string, em?: EntityManager): Promise<IssuedToken> {
    const jti = randomUUID();
    const now = Date.now();
    const expiresOn = new Date(now + this.config.accessTokenTtlSeconds * 1000);
    const refreshExpiresOn = new Date(now + this.config.refreshTokenTtlSeconds * 1000);
    const refreshToken = generateSecret();
    const userId = 'userId' in subject ? subject.userId : null;
    const apiKeyId = 'apiKeyId' in subject ? subject.apiKeyId : null;
    await this.tokens.insert(
      {
        id: jti,
        userId,
        apiKeyId,
        scopeId,
        expiresOn,
        refreshDigest: digest(refreshToken),
        refreshExpiresOn,
        revokedOn: null,
      },
      em,
    );
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
    const { tokenId } = await this.verify(token);
    return this.principalOf(tokenId);
  }

  /**
   * Checks a bearer token's signature and expiry (no database): its id (`jti`) and whom it was
   * issued to. Whether it is still live is the token row's to say (principalOf / principalFromRow).
   * A token whose signature was verified is remembered with its claims, so the next request with
   * the same token only checks the expiry: a signature cannot stop being valid, and revocation is
   * not decided here but by the token row, read on every request.
   */
  async verify(token: string): Promise<{ tokenId: string; subject: TokenSubject }> {
    const known = this.verified.get(token);
    if (known) {
      if (Math.floor(Date.now() / 1000) < known.expiresAt)
        return { tokenId: known.tokenId, subject: known.subject };
      this.verified.delete(token);
      throw unauthorized('The access token has expired');
    }
    const claims = await this.decode(token, false);
    if (!/^[0-9a-f-]{36}$/i.test(claims.jti)) throw unauthorized('The access token is invalid');
    const subject = claims.typ === 'apikey' ? { apiKeyId: claims.sub } : { userId: claims.sub };
    const result = { tokenId: claims.jti, subject };
    if (typeof claims.exp === 'number') {
      if (this.verified.size >= VERIFIED_TOKENS_KEPT) {
        // Forget the oldest (a Map iterates in insertion order).
        this.verified.delete(this.verified.keys().next().value as string);
      }
      this.verified.set(token, { ...result, expiresAt: claims.exp });
    }
    return result;
  }

  /**
   * The caller behind a live access token, by its id (`jti`): for credentials that stand in for
   * the token (an event stream ticket) and for re-checking a long-lived stream.
   */
  async principalOf(tokenId: string): Promise<Principal> {
    return this.principalFromRow(tokenId, await this.tokens.findPrincipal(tokenId));
  }

  /**
   * The caller behind token `tokenId`, from its row as read now (null: no such token); refuses a
   * revoked or expired token, a disabled user, a deleted API key and an unknown role.
   */
  principalFromRow(tokenId: string, row: TokenPrincipalRow | null): Principal {
    if (!row || row.revokedOn || !row.active || row.expiresOn.getTime() <= Date.now()) {
      throw unauthorized('The access token has been revoked or is no longer valid');
    }
    const role = row.role as Role;
    if (!ROLES.includes(role)) throw unauthorized('The access token is invalid');
    return {
      tokenId,
      userId: row.userId,
      apiKeyId: row.apiKeyId,
      scopeId: row.scopeId,
      scopePath: row.scopePath,
      role,
      permissions: ROLE_PERMISSIONS[role],
      expiresOn: row.expiresOn,
    };
  }

  /**
   * Of the given access token ids, those still usable now (not revoked or expired, user enabled,
   * API key and its creator present) with the role each has now: one statement for many streams.
   */
  liveTokens(tokenIds: readonly string[]): Promise<Map<string, Role>> {
    return this.tokens.liveRoles(tokenIds);
  }

  /** Rotates: the old access and refresh tokens are revoked, a new pair is issued. */
  async refresh(tokenId: string, refreshToken: string): Promise<IssuedToken> {
    const claims = await this.decode(tokenId, true);
    const failed = () =>
      new AppError('AUTH_FAILED', 'Authentication failed', 'Invalid or expired refresh token');
    return this.dataSource.transaction(async (em) => {
      const row = await this.tokens.lockUnrevoked(em, claims.jti);
      if (
        !row ||
        row.refreshExpiresOn.getTime() <= Date.now() ||
        !digestEquals(refreshToken, row.refreshDigest)
      ) {
        throw failed();
      }
      await this.tokens.revoke(row.id, em);
      const subject = row.userId ? { userId: row.userId } : { apiKeyId: row.apiKeyId ?? '' };
      return this.issue(subject, row.scopeId, em);
    });
  }

  revoke(tokenId: string): Promise<void> {
    return this.tokens.revoke(tokenId);
  }
}
