import { MigrationInterface, QueryRunner } from 'typeorm';

export class Hardening1795513469308 implements MigrationInterface {
  name = 'Hardening1795513469308';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "login_failure" ("key" bytea NOT NULL, "failures" integer NOT NULL, "window_start" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_856165bf0920dbc72cee5af7490" PRIMARY KEY ("key"))`,
    );
    await queryRunner.query(`CREATE INDEX "api_key_created_by_idx" ON "api_key"  ("created_by") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."api_key_created_by_idx"`);
    await queryRunner.query(`DROP TABLE "login_failure"`);
  }
}
