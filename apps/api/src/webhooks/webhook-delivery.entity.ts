import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
} from 'typeorm';
import { Webhook } from './webhook.entity';

/**
 * PENDING: waiting for its (next) attempt. SENDING: claimed by an instance until `leaseUntil`
 * (an instance that dies mid-send leaves it to be claimed again after the lease). DELIVERED: the
 * receiver answered 2xx. FAILED: out of attempts, or the receiver answered 410. CANCELLED: its
 * endpoint answered 410 to another delivery and was disabled.
 */
export const DELIVERY_STATUSES = ['PENDING', 'SENDING', 'DELIVERED', 'FAILED', 'CANCELLED'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * The outbox: one row per (endpoint, event), sent and retried by WebhookDeliveryWorker. The
 * `messageId` is the `webhook-id` header and never changes across retries, so receivers can
 * deduplicate.
 */
@Entity('webhook_delivery')
@Index('webhook_delivery_event_unique', ['webhookId', 'eventId'], { unique: true })
@Index('webhook_delivery_list_idx', ['webhookId', 'createdOn'])
@Index('webhook_delivery_due_idx', ['nextAttemptOn'], { where: `"status" IN ('PENDING', 'SENDING')` })
@Check(
  'webhook_delivery_status_valid',
  `"status" IN ('PENDING', 'SENDING', 'DELIVERED', 'FAILED', 'CANCELLED')`,
)
export class WebhookDelivery {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'webhook_id', type: 'uuid' })
  webhookId: string;

  @Index('webhook_delivery_message_unique', { unique: true })
  @Column({ name: 'message_id', type: 'varchar', length: 64 })
  messageId: string;

  /** The fleet event (device_event id) it carries; null for a `webhook.test` delivery. bigint: a string. */
  @Column({ name: 'event_id', type: 'bigint', nullable: true })
  eventId: string | null;

  @Column({ name: 'event_type', type: 'varchar', length: 32 })
  eventType: string;

  /** The exact JSON body sent on every attempt. */
  @Column({ type: 'text' })
  payload: string;

  @Column({ type: 'varchar', length: 16, default: 'PENDING' })
  status: DeliveryStatus;

  @Column({ type: 'integer', default: 0 })
  attempts: number;

  @Column({ name: 'next_attempt_on', type: 'timestamptz', default: () => 'now()' })
  nextAttemptOn: Date;

  @Column({ name: 'lease_until', type: 'timestamptz', nullable: true })
  leaseUntil: Date | null;

  /** Who holds the SENDING claim: only that attempt may record its outcome. */
  @Column({ name: 'claim_id', type: 'uuid', nullable: true })
  claimId: string | null;

  @Column({ name: 'last_attempt_on', type: 'timestamptz', nullable: true })
  lastAttemptOn: Date | null;

  @Column({ name: 'last_response_code', type: 'integer', nullable: true })
  lastResponseCode: number | null;

  @Column({ name: 'last_error', type: 'varchar', length: 500, nullable: true })
  lastError: string | null;

  @Column({ name: 'delivered_on', type: 'timestamptz', nullable: true })
  deliveredOn: Date | null;

  @CreateDateColumn({ name: 'created_on', type: 'timestamptz' })
  createdOn: Date;

  @ManyToOne(() => Webhook, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'webhook_id', foreignKeyConstraintName: 'webhook_delivery_webhook_fk' })
  webhook?: Webhook;
}

/** How far the dispatcher has turned fleet events into deliveries (a single row, id 1). */
@Entity('webhook_dispatch_cursor')
@Check('webhook_dispatch_cursor_single', `"id" = 1`)
export class WebhookDispatchCursor {
  @Column({ type: 'smallint', primary: true })
  id: number;

  /** The last fleet event id handled. bigint: a string. */
  @Column({ name: 'last_event_id', type: 'bigint' })
  lastEventId: string;

  @Column({ name: 'modified_on', type: 'timestamptz', default: () => 'now()' })
  modifiedOn: Date;
}
