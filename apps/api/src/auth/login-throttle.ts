import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';

const WINDOW_MS = 5 * 60 * 1000;
const MAX_FAILURES = 10;
const MAX_SOURCES = 100_000;

/**
 * Throttles repeated authentication failures from one source (client address).
 * Kept in memory per instance: a bound on guessing, not an accounting system;
 * with N instances behind a balancer the bound is N times looser (see docs/decisions.md).
 */
@Injectable()
export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; since: number }>();

  check(source: string): void {
    const entry = this.failures.get(source);
    if (!entry) return;
    const age = Date.now() - entry.since;
    if (age > WINDOW_MS) {
      this.failures.delete(source);
      return;
    }
    if (entry.count >= MAX_FAILURES) {
      const retryAfter = Math.ceil((WINDOW_MS - age) / 1000);
      throw new AppError('RATE_LIMITED', 'Too many failed attempts', `Try again in ${retryAfter} s`, {
        'Retry-After': String(retryAfter),
      });
    }
  }

  fail(source: string): void {
    const now = Date.now();
    const entry = this.failures.get(source);
    if (!entry || now - entry.since > WINDOW_MS) {
      if (this.failures.size >= MAX_SOURCES)
        this.failures.delete(this.failures.keys().next().value as string);
      this.failures.set(source, { count: 1, since: now });
    } else entry.count++;
  }

  succeed(source: string): void {
    this.failures.delete(source);
  }
}
