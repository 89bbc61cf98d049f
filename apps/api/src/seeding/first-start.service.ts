import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Account } from '../accounts/account.entity';
import { VpnSubnetAllocator } from '../accounts/vpn-subnet.allocator';
import { generateSecret, hashPassword } from '../common/secrets';
import { UsersRepository } from '../users/users.repository';
import { checkAdminPassword } from './admin-password-check';

/**
 * On the very first start (no account yet) creates the root account and its
 * admin. The password comes from ADMIN_PASSWORD or is generated and printed
 * once. Safe with several instances starting together (advisory lock).
 */
@Injectable()
export class FirstStartService implements OnApplicationBootstrap {
  private readonly logger = new Logger('FirstStart');

  constructor(
    private readonly dataSource: DataSource,
    private readonly subnets: VpnSubnetAllocator,
    private readonly users: UsersRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    let generated: string | undefined;
    const created = await this.dataSource.transaction(async (em) => {
      await this.subnets.lock(em);
      if ((await em.getRepository(Account).count()) > 0) return false;
      const id = randomUUID();
      await em.getRepository(Account).insert({
        id,
        scopeId: null,
        name: this.config.rootAccountName,
        description: 'Root account',
        path: `/${id}/`,
        vpnSubnet: await this.subnets.nextFree(em),
      });
      const password = this.config.adminPassword ?? (generated = generateSecret(12));
      await this.users.insert(
        {
          scopeId: id,
          username: this.config.adminUsername,
          passwordHash: await hashPassword(password),
          role: 'admin',
          enabled: true,
        },
        em,
      );
      this.logger.log(
        `created root account "${this.config.rootAccountName}" and admin user "${this.config.adminUsername}"`,
      );
      return true;
    });
    // An admin created just now has ADMIN_PASSWORD (or a generated one): nothing to compare.
    if (!created) await checkAdminPassword(this.users, this.config, this.logger);
    if (generated) {
      // Printed once, on the first start only: it is not stored anywhere in clear.
      const rule = `  ${'='.repeat(72)}\n`;
      process.stdout.write(
        `\n${rule}` +
          `  First start: admin user "${this.config.adminUsername}" created with password: ${generated}\n` +
          '  Keep it now: it is not stored in clear and not shown again.\n' +
          '  (Set ADMIN_PASSWORD before the first start to choose it instead.)\n' +
          `${rule}\n`,
      );
    }
  }
}
