import { ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import { AppError } from '../common/app-error';
import type { AuthenticatedRequest } from './principal';

/**
 * The request rate limit of authenticated routes (RATE_LIMIT_PER_MINUTE, per minute): one
 * bucket per principal (the user, or the API key), across all its tokens and all routes, so a
 * client cannot multiply its allowance by signing in again. Runs after the AuthGuard (global
 * guards run in registration order), which sets the principal; routes without one (sign-in,
 * health, session pings with their own token) are not counted here (sign-in has LoginThrottle).
 * Counted per API instance, in memory: behind N instances the bound is N times looser.
 */
@Injectable()
export class PrincipalRateLimitGuard extends ThrottlerGuard {
  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    return Promise.resolve(!req.principal && !req.tokenCheck);
  }

  /**
   * The user or API key; on a route whose read checks the token row (PendingTokenCheck), the one
   * the token was signed for, the same bucket.
   */
  protected override getTracker(req: AuthenticatedRequest): Promise<string> {
    const who = req.principal ?? req.tokenCheck!.subject;
    return Promise.resolve(
      'userId' in who && who.userId
        ? `user:${who.userId}`
        : `apikey:${(who as { apiKeyId: string }).apiKeyId}`,
    );
  }

  protected override generateKey(_context: ExecutionContext, tracker: string, name: string): string {
    return `${name}:${tracker}`;
  }

  protected override throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const retryAfter = Math.max(1, detail.timeToBlockExpire);
    throw new AppError(
      'RATE_LIMITED',
      'Too many requests',
      `At most ${detail.limit} requests per minute per user or API key; retry in ${retryAfter} s`,
      { 'Retry-After': String(retryAfter) },
    );
  }
}
