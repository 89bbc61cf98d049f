import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository, type FindOptionsWhere } from 'typeorm';
import { AppError } from '../common/app-error';
import { isUniqueViolation } from '../common/db-errors';
import { paginate, type ListResult } from '../common/list';
import { updateWithOptlock } from '../common/optlock';
import { ApiKeysRepository } from '../apikeys/api-keys.repository';
import { hashPassword } from '../common/secrets';
import { TokensRepository } from '../auth/tokens.repository';
import { User } from './user.entity';
import {
  toUserDto,
  type CreateUserDto,
  type UpdateUserDto,
  type UserDto,
  type UserListQueryDto,
} from './dto/user.dto';

/** Users of one account; every query is scoped (a user of another account is simply not found). */
@Injectable()
export class UsersService {
  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly tokens: TokensRepository,
    private readonly apiKeys: ApiKeysRepository,
  ) {}

  async list(scopeId: string, q: UserListQueryDto): Promise<ListResult<UserDto>> {
    const where: FindOptionsWhere<User> = { scopeId };
    if (q.username) where.username = q.username;
    if (q.role) where.role = q.role;
    return paginate({ from: this.users, where, order: { username: 'ASC' } }, q, toUserDto);
  }

  async get(scopeId: string, id: string): Promise<UserDto> {
    const user = await this.users.findOne({ where: { scopeId, id } });
    if (!user) throw AppError.notFound('User', `No user ${id} in this scope`);
    return toUserDto(user);
  }

  async create(scopeId: string, dto: CreateUserDto, actor: string | null): Promise<UserDto> {
    const user = this.users.create({
      scopeId,
      username: dto.username,
      passwordHash: await hashPassword(dto.password),
      role: dto.role,
      enabled: true,
      createdBy: actor,
      modifiedBy: actor,
    });
    try {
      return toUserDto(await this.users.save(user));
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new AppError('ENTRY_EXISTS', 'Username already taken', `A user named ${dto.username} exists`);
      }
      throw err;
    }
  }

  async update(scopeId: string, id: string, dto: UpdateUserDto, actor: string | null): Promise<UserDto> {
    const changes: Partial<User> = { modifiedBy: actor };
    if (dto.role !== undefined) changes.role = dto.role;
    if (dto.enabled !== undefined) changes.enabled = dto.enabled;
    if (dto.password !== undefined) changes.passwordHash = await hashPassword(dto.password);
    const updated = await updateWithOptlock(this.users, { scopeId, id }, dto.optlock, changes, 'User');
    if (dto.password !== undefined || dto.enabled === false) await this.tokens.revokeAllOf({ userId: id });
    return toUserDto(updated);
  }

  /**
   * Deletes the user, revokes its tokens, and deletes the API keys it created (and the keys those
   * created): a key never outlives the person who made it.
   */
  async delete(scopeId: string, id: string): Promise<void> {
    await this.users.manager.transaction(async (em) => {
      const result = await em.getRepository(User).delete({ scopeId, id });
      if (!result.affected) throw AppError.notFound('User', `No user ${id} in this scope`);
      await this.tokens.revokeAllOfApiKeys(await this.apiKeys.deleteCreatedBy(em, id), em);
      await this.tokens.revokeAllOf({ userId: id }, em);
    });
  }
}
