import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Where the search for a device's tunnel address starts, per account. Every host offset of the
 * account's subnet below `next_host` is held by a device of the account, so creation probes from
 * there instead of from .2: one index probe instead of one per device (the search from .2 took
 * 16 ms at 7,700 devices, under the account lock). Deleting a device lowers it to the freed
 * offset, so the lowest free address is still the one handed out. No row means 2. A table of its
 * own, not a column of `account`: every request reads the account row, and a row rewritten on
 * every device creation slowed them all (docs/decisions.md).
 */
export class TunnelAddressHint1795600600000 implements MigrationInterface {
  name = 'TunnelAddressHint1795600600000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "tunnel_address_hint" ("scope_id" uuid NOT NULL, "next_host" integer NOT NULL,
         CONSTRAINT "tunnel_address_hint_pk" PRIMARY KEY ("scope_id"),
         CONSTRAINT "tunnel_address_hint_account_fk" FOREIGN KEY ("scope_id") REFERENCES "account"("id") ON DELETE CASCADE)`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "tunnel_address_hint"`);
  }
}
