import { MigrationInterface, QueryRunner } from 'typeorm';

export class DevicesAndVpn1763910000000 implements MigrationInterface {
  name = 'DevicesAndVpn1763910000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "device" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "scope_id" uuid, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "created_by" uuid, "modified_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "modified_by" uuid, "optlock" integer NOT NULL, "client_id" character varying(64) NOT NULL, "display_name" character varying(255) NOT NULL DEFAULT '', "status" character varying(16) NOT NULL DEFAULT 'ENABLED', "connection_status" character varying(16) NOT NULL DEFAULT 'NEVER_CONNECTED', "last_event_on" TIMESTAMP WITH TIME ZONE, "model_id" character varying(255), "serial_number" character varying(255), "firmware_version" character varying(255), "connection_ip" character varying(255), "application_ids" character varying(1024) NOT NULL DEFAULT '', "tunnel_ip" inet NOT NULL, "vpn_public_key" character varying(64), "mqtt_username" character varying(160), "mqtt_password_digest" bytea, "credentials_issued_on" TIMESTAMP WITH TIME ZONE, CONSTRAINT "device_tunnel_ip_unique" UNIQUE ("scope_id", "tunnel_ip"), CONSTRAINT "device_client_id_unique" UNIQUE ("scope_id", "client_id"), CONSTRAINT "device_connection_status_valid" CHECK ("connection_status" IN ('NEVER_CONNECTED', 'CONNECTED', 'DISCONNECTED', 'MISSING')), CONSTRAINT "device_status_valid" CHECK ("status" IN ('ENABLED', 'DISABLED')), CONSTRAINT "device_client_id_topic_safe" CHECK ("client_id" ~ '^[A-Za-z0-9._-]{1,64}$'), CONSTRAINT "PK_2dc10972aa4e27c01378dad2c72" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "device_mqtt_username_unique" ON "device"  ("mqtt_username") `,
    );
    await queryRunner.query(
      `CREATE TABLE "device_event" ("id" BIGSERIAL NOT NULL, "scope_id" uuid NOT NULL, "device_id" uuid NOT NULL, "type" character varying(32) NOT NULL, "received_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "sent_on" TIMESTAMP WITH TIME ZONE, "details" jsonb NOT NULL, CONSTRAINT "PK_c87eecc7e695d25ea5775fa8ba9" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "device_event_device_time_idx" ON "device_event"  ("device_id", "received_on") `,
    );
    await queryRunner.query(
      `CREATE TABLE "device_operation" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "scope_id" uuid NOT NULL, "device_id" uuid NOT NULL, "request_id" character varying(64) NOT NULL, "command" character varying(16) NOT NULL, "status" character varying(16) NOT NULL, "requested_by" uuid, "requester_client_id" character varying(64) NOT NULL, "started_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "ended_on" TIMESTAMP WITH TIME ZONE, "duration_ms" integer, "response_code" integer, "error_message" character varying(1024), CONSTRAINT "UQ_4831acce308d3f6686657e17fb9" UNIQUE ("request_id"), CONSTRAINT "device_operation_status_valid" CHECK ("status" IN ('RUNNING', 'COMPLETED', 'FAILED', 'TIMEOUT')), CONSTRAINT "PK_a5daa93034e3969c76ba17ee79a" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "device_operation_running_idx" ON "device_operation"  ("requester_client_id") WHERE "status" = 'RUNNING'`,
    );
    await queryRunner.query(
      `CREATE INDEX "device_operation_device_time_idx" ON "device_operation"  ("device_id", "started_on") `,
    );
    await queryRunner.query(
      `CREATE TABLE "device_vpn_status" ("device_id" uuid NOT NULL, "scope_id" uuid NOT NULL, "connected" boolean NOT NULL, "ip_address" character varying(45) NOT NULL, "status" character varying(16) NOT NULL, "status_code" character varying(3) NOT NULL, "boot_id" character varying(64) NOT NULL, "seq" bigint NOT NULL, "reported_on" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_0f8fa7085a14a8f142161416cba" PRIMARY KEY ("device_id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "device" ADD CONSTRAINT "device_account_fk" FOREIGN KEY ("scope_id") REFERENCES "account"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "device_event" ADD CONSTRAINT "device_event_device_fk" FOREIGN KEY ("device_id") REFERENCES "device"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "device_operation" ADD CONSTRAINT "device_operation_device_fk" FOREIGN KEY ("device_id") REFERENCES "device"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "device_vpn_status" ADD CONSTRAINT "device_vpn_status_device_fk" FOREIGN KEY ("device_id") REFERENCES "device"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "device_vpn_status" DROP CONSTRAINT "device_vpn_status_device_fk"`);
    await queryRunner.query(`ALTER TABLE "device_operation" DROP CONSTRAINT "device_operation_device_fk"`);
    await queryRunner.query(`ALTER TABLE "device_event" DROP CONSTRAINT "device_event_device_fk"`);
    await queryRunner.query(`ALTER TABLE "device" DROP CONSTRAINT "device_account_fk"`);
    await queryRunner.query(`DROP TABLE "device_vpn_status"`);
    await queryRunner.query(`DROP INDEX "public"."device_operation_device_time_idx"`);
    await queryRunner.query(`DROP INDEX "public"."device_operation_running_idx"`);
    await queryRunner.query(`DROP TABLE "device_operation"`);
    await queryRunner.query(`DROP INDEX "public"."device_event_device_time_idx"`);
    await queryRunner.query(`DROP TABLE "device_event"`);
    await queryRunner.query(`DROP INDEX "public"."device_mqtt_username_unique"`);
    await queryRunner.query(`DROP TABLE "device"`);
  }
}
