import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AppError } from '../common/app-error';

/**
 * Hands each device of an account the lowest free host address of the account's
 * VPN subnet. The first host (.1) is kept for the VPN server side. Callers hold
 * the account row lock (FOR UPDATE) for the transaction, which serialises
 * allocation per account; the unique (scope_id, tunnel_ip) constraint is the backstop.
 */
@Injectable()
export class TunnelAddressPool {
  async allocate(em: EntityManager, accountId: string): Promise<string> {
    const accounts: Array<{ vpn_subnet: string }> = await em.query(
      'SELECT vpn_subnet::text FROM account WHERE id = $1 FOR UPDATE',
      [accountId],
    );
    if (!accounts[0]) throw AppError.notFound('Account');
    const rows: Array<{ ip: string }> = await em.query(
      `SELECT host(network($2::cidr) + g) AS ip
         FROM generate_series(2::bigint, (2::bigint ^ (32 - masklen($2::cidr)))::bigint - 2) AS g
        WHERE NOT EXISTS (
          -- tunnel_ip holds host addresses (/32); inet equality compares the netmask too.
          SELECT 1 FROM device d WHERE d.scope_id = $1 AND d.tunnel_ip = set_masklen(network($2::cidr) + g, 32))
        ORDER BY g
        LIMIT 1`,
      [accountId, accounts[0].vpn_subnet],
    );
    if (!rows[0]) {
      throw AppError.conflict(
        'VPN subnet exhausted',
        `No free tunnel address left in ${accounts[0].vpn_subnet}`,
      );
    }
    return rows[0].ip;
  }
}
