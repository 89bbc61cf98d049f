import { hashPassword, verifyPassword } from '../common/secrets';
import type { AppConfig } from '../config/app-config';
import type { UsersRepository } from '../users/users.repository';

/**
 * ADMIN_PASSWORD sets the admin's password on the first start only; afterwards the stored
 * password is the one that counts. So that a changed ADMIN_PASSWORD is not silently ignored,
 * every later start compares it with the stored hash and warns when they differ (naming the
 * variables, never a password). With ADMIN_PASSWORD_RESET=true the stored password is replaced
 * by ADMIN_PASSWORD instead: the documented way back in for an operator who lost it.
 */
export async function checkAdminPassword(
  users: Pick<UsersRepository, 'findByUsername' | 'setPasswordHash'>,
  config: Pick<AppConfig, 'adminUsername' | 'adminPassword' | 'adminPasswordReset'>,
  logger: { warn(message: string): void },
): Promise<'unset' | 'matches' | 'differs' | 'reset' | 'no-admin'> {
  const password = config.adminPassword;
  if (password === undefined) return 'unset';
  const admin = await users.findByUsername(config.adminUsername);
  if (!admin) {
    logger.warn(
      `ADMIN_PASSWORD is set but there is no user "${config.adminUsername}" (ADMIN_USERNAME) to apply it to; ` +
        'it is used only when the first start creates that user',
    );
    return 'no-admin';
  }
  if (await verifyPassword(password, admin.passwordHash)) return 'matches';
  if (config.adminPasswordReset) {
    await users.setPasswordHash(admin.id, await hashPassword(password));
    logger.warn(
      `ADMIN_PASSWORD_RESET=true: the password of admin user "${config.adminUsername}" is now ADMIN_PASSWORD; ` +
        'unset ADMIN_PASSWORD_RESET so that later starts do not reset it again',
    );
    return 'reset';
  }
  logger.warn(
    `ADMIN_PASSWORD differs from the stored password of admin user "${config.adminUsername}" and is ignored: ` +
      'it applies only on the first start. To make it the password, start once with ADMIN_PASSWORD_RESET=true',
  );
  return 'differs';
}
