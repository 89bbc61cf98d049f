import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, Like, Not, Repository, type FindOptionsWhere } from 'typeorm';
import { AppError } from '../common/app-error';
import {
  isExclusionViolation,
  isForeignKeyViolation,
  isUniqueViolation,
  pgConstraint,
} from '../common/db-errors';
import { toListResult, type ListResult } from '../common/list';
import { updateWithOptlock } from '../common/optlock';
import type { RequestScope } from '../auth/principal';
import { Account } from './account.entity';
import {
  toAccountDto,
  type AccountDto,
  type AccountListQueryDto,
  type CreateAccountDto,
  type UpdateAccountDto,
} from './dto/account.dto';
import { VpnSubnetAllocator } from './vpn-subnet.allocator';

/** Escapes LIKE wildcards in a materialised path (ids are UUIDs, but be exact anyway). */
const likePrefix = (path: string) => `${path.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

@Injectable()
export class AccountsService {
  constructor(
    @InjectRepository(Account) private readonly accounts: Repository<Account>,
    private readonly dataSource: DataSource,
    private readonly subnets: VpnSubnetAllocator,
  ) {}

  /** An account visible from `scope`: the scope itself or any descendant. */
  private whereVisible(scope: RequestScope, id: string): FindOptionsWhere<Account> {
    return { id, path: Like(likePrefix(scope.path)) };
  }

  async list(scope: RequestScope, q: AccountListQueryDto): Promise<ListResult<AccountDto>> {
    const where: FindOptionsWhere<Account> = q.recursive
      ? { path: Like(likePrefix(scope.path)), id: Not(scope.id) }
      : { scopeId: scope.id };
    if (q.name) where.name = q.name;
    const [rows, total] = await Promise.all([
      this.accounts.find({
        where,
        order: { createdOn: 'ASC', id: 'ASC' },
        skip: q.offset,
        take: q.limit + 1,
      }),
      q.askTotalCount ? this.accounts.count({ where }) : Promise.resolve(undefined),
    ]);
    return toListResult(rows, q, toAccountDto, total);
  }

  async get(scope: RequestScope, id: string): Promise<AccountDto> {
    const account = await this.accounts.findOne({ where: this.whereVisible(scope, id) });
    if (!account) throw AppError.notFound('Account', `No account ${id} in this scope`);
    return toAccountDto(account);
  }

  /** Creates a child of `scope`; without a vpnSubnet, the next free block is allocated. */
  async create(scope: RequestScope, dto: CreateAccountDto, actor: string | null): Promise<AccountDto> {
    const id = randomUUID();
    try {
      const saved = await this.dataSource.transaction(async (em) => {
        await this.subnets.lock(em);
        const vpnSubnet = dto.vpnSubnet ?? (await this.subnets.nextFree(em));
        const account = em.getRepository(Account).create({
          id,
          scopeId: scope.id,
          name: dto.name,
          description: dto.description ?? '',
          path: `${scope.path}${id}/`,
          vpnSubnet,
          createdBy: actor,
          modifiedBy: actor,
        });
        return em.getRepository(Account).save(account);
      });
      return toAccountDto(saved);
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new AppError(
          'ENTRY_EXISTS',
          'Account name already taken',
          `An account named ${dto.name} exists`,
        );
      }
      if (isExclusionViolation(err)) {
        throw new AppError(
          'ENTRY_EXISTS',
          'VPN subnet overlaps another account',
          `${dto.vpnSubnet} is (partly) in use`,
        );
      }
      if (pgInvalidCidr(err)) throw AppError.invalid('Invalid vpnSubnet', 'vpnSubnet has host bits set');
      throw err;
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
    const updated = await updateWithOptlock(
      this.accounts,
      this.whereVisible(scope, id),
      dto.optlock,
      changes,
      'Account',
    );
    return toAccountDto(updated);
  }

  /** Refuses to delete the caller's own scope, or an account that still has children or devices. */
  async delete(scope: RequestScope, id: string): Promise<void> {
    if (id === scope.id) {
      throw AppError.conflict('Cannot delete the account you act in', 'Delete it from its parent account');
    }
    await this.get(scope, id);
    const children = await this.accounts.count({ where: { scopeId: id } });
    if (children > 0) {
      throw AppError.conflict('Account has child accounts', `Delete its ${children} child account(s) first`);
    }
    try {
      await this.accounts.delete({ id });
    } catch (err) {
      if (isForeignKeyViolation(err)) {
        if (pgConstraint(err) === 'gateway_account_fk') {
          throw AppError.conflict('Account still has gateways', 'Delete its VPN gateways first');
        }
        throw AppError.conflict('Account still has devices', 'Delete its devices first');
      }
      throw err;
    }
  }
}

function pgInvalidCidr(err: unknown): boolean {
  const e = err as { driverError?: { code?: string } };
  return e?.driverError?.code === '22P02';
}
