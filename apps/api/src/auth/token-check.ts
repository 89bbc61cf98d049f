import type { Principal, RequestScope } from './principal';
import type { TokenPrincipalRow, TokenSubject } from './tokens.repository';
import { UUID_PATTERN } from '../common/uuid.pipe';

/**
 * The token check of a route whose own read statement looks the token up (`@Authenticated({ …,
 * tokenCheckedInRead: true })`): one round trip for the token and the data instead of two. The
 * guard has checked the header and the JWT's signature and expiry; the token row — revoked, user
 * disabled, API key gone, role changed — is read by the route's statement, as it is at that
 * moment, and `complete` applies exactly the guard's checks to it, in the guard's order (401, then
 * the scope: 400/403, then the permission: 403). The route uses its data only after `complete`
 * returned.
 */
export class PendingTokenCheck {
  constructor(
    readonly tokenId: string,
    /** Whom the token was issued to (signed): the rate limit's bucket before the row is read. */
    readonly subject: TokenSubject,
    /** The raw `{scopeId}` of the path. */
    private readonly scopeParam: string,
    private readonly finish: (
      row: TokenPrincipalRow | null,
      requestedScopePath: string | null,
    ) => Promise<{ principal: Principal; scope: RequestScope }>,
  ) {}

  /**
   * The account the read should look in when the caller names one: null for `_` (the token's own
   * account, which the statement takes from the token row) and for a malformed id (refused by
   * `complete`, whatever the statement found).
   */
  get requestedScopeId(): string | null {
    return this.scopeParam !== '_' && UUID_PATTERN.test(this.scopeParam)
      ? this.scopeParam.toLowerCase()
      : null;
  }

  /**
   * Authenticates and authorises from the token row the statement read (null: no such token) and
   * the path of the account it looked in (`requestedScopeId`, or the token's own); throws the
   * guard's errors. Returns the caller and the resolved scope.
   */
  complete(
    row: TokenPrincipalRow | null,
    requestedScopePath: string | null,
  ): Promise<{ principal: Principal; scope: RequestScope }> {
    return this.finish(row, requestedScopePath);
  }
}
