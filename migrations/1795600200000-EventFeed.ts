import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The event feed (docs/events.md): a trigger gives every device_event row its id only after its
 * transaction holds a transaction id, which makes the feed's snapshot watermark exact; tickets
 * let a browser's EventSource open the stream without an Authorization header.
 */
export class EventFeed1795600200000 implements MigrationInterface {
  name = 'EventFeed1795600200000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE FUNCTION "device_event_assign_id"() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         -- Take the transaction id first, then the event id: an id is never held by a transaction
         -- that a snapshot does not list as running (see EventFeedRepository).
         PERFORM pg_current_xact_id();
         NEW.id := nextval('device_event_id_seq'::regclass);
         RETURN NEW;
       END $$`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "device_event_assign_id" BEFORE INSERT ON "device_event"
         FOR EACH ROW EXECUTE FUNCTION "device_event_assign_id"()`,
    );
    await queryRunner.query(
      `CREATE TABLE "event_stream_ticket" ("digest" bytea NOT NULL, "token_id" uuid NOT NULL, "scope_id" uuid NOT NULL, "expires_on" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_84c47d6a2674304cdefe4f8cc21" PRIMARY KEY ("digest"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "event_stream_ticket_expires_idx" ON "event_stream_ticket"  ("expires_on") `,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."event_stream_ticket_expires_idx"`);
    await queryRunner.query(`DROP TABLE "event_stream_ticket"`);
    await queryRunner.query(`DROP TRIGGER "device_event_assign_id" ON "device_event"`);
    await queryRunner.query(`DROP FUNCTION "device_event_assign_id"()`);
  }
}
