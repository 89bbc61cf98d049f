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
    const ip = await this.devices.firstFreeTunnelAddress(em, accountId, account.vpnSubnet);
    if (ip === null) {
      throw AppError.conflict('VPN subnet exhausted', `No free tunnel address left in ${account.vpnSubnet}`);
    }
    return ip;
  }
}
