import { Check, Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { ScopedEntity } from '../common/base.entity';
import { Account } from '../accounts/account.entity';
import type { Role } from '../auth/roles';

/**
 * An integrator's credential. The secret has 256 random bits, so a SHA-256
 * digest (compared in constant time) is enough; it is shown once, at creation.
 */
@Entity('api_key')
/** Finds the keys a user or key created, to delete them with it (ApiKeysRepository.deleteCreatedBy). */
@Index('api_key_created_by_idx', ['createdBy'])
@Check('api_key_role_valid', `"role" IN ('admin', 'operator', 'viewer')`)
export class ApiKey extends ScopedEntity {
  @Column({ type: 'varchar', length: 255 })
  name: string;

  @Column({ type: 'varchar', length: 16 })
  role: Role;

  @Index('api_key_digest_unique', { unique: true })
  @Column({ name: 'key_digest', type: 'bytea' })
  keyDigest: Buffer;

  @Column({ name: 'last_used_on', type: 'timestamptz', nullable: true })
  lastUsedOn: Date | null;

  @ManyToOne(() => Account, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'scope_id', foreignKeyConstraintName: 'api_key_account_fk' })
  account?: Account;
}
