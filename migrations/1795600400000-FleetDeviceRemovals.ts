import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The fleet status ETag (docs/fleet-status.md) must change when a device is deleted. It used to
 * count the scope's devices for that, which reads every device row of the scope on every
 * conditional read (10,000 devices: a 2–3 ms scan per 304). A deletion now leaves a row here
 * (written by a trigger, so every way of deleting a device is covered), and the ETag reads the
 * newest one of the scope: an index probe. Append-only and written only on deletions, so nothing
 * contends on it; rows of a deleted account are removed with it.
 */
export class FleetDeviceRemovals1795600400000 implements MigrationInterface {
  name = 'FleetDeviceRemovals1795600400000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "device_removal" ("id" bigserial NOT NULL, "scope_id" uuid NOT NULL,
         "removed_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
         CONSTRAINT "device_removal_pk" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "device_removal_scope_idx" ON "device_removal" ("scope_id", "id")`);
    await queryRunner.query(
      `CREATE FUNCTION "device_removal_record"() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO device_removal (scope_id) SELECT DISTINCT scope_id FROM removed WHERE scope_id IS NOT NULL;
         RETURN NULL;
       END $$`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "device_removal_record" AFTER DELETE ON "device"
         REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION "device_removal_record"()`,
    );
    await queryRunner.query(
      `CREATE FUNCTION "device_removal_forget_account"() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         DELETE FROM device_removal r USING removed a WHERE r.scope_id = a.id;
         RETURN NULL;
       END $$`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "device_removal_forget_account" AFTER DELETE ON "account"
         REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION "device_removal_forget_account"()`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "device_removal_forget_account" ON "account"`);
    await queryRunner.query(`DROP FUNCTION "device_removal_forget_account"()`);
    await queryRunner.query(`DROP TRIGGER "device_removal_record" ON "device"`);
    await queryRunner.query(`DROP FUNCTION "device_removal_record"()`);
    await queryRunner.query(`DROP TABLE "device_removal"`);
  }
}
