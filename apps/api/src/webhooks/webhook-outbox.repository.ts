import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes, randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { WebhookDelivery } from './webhook-delivery.entity';
import type { SendResult } from './webhook-sender';

/** The `webhook-id` of a new delivery; stays the same on every attempt. */
export const newMessageId = (): string => `msg_${randomBytes(16).toString('hex')}`;

/** The Standard Webhooks body: `{type, timestamp, data}`. */
export function webhookBody(type: string, timestamp: string, data: Record<string, unknown>): string {
  return JSON.stringify({ type, timestamp, data });
}

/** A delivery claimed for one attempt by this instance. */
export interface ClaimedDelivery {
  id: string;
  claimId: string;
  webhookId: string;
  messageId: string;
  payload: string;
  /** Attempts so far, this one included. */
  attempts: number;
  url: string;
  secretSealed: Buffer;
}

/** Columns of webhook_delivery as TypeORM entity fields (for raw RETURNING). */
export const DELIVERY_COLUMNS = `id, webhook_id AS "webhookId", message_id AS "messageId", event_id AS "eventId",
  event_type AS "eventType", payload, status, attempts, next_attempt_on AS "nextAttemptOn",
  lease_until AS "leaseUntil", claim_id AS "claimId", last_attempt_on AS "lastAttemptOn",
  last_response_code AS "lastResponseCode", last_error AS "lastError", delivered_on AS "deliveredOn",
  created_on AS "createdOn"`;

/** Advisory lock that lets one API instance at a time move the dispatch cursor. */
const DISPATCH_LOCK = 0x57_48_44_53; // "WHDS"

/** A fleet event as the dispatcher hands it to the outbox. */
export interface EventDelivery {
  eventId: string;
  scopeId: string;
  type: string;
  occurredOn: string;
  /** The delivery body (the same for every endpoint). */
  payload: string;
}

/**
 * Every SQL statement about the delivery outbox in Postgres (docs/webhooks.md, "Delivery"):
 * `webhook_delivery` and the dispatch cursor. Every state change is one guarded statement (or
 * one transaction), so several API instances can send from the same table and a crash at any
 * point leaves a row that is simply picked up again.
 */
@Injectable()
export class WebhookOutboxRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Takes the dispatch lock for the rest of the transaction `em`; false when another instance
   * holds it. A transaction-level advisory lock takes no transaction id, so holding it while the
   * event feed computes its watermark does not hold that watermark back.
   */
  async tryLockDispatch(em: EntityManager): Promise<boolean> {
    const [lock] = await em.query<Array<{ ok: boolean }>>('SELECT pg_try_advisory_xact_lock($1) AS ok', [
      DISPATCH_LOCK,
    ]);
    return lock.ok;
  }

  /** The id of the last fleet event dispatched; null when the cursor row is missing. */
  async dispatchCursor(em: EntityManager): Promise<string | null> {
    const [cursor] = await em.query<Array<{ last: string }>>(
      'SELECT last_event_id::text AS last FROM webhook_dispatch_cursor WHERE id = 1',
    );
    return cursor?.last ?? null;
  }

  async moveDispatchCursor(em: EntityManager, position: string): Promise<void> {
    await em.query(
      'UPDATE webhook_dispatch_cursor SET last_event_id = $1, modified_on = now() WHERE id = 1',
      [position],
    );
  }

  /**
   * Enqueues one delivery per (enabled endpoint, event) for every endpoint that subscribes to the
   * event's type, whose account is the event's account or one of its ancestors, and that existed
   * when the event happened. (webhook_id, event_id) is unique, so an event dispatched twice is
   * delivered once. Answers the number of deliveries created.
   */
  async enqueueEvents(em: EntityManager, events: readonly EventDelivery[]): Promise<number> {
    if (events.length === 0) return 0;
    const records = events.map((e) => ({
      event_id: e.eventId,
      scope_id: e.scopeId,
      type: e.type,
      occurred_on: e.occurredOn,
      payload: e.payload,
    }));
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
    return inserted.length;
  }

  /** Deletes final deliveries (delivered, failed, cancelled) older than `retentionDays`. */
  async pruneFinal(retentionDays: number): Promise<number> {
    // TypeORM answers a DELETE with [rows, rowCount].
    const [, affected] = await this.dataSource.query<[unknown, number]>(
      `DELETE FROM webhook_delivery WHERE status IN ('DELIVERED', 'FAILED', 'CANCELLED')
          AND created_on < now() - $1 * interval '1 day'`,
      [retentionDays],
    );
    return affected;
  }

  /** Enqueues a delivery that is not tied to a fleet event (`webhook.test`). */
  async enqueue(
    webhookId: string,
    eventType: string,
    payload: string,
    em: EntityManager = this.dataSource.manager,
  ): Promise<WebhookDelivery> {
    const [row] = await em.query<WebhookDelivery[]>(
      `INSERT INTO webhook_delivery (webhook_id, message_id, event_type, payload)
       VALUES ($1, $2, $3, $4) RETURNING ${DELIVERY_COLUMNS}`,
      [webhookId, newMessageId(), eventType, payload],
    );
    return row;
  }

  /**
   * Claims up to `limit` due deliveries of enabled endpoints for one attempt each: PENDING rows
   * whose time has come, and SENDING rows whose lease ran out (their instance died mid-send).
   * SKIP LOCKED lets other instances claim other rows at the same time.
   */
  async claimDue(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    if (limit <= 0) return [];
    const claimId = randomUUID();
    // TypeORM answers an UPDATE … RETURNING with [rows, rowCount].
    const [rows] = await this.dataSource.query<[ClaimedDelivery[], number]>(
      `WITH due AS (
         SELECT d.id FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook_id
          WHERE w.enabled
            AND ((d.status = 'PENDING' AND d.next_attempt_on <= now())
              OR (d.status = 'SENDING' AND d.lease_until < now()))
          ORDER BY d.next_attempt_on
          LIMIT $1
          FOR UPDATE OF d SKIP LOCKED
       )
       UPDATE webhook_delivery d
          SET status = 'SENDING', attempts = d.attempts + 1, claim_id = $2,
              lease_until = now() + $3 * interval '1 millisecond', last_attempt_on = now()
         FROM due, webhook w
        WHERE d.id = due.id AND w.id = d.webhook_id
       RETURNING d.id, d.claim_id AS "claimId", d.webhook_id AS "webhookId", d.message_id AS "messageId",
                 d.payload, d.attempts, w.url, w.secret_sealed AS "secretSealed"`,
      [limit, claimId, leaseMs],
    );
    return rows;
  }

  /**
   * Records the outcome of an attempt, if this attempt still holds the claim (a lease that ran out
   * may have let another instance take the row; its outcome then counts, not this one).
   * `retryDelaysMs[n - 1]` is the wait after the n-th failed attempt; none left: FAILED.
   */
  async record(claim: ClaimedDelivery, result: SendResult, retryDelaysMs: number[]): Promise<void> {
    const params = [claim.id, claim.claimId, result.statusCode, result.error?.slice(0, 500) ?? null];
    const own = `id = $1 AND claim_id = $2 AND status = 'SENDING'`;
    if (result.abandoned) {
      // Cut by shutdown: not the receiver's fault, so the attempt is given back.
      await this.dataSource.query(
        `UPDATE webhook_delivery SET status = 'PENDING', attempts = GREATEST(attempts - 1, 0), next_attempt_on = now(),
                claim_id = NULL, lease_until = NULL, last_response_code = $3, last_error = $4
          WHERE ${own}`,
        params,
      );
      return;
    }
    if (result.error === null) {
      await this.dataSource.query(
        `UPDATE webhook_delivery SET status = 'DELIVERED', delivered_on = now(), claim_id = NULL, lease_until = NULL,
                last_response_code = $3, last_error = $4
          WHERE ${own}`,
        params,
      );
      return;
    }
    if (result.statusCode === 410) {
      // The receiver says the endpoint is gone for good: stop sending to it at all.
      await this.dataSource.transaction(async (em) => {
        const [, updated] = await em.query<[unknown[], number]>(
          `UPDATE webhook_delivery SET status = 'FAILED', claim_id = NULL, lease_until = NULL,
                  last_response_code = $3, last_error = $4
            WHERE ${own}`,
          params,
        );
        if (!updated) return;
        await em.query(
          `UPDATE webhook SET enabled = false, disabled_reason = 'ENDPOINT_GONE', disabled_on = now(),
                  optlock = optlock + 1, modified_on = now()
            WHERE id = $1 AND enabled`,
          [claim.webhookId],
        );
        await em.query(
          `UPDATE webhook_delivery SET status = 'CANCELLED', claim_id = NULL, lease_until = NULL,
                  last_error = 'endpoint disabled: it answered 410 Gone'
            WHERE webhook_id = $1 AND status = 'PENDING'`,
          [claim.webhookId],
        );
      });
      return;
    }
    const delay = claim.attempts <= retryDelaysMs.length ? retryDelaysMs[claim.attempts - 1] : null;
    if (delay === null) {
      await this.dataSource.query(
        `UPDATE webhook_delivery SET status = 'FAILED', claim_id = NULL, lease_until = NULL,
                last_response_code = $3, last_error = $4
          WHERE ${own}`,
        params,
      );
    } else {
      await this.dataSource.query(
        `UPDATE webhook_delivery SET status = 'PENDING', next_attempt_on = now() + $5 * interval '1 millisecond',
                claim_id = NULL, lease_until = NULL, last_response_code = $3, last_error = $4
          WHERE ${own}`,
        [...params, delay],
      );
    }
  }
}
