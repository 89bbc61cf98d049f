import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AppError } from '../common/app-error';
import { AccountsRepository } from '../accounts/accounts.repository';
import { DevicesRepository } from './devices.repository';

/**
 * Hands each device of an account the lowest free host address of the account's
 * VPN subnet. The first host (.1) is kept for the VPN server side. Allocating
 * locks the account row (FOR UPDATE) for the transaction, which serialises
 * allocation per account; the unique (scope_id, tunnel_ip) constraint is the backstop.
 * The account's `tunnel_address_hint` row keeps where the search starts (every offset
 * below it is taken): a creation probes one address, not every device's, and a
 * deletion lowers the start to the address it freed (`release`).
 */
@Injectable()
export class TunnelAddressPool {
  constructor(
    private readonly accounts: AccountsRepository,
    private readonly devices: DevicesRepository,
  ) {}

  async allocate(em: EntityManager, accountId: string): Promise<string> {
    const account = await this.accounts.lockForUpdate(em, accountId);
    if (!account) throw AppError.notFound('Account');
    const free = await this.devices.firstFreeTunnelAddress(
      em,
      accountId,
      account.vpnSubnet,
      account.nextTunnelHost,
    );
    if (free === null) {
      throw AppError.conflict('VPN subnet exhausted', `No free tunnel address left in ${account.vpnSubnet}`);
    }
    await this.accounts.tunnelHostTaken(em, accountId, free.host);
    return free.ip;
  }

  /**
   * Locks the account row before a device's address is freed in the same transaction (the lock
   * order of `allocate`: account first, then device rows); call `release` once it is freed.
   */
  async lockForRelease(em: EntityManager, accountId: string): Promise<void> {
    await this.accounts.lockForUpdate(em, accountId);
  }

  async release(em: EntityManager, accountId: string, tunnelIp: string): Promise<void> {
    await this.accounts.tunnelAddressFreed(em, accountId, tunnelIp);
  }
}
