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

/**
 * The delivery outbox in Postgres (docs/webhooks.md, "Delivery"). Every state change is one
 * guarded statement (or one transaction), so several API instances can send from the same table
 * and a crash at any point leaves a row that is simply picked up again.
 */
@Injectable()
export class WebhookOutbox {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

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
