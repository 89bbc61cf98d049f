import { Check, Column, Entity, Exclusion, Index, JoinColumn, ManyToOne } from 'typeorm';
import { ACCOUNT_NAME_PATTERN } from '@app/protocol';
import { UpdatableEntity } from '../common/base.entity';

/**
 * A tenant. Accounts form a tree through scopeId (the parent); `path` lists the
 * ids from the root down to this account (`/root/child/`), so "is X inside my
 * subtree" is a prefix test. The name is the account segment of MQTT topics.
 */
@Entity('account')
@Check('account_name_topic_safe', `"name" ~ '${ACCOUNT_NAME_PATTERN.source}'`)
@Exclusion('account_vpn_subnet_no_overlap', 'USING gist ("vpn_subnet" inet_ops WITH &&)')
export class Account extends UpdatableEntity {
  @Index('account_name_unique', { unique: true })
  @Column({ type: 'varchar', length: 63 })
  name: string;

  @Column({ type: 'varchar', length: 1024, default: '' })
  description: string;

  @Index('account_path_idx')
  @Column({ type: 'text' })
  path: string;

  @Column({ name: 'vpn_subnet', type: 'cidr' })
  vpnSubnet: string;

  /** Deleting an account with children is refused (explicitly, and by this foreign key). */
  @ManyToOne(() => Account, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn({ name: 'scope_id', foreignKeyConstraintName: 'account_parent_fk' })
  parent?: Account;
}
