import { Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { AppError } from '../common/app-error';
import type { Principal } from '../auth/principal';
import { TokenService } from '../auth/token.service';
import { digest, generateSecret } from '../common/secrets';
import { DevicesRepository, type DeviceState } from '../devices/devices.repository';
import { EventFeedRepository } from './event-feed.repository';
import { EventStreamTicketsRepository } from './event-stream-tickets.repository';
import { EventStreamHub, StreamClient } from './event-stream.hub';

/** Tickets are good for this long, once. */
export const TICKET_TTL_MS = 60_000;
/** Browsers wait this long before reconnecting a dropped EventSource. */
const RETRY_MS = 2000;
const EVENT_ID = /^\d{1,19}$/;
const MAX_EVENT_ID = 2n ** 63n - 1n;

/**
 * Opens fleet event streams (docs/events.md): works out where a stream starts (now, after a
 * Last-Event-ID, or a reset with the full state when that id can no longer be continued without
 * a gap), writes the SSE preamble and hands the stream to the hub. Also issues and redeems the
 * single-use tickets browsers use instead of an Authorization header.
 */
@Injectable()
export class EventStreamService {
  constructor(
    private readonly feed: EventFeedRepository,
    private readonly hub: EventStreamHub,
    private readonly tokens: TokenService,
    private readonly tickets: EventStreamTicketsRepository,
    private readonly devices: DevicesRepository,
  ) {}

  /** Checks a resume point; throws 400 before anything is written. */
  parseLastEventId(raw: string | undefined): bigint | null {
    if (raw === undefined) return null;
    const value = raw.trim();
    if (!EVENT_ID.test(value) || BigInt(value) > MAX_EVENT_ID) {
      throw AppError.invalid('Invalid Last-Event-ID', 'Last-Event-ID must be an event id: a decimal number');
    }
    return BigInt(value);
  }

  async open(
    res: Response,
    principal: Principal,
    scope: { id: string; path: string },
    lastEventId: bigint | null,
  ): Promise<void> {
    let start: bigint;
    let reset: { reason: 'pruned' | 'unknown'; devices: DeviceState[] } | null = null;
    if (lastEventId === null) {
      start = await this.hub.now();
    } else {
      const status = await this.feed.cursorStatus(lastEventId.toString());
      if (status === 'ok') start = lastEventId;
      else {
        // Read the position first: the state is at least as new as it, so nothing falls between.
        start = await this.hub.now();
        reset = { reason: status, devices: await this.devices.statesInSubtree(scope.path) };
      }
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    // nginx and similar proxies would otherwise buffer the stream.
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    res.socket?.setTimeout(0);
    const client = new StreamClient(res, scope.path, principal.tokenId, start, (c) => this.hub.remove(c));
    client.write(`retry: ${RETRY_MS}\n: stream open\n\n`);
    if (reset) {
      client.write(
        `id: ${start}\nevent: reset\ndata: ${JSON.stringify({ ...reset, position: start.toString() })}\n\n`,
      );
    }
    client.expireAt(principal.expiresOn);
    await this.hub.attach(client);
  }

  async issueTicket(principal: Principal, scopeId: string): Promise<{ ticket: string; expiresOn: Date }> {
    const ticket = `evt_${generateSecret()}`;
    const expiresOn = new Date(Date.now() + TICKET_TTL_MS);
    await this.tickets.insert({ digest: digest(ticket), tokenId: principal.tokenId, scopeId, expiresOn });
    return { ticket, expiresOn };
  }

  /**
   * Uses up a ticket: the caller is the access token it was issued with, as that token stands now
   * (revoked or expired: refused), in the scope it was issued for (`_` or that scope's id).
   */
  async redeemTicket(
    ticket: string,
    rawScope: string,
  ): Promise<{ principal: Principal; scope: { id: string; path: string } }> {
    const refused = (details: string) => new AppError('UNAUTHORIZED', 'Authentication required', details);
    const row = await this.tickets.redeem(digest(ticket));
    if (!row || !row.fresh || row.scopePath === null) {
      throw refused('The ticket is unknown, used or expired; get a new one from POST …/vpn/events/_ticket');
    }
    if (rawScope !== '_' && rawScope.toLowerCase() !== row.scopeId) {
      throw refused('The ticket was issued for another scope');
    }
    const principal = await this.tokens.principalOf(row.tokenId);
    if (!principal.permissions.has('vpn:read') || !row.scopePath.startsWith(principal.scopePath)) {
      throw AppError.forbidden('The ticket does not grant vpn:read in this scope');
    }
    return { principal, scope: { id: row.scopeId, path: row.scopePath } };
  }
}
