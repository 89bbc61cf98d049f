import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { LoginFailuresRepository } from './login-failures.repository';

/** What one sign-in attempt is counted against: its client address and, for passwords, its username. */
export interface ThrottleSubject {
  address: string;
  username?: string;
}

interface Counter {
  key: Buffer;
  limit: number;
  isUser: boolean;
}

/** The counters of one attempt, as read by check(); hand it to fail() or succeed(). */
export interface ThrottleTicket {
  counters: Counter[];
  /** The username's counter has failures in the current window (a success must clear it). */
  userCounted: boolean;
}

/**
 * Client addresses as counted: IPv4-mapped IPv6 as IPv4, other IPv6 addresses by their /64
 * (one host usually holds a whole /64, so counting single addresses would count nothing).
 */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

const digestOf = (kind: string, name: string): Buffer =>
  createHash('sha256').update(`${kind}\u0000${name}`, 'utf8').digest();

/**
 * Throttles failed sign-ins (passwords, API keys, refresh tokens; REST and FendVPN alike, since
 * both go through AuthService). Failures are counted per username and per client address,
 * separately, each in a fixed window that starts at its first failure: a username at its bound
 * is refused from every address (guessing one account), an address at its bound is refused for
 * every username (spraying many). A success clears its own username's counter only, never the
 * address's, so signing in with one's own account does not reset a guessing run.
 *
 * The counters live in Postgres (LoginFailuresRepository), so every API instance sees the same
 * numbers: one read per attempt, one upsert per failure, one delete per success that follows
 * failures. Concurrent attempts read before any of them fails, so a burst can overshoot a bound
 * by the number of attempts in flight at once (password hashing admits two at a time per instance).
 */
@Injectable()
export class LoginThrottle {
  constructor(
    private readonly failures: LoginFailuresRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Refuses (429 with Retry-After) when a counter of this attempt is at its bound. */
  async check(subject: ThrottleSubject): Promise<ThrottleTicket> {
    const counters: Counter[] = [
      {
        key: digestOf('address', normalizeAddress(subject.address)),
        limit: this.config.loginMaxFailuresPerAddress,
        isUser: false,
      },
    ];
    if (subject.username !== undefined) {
      counters.push({
        key: digestOf('user', subject.username),
        limit: this.config.loginMaxFailuresPerUser,
        isUser: true,
      });
    }
    const rows = await this.failures.current(
      counters.map((c) => c.key),
      this.config.loginWindowSeconds,
    );
    let retryAfter = 0;
    let userCounted = false;
    for (const row of rows) {
      const counter = counters.find((c) => c.key.equals(row.key));
      if (!counter) continue;
      if (counter.isUser) userCounted = true;
      if (row.failures >= counter.limit)
        retryAfter = Math.max(retryAfter, Math.ceil(row.remainingSeconds), 1);
    }
    if (retryAfter > 0) {
      throw new AppError('RATE_LIMITED', 'Too many failed attempts', `Try again in ${retryAfter} s`, {
        'Retry-After': String(retryAfter),
      });
    }
    return { counters, userCounted };
  }

  /** Counts a failure against every counter of the attempt (one statement). */
  async fail(ticket: ThrottleTicket): Promise<void> {
    await this.failures.increment(
      ticket.counters.map((c) => c.key),
      this.config.loginWindowSeconds,
    );
  }

  /** A success clears the username's counter (if it had one); the address's stays. */
  async succeed(ticket: ThrottleTicket): Promise<void> {
    const user = ticket.counters.find((c) => c.isUser);
    if (!user || !ticket.userCounted) return;
    await this.failures.clear(user.key);
  }

  /** Deletes counters whose window is over (the periodic purge). */
  async purge(): Promise<number> {
    return this.failures.purgeExpired(this.config.loginWindowSeconds);
  }
}
