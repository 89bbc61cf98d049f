import { MigrationInterface, QueryRunner } from 'typeorm';

export class Sessions1795510562379 implements MigrationInterface {
  name = 'Sessions1795510562379';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "vpn_session" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "scope_id" uuid NOT NULL, "kind" character varying(8) NOT NULL, "device_id" uuid, "covers_device_id" uuid, "covers_account_ids" uuid array, "gateway_id" uuid, "user_id" uuid, "api_key_id" uuid, "public_key" character varying(64) NOT NULL, "tunnel_ip" inet NOT NULL, "ping_token_digest" bytea NOT NULL, "ping_interval_seconds" integer NOT NULL, "installation_id" character varying(128), "client_session_id" character varying(128), "started_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "last_seen_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "ended_on" TIMESTAMP WITH TIME ZONE, "end_reason" character varying(32), "rx_bytes" bigint NOT NULL DEFAULT '0', "tx_bytes" bigint NOT NULL DEFAULT '0', CONSTRAINT "vpn_session_device_has_device" CHECK ("kind" <> 'device' OR "covers_device_id" IS NOT NULL), CONSTRAINT "vpn_session_kind_valid" CHECK ("kind" IN ('device', 'site')), CONSTRAINT "PK_6a582c1233aee942fda6971a498" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "vpn_session_device_active_idx" ON "vpn_session"  ("covers_device_id") WHERE "ended_on" IS NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX "vpn_session_scope_time_idx" ON "vpn_session"  ("scope_id", "started_on") `,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "vpn_session_tunnel_ip_active" ON "vpn_session"  ("tunnel_ip") WHERE "ended_on" IS NULL`,
    );
    await queryRunner.query(
      `ALTER TABLE "vpn_session" ADD CONSTRAINT "vpn_session_account_fk" FOREIGN KEY ("scope_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "vpn_session" ADD CONSTRAINT "vpn_session_device_fk" FOREIGN KEY ("device_id") REFERENCES "device"("id") ON DELETE SET NULL ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "vpn_session" ADD CONSTRAINT "vpn_session_gateway_fk" FOREIGN KEY ("gateway_id") REFERENCES "gateway"("id") ON DELETE SET NULL ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "gateway_peer" ADD CONSTRAINT "gateway_peer_session_fk" FOREIGN KEY ("session_id") REFERENCES "vpn_session"("id") ON DELETE SET NULL ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "gateway_peer" DROP CONSTRAINT "gateway_peer_session_fk"`);
    await queryRunner.query(`ALTER TABLE "vpn_session" DROP CONSTRAINT "vpn_session_gateway_fk"`);
    await queryRunner.query(`ALTER TABLE "vpn_session" DROP CONSTRAINT "vpn_session_device_fk"`);
    await queryRunner.query(`ALTER TABLE "vpn_session" DROP CONSTRAINT "vpn_session_account_fk"`);
    await queryRunner.query(`DROP INDEX "public"."vpn_session_tunnel_ip_active"`);
    await queryRunner.query(`DROP INDEX "public"."vpn_session_scope_time_idx"`);
    await queryRunner.query(`DROP INDEX "public"."vpn_session_device_active_idx"`);
    await queryRunner.query(`DROP TABLE "vpn_session"`);
  }
}
