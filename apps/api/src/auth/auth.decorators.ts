import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import type { AuthenticatedRequest, Principal, RequestScope } from './principal';
import type { Permission } from './roles';
import type { PendingTokenCheck } from './token-check';

/** Metadata key of the permission a route declares; the AuthGuard reads it. */
export const REQUIRED_PERMISSION = 'requiredPermission';

/** The "permission" of a route any authenticated caller may use (its own token: info, logout). */
export const ANY_AUTHENTICATED = '*';

/** The error statuses any route behind the bearer token can answer. */
export const AUTHENTICATED_ERRORS = [400, 401, 403, 429, 500, 503] as const;

/** Metadata key of routes whose own read statement checks the token row (PendingTokenCheck). */
export const TOKEN_CHECKED_IN_READ = 'tokenCheckedInRead';

export interface AuthenticatedOptions {
  /** What the caller's role must grant, or ANY_AUTHENTICATED for a route about the caller itself. */
  permission: Permission | typeof ANY_AUTHENTICATED;
  /**
   * The route's read statement also reads the token row, one round trip instead of two (for the
   * hottest reads): the guard checks only the JWT and hands the handler a PendingTokenCheck
   * (`@TokenCheck()`), which must be completed with that row before any data is used.
   */
  tokenCheckedInRead?: boolean;
}

/**
 * A route behind the bearer token. Declares the permission the AuthGuard checks (a non-public
 * route without one is refused with 403) and documents, once, what that means for a client: the
 * bearer security scheme and the errors any such route can answer — a malformed scope, query or
 * body (400), the token (401), the scope or role (403), the per-principal rate limit (429) and
 * the database (500, 503). A route's own errors (404, 409, …) stay in its ApiErrors.
 */
export function Authenticated({ permission, tokenCheckedInRead }: AuthenticatedOptions): MethodDecorator {
  return applyDecorators(
    SetMetadata(REQUIRED_PERMISSION, permission),
    ...(tokenCheckedInRead ? [SetMetadata(TOKEN_CHECKED_IN_READ, true)] : []),
    ApiBearerAuth('bearer'),
    ApiErrors(...AUTHENTICATED_ERRORS),
  );
}

/** The caller, as resolved by the guard. */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
  if (!req.principal) throw new Error('no principal on an authenticated route');
  return req.principal;
});

/** The resolved scope of a `/v1/{scopeId}/…` route (`_` already replaced, access already checked). */
export const CurrentScope = createParamDecorator((_: unknown, ctx: ExecutionContext): RequestScope => {
  const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
  if (!req.scope) throw new Error('no scope on a scoped route');
  return req.scope;
});

/** The token check a `tokenCheckedInRead` route completes with its own statement's token row. */
export const TokenCheck = createParamDecorator((_: unknown, ctx: ExecutionContext): PendingTokenCheck => {
  const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
  if (!req.tokenCheck) throw new Error('no pending token check: the route is not tokenCheckedInRead');
  return req.tokenCheck;
});
