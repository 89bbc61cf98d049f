import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { apiKeyCreatorExists } from './api-key-creator';
import { ApiKey } from './api-key.entity';

/** What a sign-in with an API key needs to know about the key. */
export interface ApiKeyCredentials {
  id: string;
  scopeId: string | null;
  keyDigest: Buffer;
  /** The user or API key that created it still exists (a key never outlives its creator). */
  creatorExists: boolean;
}

/** The API key lookups other modules need (sign-in), so none of them reaches into the table itself. */
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
}
