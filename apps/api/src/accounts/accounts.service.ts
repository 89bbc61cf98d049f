import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, Like, Not, Repository, type EntityManager, type FindOptionsWhere } from 'typeorm';
import { AppError } from '../common/app-error';
import { paginate, type ListResult } from '../common/list';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { actorId, isRootAdmin, type Principal, type RequestScope } from '../auth/principal';
import { Account } from './account.entity';
import { AccountsRepository, likePrefix } from './accounts.repository';
import {
  toAccountDto,
  type AccountDto,
  type AccountListQueryDto,
  type CreateAccountDto,
  type UpdateAccountDto,
} from './dto/account.dto';
import { VpnSubnetAllocator } from './vpn-subnet.allocator';

@Injectable()
export class AccountsService {
  constructor(
    @InjectRepository(Account) private readonly accounts: Repository<Account>,
    private readonly repository: AccountsRepository,
    private readonly dataSource: DataSource,
    private readonly subnets: VpnSubnetAllocator,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async list(scope: RequestScope, q: AccountListQueryDto): Promise<ListResult<AccountDto>> {
    const where: FindOptionsWhere<Account> = q.recursive
      ? { path: Like(likePrefix(scope.path)), id: Not(scope.id) }
      : { scopeId: scope.id };
    if (q.name) where.name = q.name;
    return paginate({ from: this.accounts, where, order: { createdOn: 'ASC', id: 'ASC' } }, q, toAccountDto);
  }

  async get(scope: RequestScope, id: string): Promise<AccountDto> {
    const account = await this.repository.findVisible(scope.path, id);
    if (!account) throw AppError.notFound('Account', `No account ${id} in this scope`);
    return toAccountDto(account);
  }

  /**
   * Creates a child of `scope`. Only an admin of the root account may choose its vpnSubnet;
   * every other account gets the next free block of the supernet. Within the allocation lock
   * (so concurrent creations cannot overshoot), the quotas: children of `scope`, and accounts
   * below each tenant ancestor (the root account has neither quota).
   */
  async create(scope: RequestScope, dto: CreateAccountDto, principal: Principal): Promise<AccountDto> {
    const byRootAdmin = isRootAdmin(principal);
    if (dto.vpnSubnet !== undefined && !byRootAdmin) {
      throw AppError.forbidden(
        'Only administrators of the root account may choose a vpnSubnet; leave it out to get one allocated',
      );
    }
    const actor = actorId(principal);
    const id = randomUUID();
    const saved = await this.dataSource.transaction(async (em) => {
      await this.subnets.lock(em);
      await this.checkQuotas(em, scope);
      const vpnSubnet = dto.vpnSubnet ?? (await this.subnets.nextFree(em, { byRootAdmin }));
      return this.repository.insert(em, {
        id,
        scopeId: scope.id,
        name: dto.name,
        description: dto.description ?? '',
        path: `${scope.path}${id}/`,
        vpnSubnet,
        createdBy: actor,
      });
    });
    return toAccountDto(saved);
  }

  /** 409 when `scope` may not have another child, or a tenant above it another account below it. */
  private async checkQuotas(em: EntityManager, scope: RequestScope): Promise<void> {
    const ids = scope.path.split('/').filter(Boolean);
    if (ids.length <= 1) return; // the root account: it creates the tenants
    const quotaReached = (details: string) => new AppError('CONFLICT', 'Account quota reached', details);
    const children = await this.repository.countChildren(scope.id, em);
    if (children >= this.config.accountMaxChildren) {
      throw quotaReached(`An account may have at most ${this.config.accountMaxChildren} child accounts`);
    }
    // Every ancestor below the root, and the scope itself: "/root/a/", "/root/a/b/", …
    const paths = ids.slice(1).map((_, i) => `/${ids.slice(0, i + 2).join('/')}/`);
    const below = await this.repository.countBelow(em, paths);
    if (below.some((n) => n >= this.config.accountMaxDescendants)) {
      throw quotaReached(
        `A tenant may have at most ${this.config.accountMaxDescendants} accounts below it, at any depth`,
      );
    }
  }

  async update(
    scope: RequestScope,
    id: string,
    dto: UpdateAccountDto,
    actor: string | null,
  ): Promise<AccountDto> {
    const changes = {
      modifiedBy: actor,
      ...(dto.description !== undefined ? { description: dto.description } : {}),
    };
    const updated = await this.repository.update(scope.path, id, dto.optlock, changes);
    return toAccountDto(updated);
  }

  /** Refuses to delete the caller's own scope, or an account that still has children or devices. */
  async delete(scope: RequestScope, id: string): Promise<void> {
    if (id === scope.id) {
      throw AppError.conflict('Cannot delete the account you act in', 'Delete it from its parent account');
    }
    await this.get(scope, id);
    const children = await this.repository.countChildren(id);
    if (children > 0) {
      throw AppError.conflict('Account has child accounts', `Delete its ${children} child account(s) first`);
    }
    await this.repository.delete(scope.path, id);
  }
}
