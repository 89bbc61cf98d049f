import { Check, Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { UpdatableEntity } from '../common/base.entity';
import { Account } from '../accounts/account.entity';
import { FLEET_EVENT_TYPES, type FleetEventType } from '../events/fleet-event';

/** The fleet events a webhook can subscribe to: those of the shared feed (docs/events.md). */
export const WEBHOOK_EVENT_TYPES = FLEET_EVENT_TYPES;
export type WebhookEventType = FleetEventType;

/** Why the server (not a user) disabled an endpoint. */
export type WebhookDisabledReason = 'ENDPOINT_GONE';

/**
 * A tenant's webhook endpoint: it receives the subscribed events of its account and the accounts
 * below it. The signing secret is stored sealed (webhook-secret.ts): the server must sign with
 * it, so it cannot be kept as a digest.
 */
@Entity('webhook')
@Index('webhook_scope_idx', ['scopeId', 'createdOn'])
@Check('webhook_events_not_empty', `cardinality("events") > 0`)
@Check('webhook_disabled_reason_valid', `"disabled_reason" IS NULL OR "disabled_reason" IN ('ENDPOINT_GONE')`)
export class Webhook extends UpdatableEntity {
  @Column({ type: 'varchar', length: 2048 })
  url: string;

  @Column({ type: 'varchar', length: 32, array: true })
  events: WebhookEventType[];

  @Column({ type: 'varchar', length: 1024, default: '' })
  description: string;

  @Column({ type: 'boolean', default: true })
  enabled: boolean;

  /** Set when the server disabled it (the receiver answered 410 Gone); cleared when re-enabled. */
  @Column({ name: 'disabled_reason', type: 'varchar', length: 32, nullable: true })
  disabledReason: WebhookDisabledReason | null;

  @Column({ name: 'disabled_on', type: 'timestamptz', nullable: true })
  disabledOn: Date | null;

  /** AES-256-GCM: iv | tag | ciphertext of the `whsec_…` secret, the webhook id as AAD. */
  @Column({ name: 'secret_sealed', type: 'bytea' })
  secretSealed: Buffer;

  @ManyToOne(() => Account, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'scope_id', foreignKeyConstraintName: 'webhook_account_fk' })
  account?: Account;
}
