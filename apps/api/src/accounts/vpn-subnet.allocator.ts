import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { AccountsRepository } from './accounts.repository';

/** Serialises subnet allocation across instances (transaction-scoped advisory lock). */
const SUBNET_LOCK_KEY = 0x5650_4e31;

const ipv4ToInt = (ip: string): number => ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);

/** Who the subnet is for: an account created by an admin of the root account, or by anyone else. */
export interface AllocationRequest {
  /** false: the last VPN_SUBNET_RESERVE blocks are off limits, and "no space" says nothing more. */
  byRootAdmin: boolean;
}

/**
 * Hands each account a VPN subnet that overlaps no other: the first free block
 * of VPN_SUBNET_PREFIX inside VPN_SUPERNET. The exclusion constraint on
 * account.vpn_subnet is the backstop; the lock just avoids losing races.
 *
 * Accounts created by tenants (anyone but an admin of the root account) may not take the last
 * VPN_SUBNET_RESERVE free blocks: the root account can always create a new tenant, whatever
 * the existing tenants did with their quotas.
 */
@Injectable()
export class VpnSubnetAllocator {
  constructor(
    private readonly accounts: AccountsRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  lock(em: EntityManager): Promise<void> {
    return this.accounts.lockSubnetAllocation(em, SUBNET_LOCK_KEY);
  }

  async nextFree(em: EntityManager, request: AllocationRequest = { byRootAdmin: true }): Promise<string> {
    const [network, superPrefix] = this.config.vpnSupernet.split('/');
    const prefix = this.config.vpnSubnetPrefix;
    const blocks = 2 ** (prefix - Number(superPrefix));
    const blockSize = 2 ** (32 - prefix);
    if (!request.byRootAdmin && (await this.freeBlocks(em)) <= this.config.vpnSubnetReserve) {
      throw this.noSpace(request);
    }
    const subnet = await this.accounts.firstFreeSubnet(em, { network, prefix, blockSize, blocks });
    if (subnet === null) throw this.noSpace(request);
    return subnet;
  }

  /** Blocks of the supernet no account subnet touches (one query, the arithmetic here). */
  async freeBlocks(em: EntityManager): Promise<number> {
    const [network, superPrefix] = this.config.vpnSupernet.split('/');
    const blockSize = 2 ** (32 - this.config.vpnSubnetPrefix);
    const superSize = 2 ** (32 - Number(superPrefix));
    const superStart = Math.floor(ipv4ToInt(network) / superSize) * superSize;
    const superEnd = superStart + superSize - 1;
    const rows = await this.accounts.subnetsOverlapping(em, this.config.vpnSupernet);
    const used = rows
      .map((r) => {
        const start = Math.max(ipv4ToInt(r.net), superStart);
        const end = Math.min(ipv4ToInt(r.net) + 2 ** (32 - r.len) - 1, superEnd);
        return [Math.floor((start - superStart) / blockSize), Math.floor((end - superStart) / blockSize)];
      })
      .sort((a, b) => a[0] - b[0]);
    let taken = 0;
    let reach = -1;
    for (const [first, last] of used) {
      if (last <= reach) continue;
      taken += last - Math.max(first, reach + 1) + 1;
      reach = last;
    }
    return superSize / blockSize - taken;
  }

  /** Root admins learn which supernet is full; a tenant learns nothing about the address space. */
  private noSpace(request: AllocationRequest): AppError {
    return request.byRootAdmin
      ? new AppError(
          'CONFLICT',
          'No free VPN subnet',
          `${this.config.vpnSupernet} has no free /${this.config.vpnSubnetPrefix} block left`,
        )
      : new AppError(
          'CONFLICT',
          'No VPN subnet available',
          'No address space is left for new accounts; ask the operator of the service',
        );
  }
}
