import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { Repository } from 'typeorm';
import { AppError } from '../common/app-error';
import { paginate, type ListResult } from '../common/list';
import { actorId, type Principal } from '../auth/principal';
import { roleWithin } from '../auth/roles';
import { digest, generateSecret } from '../common/secrets';
import { TokensRepository } from '../auth/tokens.repository';
import { ApiKey } from './api-key.entity';
import { ApiKeysRepository } from './api-keys.repository';
import { formatApiKey } from './api-key.format';
import {
  toApiKeyDto,
  type ApiKeyDto,
  type ApiKeyListQueryDto,
  type CreateApiKeyDto,
  type CreatedApiKeyDto,
} from './dto/api-key.dto';

@Injectable()
export class ApiKeysService {
  constructor(
    @InjectRepository(ApiKey) private readonly keys: Repository<ApiKey>,
    private readonly tokens: TokensRepository,
    private readonly keyRows: ApiKeysRepository,
  ) {}

  async list(scopeId: string, q: ApiKeyListQueryDto): Promise<ListResult<ApiKeyDto>> {
    return paginate(
      { from: this.keys, where: { scopeId }, order: { createdOn: 'ASC', id: 'ASC' } },
      q,
      toApiKeyDto,
    );
  }

  async get(scopeId: string, id: string): Promise<ApiKeyDto> {
    const key = await this.keys.findOne({ where: { scopeId, id } });
    if (!key) throw AppError.notFound('API key', `No API key ${id} in this scope`);
    return toApiKeyDto(key);
  }

  /** The key acts with the role it is created with, which may not exceed its creator's. */
  async create(scopeId: string, dto: CreateApiKeyDto, creator: Principal): Promise<CreatedApiKeyDto> {
    if (!roleWithin(dto.role, creator.role)) {
      throw AppError.forbidden(`A ${creator.role} cannot create an API key with the ${dto.role} role`);
    }
    const id = randomUUID();
    const secret = generateSecret();
    const saved = await this.keys.save(
      this.keys.create({
        id,
        scopeId,
        name: dto.name,
        role: dto.role,
        keyDigest: digest(secret),
        lastUsedOn: null,
        createdBy: actorId(creator),
      }),
    );
    return { ...toApiKeyDto(saved), apiKey: formatApiKey(id, secret) };
  }

  /** Deletes the key, revokes its tokens, and deletes the keys it created (transitively). */
  async delete(scopeId: string, id: string): Promise<void> {
    await this.keys.manager.transaction(async (em) => {
      const result = await em.getRepository(ApiKey).delete({ scopeId, id });
      if (!result.affected) throw AppError.notFound('API key', `No API key ${id} in this scope`);
      await this.tokens.revokeAllOfApiKeys(await this.keyRows.deleteCreatedBy(em, id), em);
      await this.tokens.revokeAllOf({ apiKeyId: id }, em);
    });
  }
}
