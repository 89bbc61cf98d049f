import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AccountsRepository } from '../accounts/accounts.repository';
import { AppError } from '../common/app-error';
import { IS_PUBLIC } from '../common/public.decorator';
import { UUID_PATTERN } from '../common/uuid.pipe';
import { ANY_AUTHENTICATED, REQUIRED_PERMISSION, TOKEN_CHECKED_IN_READ } from './auth.decorators';
import { PendingTokenCheck } from './token-check';
import type { AuthenticatedRequest, Principal, RequestScope } from './principal';
import type { Permission } from './roles';
import { TokenService } from './token.service';

/**
 * The global guard: authenticates the bearer token, resolves `{scopeId}`
 * (`_` = the caller's account) and checks it lies in the caller's subtree, then
 * checks the route's declared permission. A scope outside the subtree is 403
 * whether it exists or not, so existence is never revealed.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokenService,
    private readonly accounts: AccountsRepository,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;
    const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
    const permission = this.reflector.getAllAndOverride<Permission | typeof ANY_AUTHENTICATED | undefined>(
      REQUIRED_PERMISSION,
      targets,
    );
    if (this.reflector.getAllAndOverride<boolean>(TOKEN_CHECKED_IN_READ, targets)) {
      await this.defer(req, permission);
    } else {
      await this.check(req, permission);
    }
    return true;
  }

  /**
   * For a route whose read statement reads the token row itself: checks the header and the JWT
   * here (no database) and leaves the rest — the row, the scope, the permission, in the order
   * `check` applies them — to a PendingTokenCheck the route completes with that row.
   */
  private async defer(
    req: AuthenticatedRequest,
    permission: Permission | typeof ANY_AUTHENTICATED | undefined,
  ): Promise<void> {
    const scopeParam = req.params?.scopeId;
    if (typeof scopeParam !== 'string') throw new Error('tokenCheckedInRead needs a {scopeId} route');
    const { tokenId, subject } = await this.tokens.verify(this.bearer(req));
    req.tokenCheck = new PendingTokenCheck(tokenId, subject, scopeParam, async (row, requestedScopePath) => {
      const principal = this.tokens.principalFromRow(tokenId, row);
      req.principal = principal;
      await this.authorize(req, principal, permission, () => requestedScopePath);
      return { principal, scope: req.scope! };
    });
  }

  /**
   * Authenticates the request's bearer token, resolves its `{scopeId}` and checks `permission`,
   * setting req.principal and req.scope. Also for public routes that accept a bearer token as one
   * of their ways to authenticate (e.g. a session ping).
   */
  async check(
    req: AuthenticatedRequest,
    permission: Permission | typeof ANY_AUTHENTICATED | undefined,
  ): Promise<void> {
    const principal = await this.tokens.authenticate(this.bearer(req));
    req.principal = principal;
    await this.authorize(req, principal, permission, (id) => this.accounts.pathOf(id));
  }

  private bearer(req: AuthenticatedRequest): string {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header) : null;
    if (!match) {
      throw new AppError(
        'UNAUTHORIZED',
        'Authentication required',
        'Send an Authorization: Bearer <token> header',
      );
    }
    return match[1];
  }

  /** After authentication: resolves `{scopeId}` (setting req.scope), then checks `permission`. */
  private async authorize(
    req: AuthenticatedRequest,
    principal: Principal,
    permission: Permission | typeof ANY_AUTHENTICATED | undefined,
    accountPath: (id: string) => Promise<string | null> | string | null,
  ): Promise<void> {
    const scopeParam = req.params?.scopeId;
    if (typeof scopeParam === 'string') {
      req.scope = await this.resolveScope(principal, scopeParam, accountPath);
      // Anything that reads the raw parameter sees the canonical id too.
      if (scopeParam !== '_') req.params.scopeId = req.scope.id;
    }
    if (!permission) throw AppError.forbidden('This route declares no permission');
    if (permission === ANY_AUTHENTICATED) return;
    if (!principal.permissions.has(permission)) {
      throw AppError.forbidden(`The ${principal.role} role lacks the ${permission} permission`);
    }
  }

  /**
   * The scope id is normalised here, where it enters: lower case (the canonical spelling of a
   * UUID, as Postgres prints it), so `{SCOPE-IN-UPPERCASE}` is the caller's own account to every
   * comparison that follows, not some other id.
   */
  private async resolveScope(
    principal: Principal,
    raw: string,
    accountPath: (id: string) => Promise<string | null> | string | null,
  ): Promise<RequestScope> {
    if (raw === '_') return { id: principal.scopeId, path: principal.scopePath };
    if (!UUID_PATTERN.test(raw)) throw AppError.invalid('Invalid scopeId', 'scopeId must be a UUID or _');
    const id = raw.toLowerCase();
    if (id === principal.scopeId) return { id: principal.scopeId, path: principal.scopePath };
    const path = await accountPath(id);
    if (!path || !path.startsWith(principal.scopePath)) {
      throw AppError.forbidden("The scope is outside the caller's accounts");
    }
    return { id, path };
  }
}
