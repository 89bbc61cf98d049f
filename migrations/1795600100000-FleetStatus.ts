import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes of the fleet status ETag (docs/fleet-status.md): per account, the newest device event,
 * the newest device modification with the device count, and the device peers on gateways are
 * each an index probe instead of a scan of the scope's rows.
 */
export class FleetStatus1795600100000 implements MigrationInterface {
  name = 'FleetStatus1795600100000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "device_scope_modified_idx" ON "device"  ("scope_id", "modified_on") `,
    );
    await queryRunner.query(
      `CREATE INDEX "device_event_scope_id_idx" ON "device_event"  ("scope_id", "id") `,
    );
    await queryRunner.query(
      `CREATE INDEX "gateway_peer_device_scope_idx" ON "gateway_peer"  ("scope_id") WHERE "kind" = 'device'`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."gateway_peer_device_scope_idx"`);
    await queryRunner.query(`DROP INDEX "public"."device_event_scope_id_idx"`);
    await queryRunner.query(`DROP INDEX "public"."device_scope_modified_idx"`);
  }
}
