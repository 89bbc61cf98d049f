import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { AuthenticatedRequest, Principal, RequestScope } from './principal';
import type { Permission } from './roles';

export const REQUIRED_PERMISSION = 'requiredPermission';

/** The permission a route needs. A non-public route without one is refused by the guard. */
export const RequirePermission = (permission: Permission): MethodDecorator =>
  SetMetadata(REQUIRED_PERMISSION, permission);

export const ANY_AUTHENTICATED = '*';

/** A route any authenticated caller may use (its own token: info, logout). */
export const RequireAuthentication = (): MethodDecorator =>
  SetMetadata(REQUIRED_PERMISSION, ANY_AUTHENTICATED);

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
