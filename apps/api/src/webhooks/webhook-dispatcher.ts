import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { EventFeedRepository } from '../events/event-feed.repository';
import type { FleetEvent } from '../events/fleet-event';
import { webhookBody } from './webhook-outbox';

/** Advisory lock that lets one API instance at a time move the dispatch cursor. */
const DISPATCH_LOCK = 0x57_48_44_53; // "WHDS"
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
      await this.dataSource.query(
        `DELETE FROM webhook_delivery WHERE status IN ('DELIVERED', 'FAILED', 'CANCELLED')
            AND created_on < now() - $1 * interval '1 day'`,
        [RETENTION_DAYS],
      );
    }
    return created;
  }

  /** One page in one transaction; null when another instance holds the cursor or nothing is new. */
  private dispatchPage(): Promise<{ created: number; more: boolean } | null> {
    return this.dataSource.transaction(async (em) => {
      // A transaction-level advisory lock takes no transaction id, so holding it while the feed
      // computes its watermark does not hold that watermark back.
      const [lock] = await em.query<Array<{ ok: boolean }>>('SELECT pg_try_advisory_xact_lock($1) AS ok', [
        DISPATCH_LOCK,
      ]);
      if (!lock.ok) return null;
      const [cursor] = await em.query<Array<{ last: string }>>(
        'SELECT last_event_id::text AS last FROM webhook_dispatch_cursor WHERE id = 1',
      );
      if (!cursor) return null;
      const { events, position } = await this.feed.readAfter(cursor.last, { limit: PAGE });
      if (position === cursor.last) return null;
      let created = 0;
      if (events.length) {
        const records = events.map((e) => ({
          event_id: e.id,
          scope_id: e.scopeId,
          type: e.type,
          occurred_on: e.occurredOn,
          payload: fleetEventBody(e),
        }));
        // An endpoint gets the events of its account's subtree that happen after it was created.
        const inserted = await em.query<unknown[]>(
          `INSERT INTO webhook_delivery (webhook_id, message_id, event_id, event_type, payload)
           SELECT w.id, 'msg_' || replace(gen_random_uuid()::text, '-', ''), e.event_id, e.type, e.payload
             FROM jsonb_to_recordset($1::jsonb)
                  AS e(event_id bigint, scope_id uuid, type text, occurred_on timestamptz, payload text)
             JOIN account ea ON ea.id = e.scope_id
             JOIN webhook w ON w.enabled AND e.type = ANY(w.events) AND w.created_on <= e.occurred_on
             JOIN account wa ON wa.id = w.scope_id AND starts_with(ea.path, wa.path)
           ON CONFLICT (webhook_id, event_id) DO NOTHING
           RETURNING 1 AS created`,
          [JSON.stringify(records)],
        );
        created = inserted.length;
      }
      await em.query(
        'UPDATE webhook_dispatch_cursor SET last_event_id = $1, modified_on = now() WHERE id = 1',
        [position],
      );
      return { created, more: events.length === PAGE };
    });
  }
}
