import { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1763900000000 implements MigrationInterface {
  name = 'Init1763900000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "account" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "scope_id" uuid, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "created_by" uuid, "modified_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "modified_by" uuid, "optlock" integer NOT NULL, "name" character varying(63) NOT NULL, "description" character varying(1024) NOT NULL DEFAULT '', "path" text NOT NULL, "vpn_subnet" cidr NOT NULL, CONSTRAINT "account_name_topic_safe" CHECK ("name" ~ '^[a-z0-9][a-z0-9-]{1,62}$'), CONSTRAINT "account_vpn_subnet_no_overlap" EXCLUDE USING gist ("vpn_subnet" inet_ops WITH &&), CONSTRAINT "PK_54115ee388cdb6d86bb4bf5b2ea" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "account_name_unique" ON "account"  ("name") `);
    await queryRunner.query(`CREATE INDEX "account_path_idx" ON "account"  ("path") `);
    await queryRunner.query(
      `CREATE TABLE "api_key" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "scope_id" uuid, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "created_by" uuid, "name" character varying(255) NOT NULL, "role" character varying(16) NOT NULL, "key_digest" bytea NOT NULL, "last_used_on" TIMESTAMP WITH TIME ZONE, CONSTRAINT "api_key_role_valid" CHECK ("role" IN ('admin', 'operator', 'viewer')), CONSTRAINT "PK_b1bd840641b8acbaad89c3d8d11" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "api_key_digest_unique" ON "api_key"  ("key_digest") `);
    await queryRunner.query(
      `CREATE TABLE "access_token" ("id" uuid NOT NULL, "user_id" uuid, "api_key_id" uuid, "scope_id" uuid NOT NULL, "expires_on" TIMESTAMP WITH TIME ZONE NOT NULL, "refresh_digest" bytea NOT NULL, "refresh_expires_on" TIMESTAMP WITH TIME ZONE NOT NULL, "revoked_on" TIMESTAMP WITH TIME ZONE, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_f20f028607b2603deabd8182d12" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "access_token_user_idx" ON "access_token"  ("user_id") `);
    await queryRunner.query(`CREATE INDEX "access_token_api_key_idx" ON "access_token"  ("api_key_id") `);
    await queryRunner.query(
      `CREATE TABLE "app_user" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "scope_id" uuid, "created_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "created_by" uuid, "modified_on" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "modified_by" uuid, "optlock" integer NOT NULL, "username" character varying(255) NOT NULL, "password_hash" character varying(255) NOT NULL, "role" character varying(16) NOT NULL, "enabled" boolean NOT NULL DEFAULT true, CONSTRAINT "app_user_role_valid" CHECK ("role" IN ('admin', 'operator', 'viewer')), CONSTRAINT "PK_22a5c4a3d9b2fb8e4e73fc4ada1" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "app_user_username_unique" ON "app_user"  ("username") `);
    await queryRunner.query(
      `ALTER TABLE "account" ADD CONSTRAINT "account_parent_fk" FOREIGN KEY ("scope_id") REFERENCES "account"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "api_key" ADD CONSTRAINT "api_key_account_fk" FOREIGN KEY ("scope_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "app_user" ADD CONSTRAINT "app_user_account_fk" FOREIGN KEY ("scope_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "app_user" DROP CONSTRAINT "app_user_account_fk"`);
    await queryRunner.query(`ALTER TABLE "api_key" DROP CONSTRAINT "api_key_account_fk"`);
    await queryRunner.query(`ALTER TABLE "account" DROP CONSTRAINT "account_parent_fk"`);
    await queryRunner.query(`DROP INDEX "public"."app_user_username_unique"`);
    await queryRunner.query(`DROP TABLE "app_user"`);
    await queryRunner.query(`DROP INDEX "public"."access_token_api_key_idx"`);
    await queryRunner.query(`DROP INDEX "public"."access_token_user_idx"`);
    await queryRunner.query(`DROP TABLE "access_token"`);
    await queryRunner.query(`DROP INDEX "public"."api_key_digest_unique"`);
    await queryRunner.query(`DROP TABLE "api_key"`);
    await queryRunner.query(`DROP INDEX "public"."account_path_idx"`);
    await queryRunner.query(`DROP INDEX "public"."account_name_unique"`);
    await queryRunner.query(`DROP TABLE "account"`);
  }
}
