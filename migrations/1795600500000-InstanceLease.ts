import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each API process registers itself in `api_instance` with a random id and renews a lease there;
 * every operation records the instance that runs it. When an instance dies without closing its
 * RUNNING operations (SIGKILL, a lost host), any surviving instance finds its expired lease, fails
 * those operations and deletes the row (docs/scale-out.md). Before this, only a restart of the
 * same instance (same MQTT client id) closed them. Rows written before this migration have no
 * instance: the abandoned-operation rule (older than any command may run) still covers them.
 */
export class InstanceLease1795600500000 implements MigrationInterface {
  name = 'InstanceLease1795600500000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "api_instance" ("id" uuid NOT NULL, "mqtt_client_id" character varying(64) NOT NULL,
         "host" character varying(255) NOT NULL,
         "started_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
         "renewed_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
         "expires_on" TIMESTAMP WITH TIME ZONE NOT NULL,
         CONSTRAINT "api_instance_pk" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "api_instance_expires_idx" ON "api_instance" ("expires_on")`);
    await queryRunner.query(`ALTER TABLE "device_operation" ADD "instance_id" uuid`);
    await queryRunner.query(
      `CREATE INDEX "device_operation_instance_running_idx" ON "device_operation" ("instance_id") WHERE "status" = 'RUNNING'`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "device_operation_instance_running_idx"`);
    await queryRunner.query(`ALTER TABLE "device_operation" DROP COLUMN "instance_id"`);
    await queryRunner.query(`DROP INDEX "api_instance_expires_idx"`);
    await queryRunner.query(`DROP TABLE "api_instance"`);
  }
}
