import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { TokenService } from '../auth/token.service';
import { ROLE_PERMISSIONS } from '../auth/roles';
import { ConnectionEvents } from '../mqtt/connection-events';
import { EventFeedRepository } from './event-feed.repository';
import { EventStreamTicketsRepository } from './event-stream-tickets.repository';
import type { FleetEvent } from './fleet-event';

/** Why the server ended a stream; sent as the data of a last `event: close`. */
export type CloseReason = 'token-revoked' | 'token-expired' | 'shutdown' | 'slow-consumer';

/** A client whose unsent output passes this is cut off (it resumes with Last-Event-ID). */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const PAGE = 1000;
const CATCH_UP_PAGE = 500;

/** One event as an SSE frame. JSON has no raw newlines, so one `data:` line is enough. */
export const sseFrame = (event: FleetEvent): string =>
  `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;

/** One open stream. */
export class StreamClient {
  closed = false;
  /** Set once the client has caught up with the hub and gets its events from the shared poll. */
  live = false;
  private expiryTimer?: NodeJS.Timeout;

  constructor(
    private readonly res: Response,
    readonly scopePath: string,
    readonly tokenId: string,
    /** The last event id this client was sent (or told about): it gets only later ones. */
    public position: bigint,
    private readonly onClose: (client: StreamClient) => void,
  ) {
    res.on('close', () => this.detach());
  }

  expireAt(when: Date | undefined): void {
    if (!when) return;
    const ms = Math.min(Math.max(0, when.getTime() - Date.now()), 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => this.end('token-expired'), ms).unref();
  }

  write(chunk: string): void {
    if (this.closed) return;
    this.res.write(chunk);
    if (this.res.writableLength > MAX_BUFFERED_BYTES) this.end('slow-consumer');
  }

  send(event: FleetEvent, frame = sseFrame(event)): void {
    this.write(frame);
    this.position = BigInt(event.id);
  }

  end(reason: CloseReason): void {
    if (this.closed) return;
    // A slow consumer's buffer is full already; the others learn why the stream ends.
    if (reason !== 'slow-consumer') this.res.write(`event: close\ndata: ${JSON.stringify({ reason })}\n\n`);
    this.res.end();
    this.detach();
  }

  private detach(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.expiryTimer);
    this.onClose(this);
  }
}

/**
 * Serves every open event stream of this process from one poll of the event feed: each tick reads
 * the new events of all accounts once and hands each to the streams whose subtree contains it.
 * A stream that resumes behind the shared position first catches up on its own (scoped reads),
 * then joins. Lifecycle changes handled by this instance wake the poll early; events written by
 * other instances arrive within one poll interval. The hub also re-checks the streams' access
 * tokens, sends heartbeats and ends every stream on shutdown.
 */
@Injectable()
export class EventStreamHub implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('EventStream');
  private readonly clients = new Set<StreamClient>();
  /** Every event up to here has been handed to the live clients. Null while nobody listens. */
  private position: bigint | null = null;
  private starting: Promise<bigint> | null = null;
  private pollTimer?: NodeJS.Timeout;
  private polling = false;
  private heartbeat?: NodeJS.Timeout;
  private recheck?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(
    private readonly feed: EventFeedRepository,
    private readonly tokens: TokenService,
    private readonly tickets: EventStreamTicketsRepository,
    private readonly connectionEvents: ConnectionEvents,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    const { heartbeatMs, authRecheckMs } = this.config.eventStream;
    this.heartbeat = setInterval(() => this.sendHeartbeats(), heartbeatMs).unref();
    this.recheck = setInterval(() => void this.recheckTokens(), authRecheckMs).unref();
    // A change this instance just committed: poll soon rather than at the next interval.
    this.unsubscribe = this.connectionEvents.subscribe((c) => {
      if (c.kind === 'device') this.schedule(20);
    });
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearInterval(this.recheck);
    clearTimeout(this.pollTimer);
    this.unsubscribe?.();
    for (const client of [...this.clients]) client.end('shutdown');
  }

  get size(): number {
    return this.clients.size;
  }

  /** The position a stream without a resume point starts from: now. */
  async now(): Promise<bigint> {
    // The feed's watermark, not the shared position: that may be up to a poll behind.
    const latest = BigInt(await this.feed.latestId());
    return this.position !== null && this.position > latest ? this.position : latest;
  }

  /**
   * Registers a stream that has been sent everything up to `client.position`, catches it up to
   * the shared position and then serves it from the shared poll.
   */
  async attach(client: StreamClient): Promise<void> {
    if (this.stopped) {
      client.end('shutdown');
      return;
    }
    this.clients.add(client);
    try {
      const shared = await this.start();
      let target = shared;
      while (!client.closed) {
        // Synchronous check and switch: the poll cannot run in between.
        if (this.position !== null && client.position >= this.position) {
          client.live = true;
          break;
        }
        if (this.position !== null) target = this.position;
        const page = await this.feed.readAfter(client.position.toString(), {
          limit: CATCH_UP_PAGE,
          scope: { subtreePath: client.scopePath },
        });
        for (const event of page.events) client.send(event);
        const next = BigInt(page.position);
        if (next > client.position) client.position = next;
        else if (client.position < target)
          await new Promise((r) => setTimeout(r, this.config.eventStream.pollMs));
      }
    } catch (err) {
      this.logger.error({ err }, 'event stream catch-up failed');
      client.end('shutdown');
    }
  }

  private start(): Promise<bigint> {
    if (this.position !== null) return Promise.resolve(this.position);
    this.starting ??= this.feed
      .latestId()
      .then((id) => {
        this.position ??= BigInt(id);
        this.schedule(this.config.eventStream.pollMs);
        return this.position;
      })
      .finally(() => (this.starting = null));
    return this.starting;
  }

  remove(client: StreamClient): void {
    this.clients.delete(client);
    if (this.clients.size === 0) {
      // Nobody listens: stop polling; the next stream starts from "now" again.
      clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
      this.position = null;
    }
  }

  private schedule(ms: number): void {
    if (this.stopped || this.position === null || this.polling) return;
    if (this.pollTimer) {
      if (ms >= this.config.eventStream.pollMs) return;
      clearTimeout(this.pollTimer);
    }
    this.pollTimer = setTimeout(() => void this.poll(), ms);
  }

  private async poll(): Promise<void> {
    this.pollTimer = undefined;
    if (this.position === null || this.stopped) return;
    this.polling = true;
    let full = false;
    try {
      const from = this.position;
      const page = await this.feed.readWithScopePaths(from.toString(), { limit: PAGE });
      if (this.position === from) {
        for (const { event, scopePath } of page.events) {
          const id = BigInt(event.id);
          const frame = sseFrame(event);
          for (const c of this.clients) {
            if (c.live && id > c.position && scopePath.startsWith(c.scopePath)) c.send(event, frame);
          }
        }
        const next = BigInt(page.position);
        for (const c of this.clients) if (c.live && c.position < next) c.position = next;
        this.position = next;
        full = page.events.length === PAGE;
      }
    } catch (err) {
      this.logger.warn({ err }, 'event feed poll failed; retrying');
    } finally {
      this.polling = false;
    }
    this.schedule(full ? 0 : this.config.eventStream.pollMs);
  }

  private sendHeartbeats(): void {
    for (const c of this.clients) c.write(': heartbeat\n\n');
  }

  /** Ends the streams whose access token was revoked or lost vpn:read; purges used-up tickets. */
  private async recheckTokens(): Promise<void> {
    try {
      await this.tickets.purgeExpired();
      if (this.clients.size === 0) return;
      const clients = [...this.clients];
      const live = await this.tokens.liveTokens([...new Set(clients.map((c) => c.tokenId))]);
      for (const c of clients) {
        const role = live.get(c.tokenId);
        if (!role || !ROLE_PERMISSIONS[role]?.has('vpn:read')) c.end('token-revoked');
      }
    } catch (err) {
      this.logger.warn({ err }, 'event stream token re-check failed');
    }
  }
}
