import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';

/** Serialises subnet allocation across instances (transaction-scoped advisory lock). */
const SUBNET_LOCK_KEY = 0x5650_4e31;

/**
 * Hands each account a VPN subnet that overlaps no other: the first free block
 * of VPN_SUBNET_PREFIX inside VPN_SUPERNET. The exclusion constraint on
 * account.vpn_subnet is the backstop; the lock just avoids losing races.
 */
@Injectable()
export class VpnSubnetAllocator {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async lock(em: EntityManager): Promise<void> {
    await em.query('SELECT pg_advisory_xact_lock($1)', [SUBNET_LOCK_KEY]);
  }

  async nextFree(em: EntityManager): Promise<string> {
    const [network, superPrefix] = this.config.vpnSupernet.split('/');
    const prefix = this.config.vpnSubnetPrefix;
    const blocks = 2 ** (prefix - Number(superPrefix));
    const blockSize = 2 ** (32 - prefix);
    const rows: Array<{ subnet: string }> = await em.query(
      `SELECT set_masklen($1::inet + g * $3::bigint, $2)::cidr::text AS subnet
         FROM generate_series(0, $4::bigint - 1) AS g
        WHERE NOT EXISTS (
          SELECT 1 FROM account a WHERE a.vpn_subnet && set_masklen($1::inet + g * $3::bigint, $2)::cidr)
        ORDER BY g
        LIMIT 1`,
      [network, prefix, blockSize, blocks],
    );
    if (!rows[0]) {
      throw new AppError(
        'CONFLICT',
        'No free VPN subnet',
        `${this.config.vpnSupernet} has no free /${prefix} block left`,
      );
    }
    return rows[0].subnet;
  }
}
