import { Check, Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { UpdatableEntity } from '../common/base.entity';
import { Account } from '../accounts/account.entity';
import type { Role } from '../auth/roles';

/** A human user of one account. The password is kept only as a scrypt hash. */
@Entity('app_user')
@Check('app_user_role_valid', `"role" IN ('admin', 'operator', 'viewer')`)
export class User extends UpdatableEntity {
  /** Unique across all accounts: sign-in is by username alone. */
  @Index('app_user_username_unique', { unique: true })
  @Column({ type: 'varchar', length: 255 })
  username: string;

  @Column({ name: 'password_hash', type: 'varchar', length: 255 })
  passwordHash: string;

  @Column({ type: 'varchar', length: 16 })
  role: Role;

  @Column({ type: 'boolean', default: true })
  enabled: boolean;

  @ManyToOne(() => Account, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'scope_id', foreignKeyConstraintName: 'app_user_account_fk' })
  account?: Account;
}
