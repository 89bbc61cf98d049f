import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Signed webhooks (docs/webhooks.md): endpoints, the delivery outbox, and the dispatcher's cursor
 * over the fleet event feed. The cursor starts at the newest existing event, so enabling the
 * feature does not replay history.
 */
export class Webhooks1795600300000 implements MigrationInterface {
  name = 'Webhooks1795600300000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "webhook" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "scope_id" uuid, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "created_by" uuid, "modified_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "modified_by" uuid, "optlock" integer NOT NULL, "url" character varying(2048) NOT NULL, "events" character varying(32) array NOT NULL, "description" character varying(1024) NOT NULL DEFAULT '', "enabled" boolean NOT NULL DEFAULT true, "disabled_reason" character varying(32), "disabled_on" TIMESTAMP WITH TIME ZONE, "secret_sealed" bytea NOT NULL, CONSTRAINT "webhook_disabled_reason_valid" CHECK ("disabled_reason" IS NULL OR "disabled_reason" IN ('ENDPOINT_GONE')), CONSTRAINT "webhook_events_not_empty" CHECK (cardinality("events") > 0), CONSTRAINT "PK_e6765510c2d078db49632b59020" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "webhook_scope_idx" ON "webhook"  ("scope_id", "created_on") `);
    await queryRunner.query(
      `CREATE TABLE "webhook_delivery" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "webhook_id" uuid NOT NULL, "message_id" character varying(64) NOT NULL, "event_id" bigint, "event_type" character varying(32) NOT NULL, "payload" text NOT NULL, "status" character varying(16) NOT NULL DEFAULT 'PENDING', "attempts" integer NOT NULL DEFAULT '0', "next_attempt_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "lease_until" TIMESTAMP WITH TIME ZONE, "claim_id" uuid, "last_attempt_on" TIMESTAMP WITH TIME ZONE, "last_response_code" integer, "last_error" character varying(500), "delivered_on" TIMESTAMP WITH TIME ZONE, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "webhook_delivery_status_valid" CHECK ("status" IN ('PENDING', 'SENDING', 'DELIVERED', 'FAILED', 'CANCELLED')), CONSTRAINT "PK_b1ae290239a778f12399db91354" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "webhook_delivery_message_unique" ON "webhook_delivery"  ("message_id") `,
    );
    await queryRunner.query(
      `CREATE INDEX "webhook_delivery_due_idx" ON "webhook_delivery"  ("next_attempt_on") WHERE "status" IN ('PENDING', 'SENDING')`,
    );
    await queryRunner.query(
      `CREATE INDEX "webhook_delivery_list_idx" ON "webhook_delivery"  ("webhook_id", "created_on") `,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "webhook_delivery_event_unique" ON "webhook_delivery"  ("webhook_id", "event_id") `,
    );
    await queryRunner.query(
      `CREATE TABLE "webhook_dispatch_cursor" ("id" smallint NOT NULL, "last_event_id" bigint NOT NULL, "modified_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "webhook_dispatch_cursor_single" CHECK ("id" = 1), CONSTRAINT "PK_8b111bafeb3edf5366eacfd68af" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "webhook" ADD CONSTRAINT "webhook_account_fk" FOREIGN KEY ("scope_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "webhook_delivery" ADD CONSTRAINT "webhook_delivery_webhook_fk" FOREIGN KEY ("webhook_id") REFERENCES "webhook"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `INSERT INTO "webhook_dispatch_cursor" ("id", "last_event_id") SELECT 1, COALESCE(max("id"), 0) FROM "device_event"`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "webhook_delivery" DROP CONSTRAINT "webhook_delivery_webhook_fk"`);
    await queryRunner.query(`ALTER TABLE "webhook" DROP CONSTRAINT "webhook_account_fk"`);
    await queryRunner.query(`DROP TABLE "webhook_dispatch_cursor"`);
    await queryRunner.query(`DROP INDEX "public"."webhook_delivery_event_unique"`);
    await queryRunner.query(`DROP INDEX "public"."webhook_delivery_list_idx"`);
    await queryRunner.query(`DROP INDEX "public"."webhook_delivery_due_idx"`);
    await queryRunner.query(`DROP INDEX "public"."webhook_delivery_message_unique"`);
    await queryRunner.query(`DROP TABLE "webhook_delivery"`);
    await queryRunner.query(`DROP INDEX "public"."webhook_scope_idx"`);
    await queryRunner.query(`DROP TABLE "webhook"`);
  }
}
