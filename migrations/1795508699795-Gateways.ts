import { MigrationInterface, QueryRunner } from 'typeorm';

export class Gateways1795508699795 implements MigrationInterface {
  name = 'Gateways1795508699795';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "gateway" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "scope_id" uuid, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "created_by" uuid, "modified_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "modified_by" uuid, "optlock" integer NOT NULL, "name" character varying(64) NOT NULL, "description" character varying(1024) NOT NULL DEFAULT '', "endpoint" character varying(300) NOT NULL, "public_key" character varying(64), "listen_port" integer, "connection_status" character varying(16) NOT NULL DEFAULT 'NEVER_CONNECTED', "last_seen_on" TIMESTAMP WITH TIME ZONE, "mqtt_username" character varying(160), "mqtt_password_digest" bytea, "credentials_issued_on" TIMESTAMP WITH TIME ZONE, "desired_serial" bigint NOT NULL DEFAULT '0', "applied_serial" bigint NOT NULL DEFAULT '-1', CONSTRAINT "gateway_name_unique" UNIQUE ("scope_id", "name"), CONSTRAINT "gateway_connection_status_valid" CHECK ("connection_status" IN ('NEVER_CONNECTED', 'CONNECTED', 'DISCONNECTED', 'MISSING')), CONSTRAINT "gateway_name_topic_safe" CHECK ("name" ~ '^[A-Za-z0-9._-]{1,64}$'), CONSTRAINT "PK_22c5b7ecdd6313de143815f9991" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "gateway_mqtt_username_unique" ON "gateway"  ("mqtt_username") `,
    );
    await queryRunner.query(
      `CREATE TABLE "gateway_peer" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "gateway_id" uuid NOT NULL, "scope_id" uuid NOT NULL, "kind" character varying(8) NOT NULL, "public_key" character varying(64) NOT NULL, "tunnel_ip" inet NOT NULL, "device_id" uuid, "session_id" uuid, "covers_device_id" uuid, "covers_account_ids" uuid array, "serial" bigint NOT NULL, "removed" boolean NOT NULL DEFAULT false, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "last_handshake_on" TIMESTAMP WITH TIME ZONE, "rx_bytes" bigint NOT NULL DEFAULT '0', "tx_bytes" bigint NOT NULL DEFAULT '0', CONSTRAINT "gateway_peer_device_has_device" CHECK ("kind" <> 'device' OR "removed" OR "device_id" IS NOT NULL), CONSTRAINT "gateway_peer_kind_valid" CHECK ("kind" IN ('device', 'client')), CONSTRAINT "PK_2eff1866dffd8c02e753b190f1c" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "gateway_peer_live_kind_idx" ON "gateway_peer"  ("gateway_id", "kind", "scope_id") WHERE NOT "removed"`,
    );
    await queryRunner.query(
      `CREATE INDEX "gateway_peer_serial_idx" ON "gateway_peer"  ("gateway_id", "serial") `,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "gateway_peer_tunnel_ip_unique" ON "gateway_peer"  ("gateway_id", "tunnel_ip") WHERE NOT "removed"`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "gateway_peer_device_unique" ON "gateway_peer"  ("device_id") WHERE NOT "removed"`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "gateway_peer_key_unique" ON "gateway_peer"  ("gateway_id", "public_key") WHERE NOT "removed"`,
    );
    await queryRunner.query(`ALTER TABLE "device" ADD "gateway_id" uuid`);
    // Data written before one RUNNING operation per device was enforced: keep the newest, close the rest.
    await queryRunner.query(
      `UPDATE "device_operation" o SET "status" = 'FAILED', "ended_on" = now(), "error_message" = 'Interrupted'
        WHERE o."status" = 'RUNNING' AND EXISTS (
          SELECT 1 FROM "device_operation" n WHERE n."device_id" = o."device_id" AND n."status" = 'RUNNING'
             AND (n."started_on", n."id") > (o."started_on", o."id"))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "device_operation_one_running" ON "device_operation"  ("device_id") WHERE "status" = 'RUNNING'`,
    );
    await queryRunner.query(
      `ALTER TABLE "gateway" ADD CONSTRAINT "gateway_account_fk" FOREIGN KEY ("scope_id") REFERENCES "account"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "device" ADD CONSTRAINT "device_gateway_fk" FOREIGN KEY ("gateway_id") REFERENCES "gateway"("id") ON DELETE SET NULL ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "gateway_peer" ADD CONSTRAINT "gateway_peer_gateway_fk" FOREIGN KEY ("gateway_id") REFERENCES "gateway"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "gateway_peer" ADD CONSTRAINT "gateway_peer_device_fk" FOREIGN KEY ("device_id") REFERENCES "device"("id") ON DELETE SET NULL ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "gateway_peer" DROP CONSTRAINT "gateway_peer_device_fk"`);
    await queryRunner.query(`ALTER TABLE "gateway_peer" DROP CONSTRAINT "gateway_peer_gateway_fk"`);
    await queryRunner.query(`ALTER TABLE "device" DROP CONSTRAINT "device_gateway_fk"`);
    await queryRunner.query(`ALTER TABLE "gateway" DROP CONSTRAINT "gateway_account_fk"`);
    await queryRunner.query(`DROP INDEX "public"."device_operation_one_running"`);
    await queryRunner.query(`ALTER TABLE "device" DROP COLUMN "gateway_id"`);
    await queryRunner.query(`DROP INDEX "public"."gateway_peer_key_unique"`);
    await queryRunner.query(`DROP INDEX "public"."gateway_peer_device_unique"`);
    await queryRunner.query(`DROP INDEX "public"."gateway_peer_tunnel_ip_unique"`);
    await queryRunner.query(`DROP INDEX "public"."gateway_peer_serial_idx"`);
    await queryRunner.query(`DROP INDEX "public"."gateway_peer_live_kind_idx"`);
    await queryRunner.query(`DROP TABLE "gateway_peer"`);
    await queryRunner.query(`DROP INDEX "public"."gateway_mqtt_username_unique"`);
    await queryRunner.query(`DROP TABLE "gateway"`);
  }
}
