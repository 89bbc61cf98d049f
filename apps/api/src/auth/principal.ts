import type { Request } from 'express';
import type { Permission, Role } from './roles';
import type { PendingTokenCheck } from './token-check';

/** Who is calling, resolved once per request by the auth guard. */
export interface Principal {
  tokenId: string;
  userId: string | null;
  apiKeyId: string | null;
  scopeId: string;
  /** Materialised path of the caller's account (`/root/…/self/`). */
  scopePath: string;
  role: Role;
  permissions: ReadonlySet<Permission>;
  /** When the access token expires (long-lived responses such as event streams end then). */
  expiresOn?: Date;
}

/** Who to record in createdBy/modifiedBy: the user, or the API key acting on its own. */
export function actorId(principal: Principal): string | null {
  return principal.userId ?? principal.apiKeyId;
}

/**
 * An admin (user or API key) of the root account: the operator of the service. Only they choose
 * VPN subnets by hand, and only their accounts may use the reserved end of the address space.
 */
export function isRootAdmin(principal: Principal): boolean {
  return principal.role === 'admin' && principal.scopePath === `/${principal.scopeId}/`;
}

/** The scope a request acts in: `{scopeId}` of the route, `_` resolved, checked against the caller's subtree. */
export interface RequestScope {
  id: string;
  path: string;
}

export interface AuthenticatedRequest extends Request {
  principal?: Principal;
  scope?: RequestScope;
  /** On a route whose read checks the token (see PendingTokenCheck), until it has done so. */
  tokenCheck?: PendingTokenCheck;
}
