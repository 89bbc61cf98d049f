import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiParam } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import type { AuthenticatedRequest, Principal, RequestScope } from './principal';
import type { Permission } from './roles';
import type { PendingTokenCheck } from './token-check';

/** Metadata key of the permission a route declares; the AuthGuard reads it. */
export const REQUIRED_PERMISSION = 'requiredPermission';

/** The "permission" of a route any authenticated caller may use (its own token: info, logout). */
export const ANY_AUTHENTICATED = '*';

/**
 * The error statuses any route behind the bearer token can answer: the token (401), the
 * per-principal rate limit (429, PrincipalRateLimitGuard) and the database (500, 503).
 */
export const AUTHENTICATED_ERRORS = [401, 429, 500, 503] as const;

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
 * bearer security scheme and the errors such a route can answer — AUTHENTICATED_ERRORS, and 403
 * when a role can lack the permission. ANY_AUTHENTICATED routes are about the caller itself and
 * take no `{scopeId}` (a test holds every scoped route to documenting 403), so they never answer
 * 403. A malformed request (400) and a too large body (413) follow from the operation's
 * parameters and body: the OpenAPI document adds them (openapi.ts). A route's own errors (404,
 * 409, …) stay in its ApiErrors.
 */
export function Authenticated({ permission, tokenCheckedInRead }: AuthenticatedOptions): MethodDecorator {
  const errors: number[] = [...AUTHENTICATED_ERRORS];
  if (permission !== ANY_AUTHENTICATED) errors.push(403);
  return applyDecorators(
    SetMetadata(REQUIRED_PERMISSION, permission),
    ...(tokenCheckedInRead ? [SetMetadata(TOKEN_CHECKED_IN_READ, true)] : []),
    ApiBearerAuth('bearer'),
    ApiErrors(...errors.sort()),
  );
}

/** The `_` or UUID a `{scopeId}` path parameter accepts (the AuthGuard checks it; 400 otherwise). */
export const SCOPE_ID_PATTERN =
  '^(_|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$';

/**
 * Documents the `{scopeId}` of a controller's routes: a string, `_` (the caller's own account) or
 * an account id, so generated clients type it as a string.
 */
export const ApiScopeParam = (): ClassDecorator & MethodDecorator =>
  ApiParam({
    name: 'scopeId',
    description: "Account id, or _ for the caller's own account",
    schema: { type: 'string', pattern: SCOPE_ID_PATTERN, example: '_' },
  });

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
