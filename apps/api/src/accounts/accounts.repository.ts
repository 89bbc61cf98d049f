import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Like, Repository, type EntityManager, type FindOptionsWhere } from 'typeorm';
import { AppError } from '../common/app-error';
import {
  isExclusionViolation,
  isForeignKeyViolation,
  isUniqueViolation,
  pgCode,
  pgConstraint,
} from '../common/db-errors';
import { updateWithOptlock } from '../common/optlock';
import { Account } from './account.entity';

/** Escapes LIKE wildcards in a materialised path (ids are UUIDs, but be exact anyway). */
export const likePrefix = (path: string) => `${path.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** The fields of a new account; the caller has chosen its id, path and subnet. */
export interface NewAccount {
  id: string;
  scopeId: string;
  name: string;
  description: string;
  path: string;
  vpnSubnet: string;
  createdBy: string | null;
}

/** The first block of a supernet, the block length and how many blocks to try. */
export interface SubnetSearch {
  network: string;
  prefix: number;
  blockSize: number;
  blocks: number;
}

/**
 * Every SQL statement about accounts: the rows, the tree (a materialised `path`, so "inside my
 * subtree" is a prefix test), the row lock other aggregates take to serialise creations in one
 * account, and the address-space queries of subnet allocation. Methods that serve a request take
 * the scope first (its path: an account is visible from its own scope and every ancestor's);
 * an account outside it is simply not found.
 */
@Injectable()
export class AccountsRepository {
  constructor(@InjectRepository(Account) private readonly accounts: Repository<Account>) {}

  /** An account visible from the scope with this path: the scope itself or any descendant. */
  private whereVisible(scopePath: string, id: string): FindOptionsWhere<Account> {
    return { id, path: Like(likePrefix(scopePath)) };
  }

  findVisible(scopePath: string, id: string): Promise<Account | null> {
    return this.accounts.findOne({ where: this.whereVisible(scopePath, id) });
  }

  /** The account's name (the account segment of its MQTT topics); null when there is no such account. */
  async nameOf(id: string): Promise<string | null> {
    const row = await this.accounts.findOne({ where: { id }, select: { id: true, name: true } });
    return row?.name ?? null;
  }

  /**
   * The account's materialised path; null when there is no such account. The guard checks with it
   * that a requested scope lies in the caller's subtree, on every scoped request that names
   * another account than the caller's own: one primary-key lookup.
   */
  async pathOf(id: string): Promise<string | null> {
    const rows: Array<{ path: string }> = await this.accounts.query(
      'SELECT path FROM account WHERE id = $1',
      [id],
    );
    return rows[0]?.path ?? null;
  }

  /**
   * Locks the account row for the rest of the transaction and returns its subnet; null when there
   * is no such account. Creations that must not race within one account (devices and gateways
   * sharing a namespace, tunnel addresses, quotas) all take this lock first.
   */
  async lockForUpdate(
    em: EntityManager,
    id: string,
  ): Promise<{ vpnSubnet: string; nextTunnelHost: number } | null> {
    const rows: Array<{ vpn_subnet: string; next_tunnel_host: number }> = await em.query(
      `SELECT a.vpn_subnet::text, coalesce(h.next_host, 2) AS next_tunnel_host
         FROM account a LEFT JOIN tunnel_address_hint h ON h.scope_id = a.id
        WHERE a.id = $1 FOR UPDATE OF a`,
      [id],
    );
    return rows[0] ? { vpnSubnet: rows[0].vpn_subnet, nextTunnelHost: rows[0].next_tunnel_host } : null;
  }

  /** After a tunnel address was handed out: the search for the next one starts above `host`. The caller holds the row lock. */
  async tunnelHostTaken(em: EntityManager, id: string, host: number): Promise<void> {
    await em.query(
      `INSERT INTO tunnel_address_hint (scope_id, next_host) VALUES ($1, $2)
       ON CONFLICT (scope_id) DO UPDATE SET next_host = EXCLUDED.next_host`,
      [id, host + 1],
    );
  }

  /**
   * After a device's tunnel address was freed: the next search starts there at the latest, so the
   * lowest free address is the one handed out. The caller holds the row lock (lockForUpdate).
   */
  async tunnelAddressFreed(em: EntityManager, id: string, address: string): Promise<void> {
    await em.query(
      `UPDATE tunnel_address_hint h SET next_host = least(h.next_host, ($2::inet - network(a.vpn_subnet))::int)
         FROM account a
        WHERE h.scope_id = $1 AND a.id = $1 AND $2::inet << a.vpn_subnet`,
      [id, address],
    );
  }

  countChildren(id: string, em: EntityManager = this.accounts.manager): Promise<number> {
    return em.getRepository(Account).count({ where: { scopeId: id } });
  }

  /** For each path, how many accounts lie below it at any depth (the account itself not counted). */
  async countBelow(em: EntityManager, paths: string[]): Promise<number[]> {
    const rows: Array<{ below: number }> = await em.query(
      `SELECT (SELECT count(*) FROM account d WHERE starts_with(d.path, p))::int - 1 AS below
         FROM unnest($1::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n`,
      [paths],
    );
    return rows.map((r) => r.below);
  }

  /**
   * Inserts the account. A taken name, an overlapping subnet and a subnet with host bits set are
   * the caller's mistakes (409, 409, 400), whatever the transaction did before.
   */
  async insert(em: EntityManager, fields: NewAccount): Promise<Account> {
    const repo = em.getRepository(Account);
    try {
      return await repo.save(repo.create({ ...fields, modifiedBy: fields.createdBy }));
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new AppError(
          'ENTRY_EXISTS',
          'Account name already taken',
          `An account named ${fields.name} exists`,
        );
      }
      if (isExclusionViolation(err)) {
        throw new AppError(
          'ENTRY_EXISTS',
          'VPN subnet overlaps another account',
          `${fields.vpnSubnet} is (partly) in use`,
        );
      }
      // 22P02 invalid_text_representation: Postgres refuses a cidr with host bits set.
      if (pgCode(err) === '22P02') throw AppError.invalid('Invalid vpnSubnet', 'vpnSubnet has host bits set');
      throw err;
    }
  }

  update(
    scopePath: string,
    id: string,
    optlock: number,
    changes: Partial<Pick<Account, 'description' | 'modifiedBy'>>,
  ): Promise<Account> {
    return updateWithOptlock(this.accounts, this.whereVisible(scopePath, id), optlock, changes, 'Account');
  }

  /** Deletes the account; 409 while devices or gateways still belong to it (their foreign keys). */
  async delete(scopePath: string, id: string): Promise<void> {
    try {
      await this.accounts.delete(this.whereVisible(scopePath, id));
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

  /** Serialises subnet allocation across instances until the transaction ends (advisory lock). */
  async lockSubnetAllocation(em: EntityManager, key: number): Promise<void> {
    await em.query('SELECT pg_advisory_xact_lock($1)', [key]);
  }

  /** The first block of the search that overlaps no account's subnet; null when all are taken. */
  async firstFreeSubnet(em: EntityManager, search: SubnetSearch): Promise<string | null> {
    const rows: Array<{ subnet: string }> = await em.query(
      `SELECT set_masklen($1::inet + g * $3::bigint, $2)::cidr::text AS subnet
         FROM generate_series(0, $4::bigint - 1) AS g
        WHERE NOT EXISTS (
          SELECT 1 FROM account a WHERE a.vpn_subnet && set_masklen($1::inet + g * $3::bigint, $2)::cidr)
        ORDER BY g
        LIMIT 1`,
      [search.network, search.prefix, search.blockSize, search.blocks],
    );
    return rows[0]?.subnet ?? null;
  }

  /** Account subnets that overlap `supernet`, as network address and prefix length. */
  subnetsOverlapping(em: EntityManager, supernet: string): Promise<Array<{ net: string; len: number }>> {
    return em.query(
      `SELECT host(network(vpn_subnet)) AS net, masklen(vpn_subnet) AS len
         FROM account WHERE vpn_subnet && $1::cidr`,
      [supernet],
    );
  }
}
