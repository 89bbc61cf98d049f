import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository, type EntityManager } from 'typeorm';
import { ApiKey } from './api-key.entity';

/*
 * An API key lives only as long as its creator: a user, or the API key that created it. The two
 * sides of that rule are here: deleting a creator deletes the keys it made (and the keys those
 * made, `deleteCreatedBy`), and authentication refuses a key whose creator is gone all the same
 * (`apiKeyCreatorExists`, a backstop for a creator removed some other way).
 */

/** SQL condition: the creator of the api_key row aliased `alias` still exists. */
export const apiKeyCreatorExists = (alias: string): string =>
  `(EXISTS (SELECT 1 FROM app_user creator_user WHERE creator_user.id = ${alias}.created_by)
    OR EXISTS (SELECT 1 FROM api_key creator_key WHERE creator_key.id = ${alias}.created_by))`;

/** What a sign-in with an API key needs to know about the key. */
export interface ApiKeyCredentials {
  id: string;
  scopeId: string | null;
  keyDigest: Buffer;
  /** The user or API key that created it still exists (a key never outlives its creator). */
  creatorExists: boolean;
}

/**
 * The API key statements other modules need (the sign-in lookup, deleting the keys a user
 * created), so none of them reaches into the table itself.
 */
@Injectable()
export class ApiKeysRepository {
  constructor(@InjectRepository(ApiKey) private readonly keys: Repository<ApiKey>) {}

  /** The key `id` with whether its creator still exists, in one statement; null when unknown. */
  async findCredentials(id: string): Promise<ApiKeyCredentials | null> {
    const rows: Array<{ id: string; scope_id: string | null; key_digest: Buffer; creator_exists: boolean }> =
      await this.keys.query(
        `SELECT k.id, k.scope_id, k.key_digest, ${apiKeyCreatorExists('k')} AS creator_exists
           FROM api_key k WHERE k.id = $1`,
        [id],
      );
    const row = rows[0];
    if (!row) return null;
    return {
      id: row.id,
      scopeId: row.scope_id,
      keyDigest: row.key_digest,
      creatorExists: row.creator_exists,
    };
  }

  async markUsed(id: string, on = new Date()): Promise<void> {
    await this.keys.update({ id }, { lastUsedOn: on });
  }

  /**
   * Deletes the API keys created by `creatorId` (a user or an API key), transitively, and answers
   * their ids (their access tokens are the caller's to revoke). Run it in the creator's own
   * deletion transaction.
   */
  async deleteCreatedBy(em: EntityManager, creatorId: string): Promise<string[]> {
    // TypeORM answers a DELETE with [rows, rowCount].
    const [rows] = await em.query<[Array<{ id: string }>, number]>(
      `WITH RECURSIVE doomed(id) AS (
         SELECT id FROM api_key WHERE created_by = $1
         UNION
         SELECT k.id FROM api_key k JOIN doomed d ON k.created_by = d.id
       )
       DELETE FROM api_key WHERE id IN (SELECT id FROM doomed) RETURNING id`,
      [creatorId],
    );
    return rows.map((r) => r.id);
  }
}
