import type { EntityManager } from 'typeorm';

/**
 * An API key lives only as long as its creator: a user, or the API key that created it. These
 * are the two sides of that rule: deleting a creator deletes the keys it made (and the keys
 * those made), and authentication refuses a key whose creator is gone all the same (a backstop
 * for a creator removed some other way).
 */

/** SQL condition: the creator of the api_key row aliased `alias` still exists. */
export const apiKeyCreatorExists = (alias: string): string =>
  `(EXISTS (SELECT 1 FROM app_user creator_user WHERE creator_user.id = ${alias}.created_by)
    OR EXISTS (SELECT 1 FROM api_key creator_key WHERE creator_key.id = ${alias}.created_by))`;

/**
 * Deletes the API keys created by `creatorId` (a user or an API key), transitively, and revokes
 * their access tokens. Returns the ids of the deleted keys. Run it in the creator's own deletion
 * transaction.
 */
export async function deleteApiKeysCreatedBy(em: EntityManager, creatorId: string): Promise<string[]> {
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
  const ids = rows.map((r) => r.id);
  if (ids.length) {
    await em.query(
      'UPDATE access_token SET revoked_on = now() WHERE revoked_on IS NULL AND api_key_id = ANY($1::uuid[])',
      [ids],
    );
  }
  return ids;
}
