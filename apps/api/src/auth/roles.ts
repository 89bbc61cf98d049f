/**
 * Roles and the permission strings each grants. Every route declares the one
 * permission it needs (@Authenticated({ permission })); the guard refuses routes that declare none.
 */
export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  'account:read',
  'account:write',
  'user:read',
  'user:write',
  'apikey:read',
  'apikey:write',
  'device:read',
  'device:write',
  'vpn:read',
  'vpn:connect',
  'vpn:session',
  'gateway:read',
  'gateway:write',
  'webhook:read',
  'webhook:write',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const READ_ALL: Permission[] = PERMISSIONS.filter((p) => p.endsWith(':read'));

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  admin: new Set(PERMISSIONS),
  operator: new Set([...READ_ALL, 'device:write', 'vpn:connect', 'vpn:session']),
  viewer: new Set(READ_ALL),
};

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** True when `role` grants nothing beyond `limit` (an API key never exceeds its creator). */
export function roleWithin(role: Role, limit: Role): boolean {
  return RANK[role] <= RANK[limit];
}
