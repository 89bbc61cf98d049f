import type { ExecutionContext } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import { AppError } from '../common/app-error';
import { AuthGuard } from './auth.guard';
import { REQUIRED_PERMISSION, TOKEN_CHECKED_IN_READ } from './auth.decorators';
import type { AuthenticatedRequest } from './principal';
import { TokenService } from './token.service';
import type { TokenPrincipalRow } from './tokens.repository';
import type { AccountsRepository } from '../accounts/accounts.repository';

const OWN = '11111111-1111-4111-8111-111111111111';
const CHILD = '22222222-2222-4222-8222-222222222222';
const TOKEN = '33333333-3333-4333-8333-333333333333';

const row = (over: Partial<TokenPrincipalRow> = {}): TokenPrincipalRow => ({
  revokedOn: null,
  expiresOn: new Date(Date.now() + 60_000),
  scopeId: OWN,
  userId: 'u1',
  apiKeyId: null,
  role: 'viewer',
  active: true,
  scopePath: `/${OWN}/`,
  ...over,
});

/** The guard on a tokenCheckedInRead route declaring `permission`; the JWT always verifies. */
function setUp(permission: string, scopeId: string) {
  const tokens = Object.create(TokenService.prototype) as TokenService;
  tokens.verify = jest.fn().mockResolvedValue({ tokenId: TOKEN, subject: { userId: 'u1' } });
  const accounts = { pathOf: jest.fn() } as unknown as AccountsRepository;
  const meta: Record<string, unknown> = { [REQUIRED_PERMISSION]: permission, [TOKEN_CHECKED_IN_READ]: true };
  const reflector = { getAllAndOverride: (key: string) => meta[key] } as unknown as Reflector;
  const guard = new AuthGuard(reflector, tokens, accounts);
  const req = {
    headers: { authorization: 'Bearer a.b.c' },
    params: { scopeId },
  } as unknown as AuthenticatedRequest;
  const ctx = {
    getHandler: () => undefined,
    getClass: () => undefined,
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
  return { guard, req, ctx, accounts };
}

const refusal = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return (err as AppError).code;
};

describe('AuthGuard with the token checked in the read', () => {
  it('should read no token row itself and leave a pending check with the requested scope', async () => {
    const { guard, req, ctx, accounts } = setUp('vpn:read', CHILD.toUpperCase());
    await expect(guard.canActivate(ctx)).resolves.toBe(true);
    expect(req.principal).toBeUndefined();
    expect(req.tokenCheck?.tokenId).toBe(TOKEN);
    expect(req.tokenCheck?.requestedScopeId).toBe(CHILD);
    expect(accounts.pathOf).not.toHaveBeenCalled();
  });

  it('should refuse a missing, revoked, inactive or expired token row with 401', async () => {
    for (const r of [
      null,
      row({ revokedOn: new Date() }),
      row({ active: false }),
      row({ expiresOn: new Date(Date.now() - 1) }),
      row({ role: null }),
    ]) {
      const { guard, req, ctx } = setUp('vpn:read', '_');
      await guard.canActivate(ctx);
      expect(await refusal(req.tokenCheck!.complete(r, `/${OWN}/`))).toBe('UNAUTHORIZED');
    }
  });

  it('should refuse a scope outside the caller (or unknown) with 403 and a malformed one with 400', async () => {
    const outside = setUp('vpn:read', CHILD);
    await outside.guard.canActivate(outside.ctx);
    expect(await refusal(outside.req.tokenCheck!.complete(row(), `/${CHILD}/`))).toBe('FORBIDDEN');
    const unknown = setUp('vpn:read', CHILD);
    await unknown.guard.canActivate(unknown.ctx);
    expect(await refusal(unknown.req.tokenCheck!.complete(row(), null))).toBe('FORBIDDEN');
    const malformed = setUp('vpn:read', 'nope');
    await malformed.guard.canActivate(malformed.ctx);
    expect(malformed.req.tokenCheck!.requestedScopeId).toBeNull();
    expect(await refusal(malformed.req.tokenCheck!.complete(row(), `/${OWN}/`))).toBe('INVALID_ARGUMENT');
  });

  it('should refuse a role without the permission with 403, the role being the one the row has now', async () => {
    const { guard, req, ctx } = setUp('vpn:connect', '_');
    await guard.canActivate(ctx);
    expect(await refusal(req.tokenCheck!.complete(row({ role: 'viewer' }), `/${OWN}/`))).toBe('FORBIDDEN');
    const again = setUp('vpn:connect', '_');
    await again.guard.canActivate(again.ctx);
    await expect(
      again.req.tokenCheck!.complete(row({ role: 'operator' }), `/${OWN}/`),
    ).resolves.toBeDefined();
  });

  it('should resolve a child scope in the caller’s subtree and set the principal and scope', async () => {
    const { guard, req, ctx } = setUp('vpn:read', CHILD);
    await guard.canActivate(ctx);
    const { principal, scope } = await req.tokenCheck!.complete(row(), `/${OWN}/${CHILD}/`);
    expect(principal.role).toBe('viewer');
    expect(scope).toEqual({ id: CHILD, path: `/${OWN}/${CHILD}/` });
    expect(req.principal).toBe(principal);
    expect(req.scope).toBe(scope);
  });
});
