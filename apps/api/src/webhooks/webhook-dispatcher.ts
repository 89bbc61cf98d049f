import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { EventFeedRepository } from '../events/event-feed.repository';
import type { FleetEvent } from '../events/fleet-event';
import { webhookBody, WebhookOutboxRepository } from './webhook-outbox.repository';

const PAGE = 500;
/** Pages per run: a backlog is worked off over several runs without starving the sender. */
const MAX_PAGES = 10;
/** Final deliveries are kept this long for GET …/deliveries, then pruned. */
const RETENTION_DAYS = 30;
const PRUNE_EVERY_MS = 3_600_000;

/** The body a fleet event is delivered with (docs/webhooks.md, "Payloads"). */
export function fleetEventBody(e: FleetEvent): string {
  return webhookBody(e.type, e.occurredOn, {
    eventId: e.id,
    scopeId: e.scopeId,
    deviceId: e.deviceId,
    clientId: e.clientId,
    occurredOn: e.occurredOn,
    ...e.data,
  });
}

/**
 * Turns fleet events into outbox rows: one delivery per (enabled endpoint, event) for every
 * endpoint that subscribes to the event's type and whose account is the event's account or one of
 * its ancestors. The deliveries and the cursor move in one transaction, and (webhook_id, event_id)
 * is unique, so a crash or a restart neither loses nor duplicates a delivery.
 */
@Injectable()
export class WebhookDispatcher {
  private lastPrune = 0;
  private readonly createdListeners: Array<() => void> = [];

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly outbox: WebhookOutboxRepository,
    private readonly feed: EventFeedRepository,
  ) {}

  /**
   * `listener` runs (in this process) each time a dispatch page has committed new deliveries, so
   * the sender can claim them at once instead of at its next poll.
   */
  onDeliveriesCreated(listener: () => void): void {
    this.createdListeners.push(listener);
  }

  /** Dispatches what the feed has up to its watermark; returns the number of deliveries created. */
  async dispatch(): Promise<number> {
    let created = 0;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await this.dispatchPage();
      if (result === null) break;
      created += result.created;
      if (result.created) for (const listener of this.createdListeners) listener();
      if (!result.more) break;
    }
    if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      await this.outbox.pruneFinal(RETENTION_DAYS);
    }
    return created;
  }

  /** One page in one transaction; null when another instance holds the cursor or nothing is new. */
  private dispatchPage(): Promise<{ created: number; more: boolean } | null> {
    return this.dataSource.transaction(async (em) => {
      if (!(await this.outbox.tryLockDispatch(em))) return null;
      const last = await this.outbox.dispatchCursor(em);
      if (last === null) return null;
      const { events, position } = await this.feed.readAfter(last, { limit: PAGE });
      if (position === last) return null;
      // An endpoint gets the events of its account's subtree that happen after it was created.
      const created = await this.outbox.enqueueEvents(
        em,
        events.map((e) => ({
          eventId: e.id,
          scopeId: e.scopeId,
          type: e.type,
          occurredOn: e.occurredOn,
          payload: fleetEventBody(e),
        })),
      );
      await this.outbox.moveDispatchCursor(em, position);
      return { created, more: events.length === PAGE };
    });
  }
}
