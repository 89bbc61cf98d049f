import { Check, Column, Entity, Index, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { CLIENT_ID_PATTERN } from '@app/protocol';
import { UpdatableEntity } from '../common/base.entity';
import { Account } from '../accounts/account.entity';
import type { LinkStatus } from '../mqtt/connection-events';

/**
 * A VPN gateway the cloud manages (apps/vpn-gateway): one WireGuard hub whose peers the cloud
 * pushes over MQTT. Its `name` is its MQTT client id and topic segment, sharing one namespace
 * with the device clientIds of its account. `desiredSerial` grows with every change of its peer
 * set (the gateway_peer rows); `appliedSerial` is the serial the gateway acknowledged, -1 when it
 * must get a full sync (after its BIRTH, or when it reported a gap).
 */
@Entity('gateway')
@Unique('gateway_name_unique', ['scopeId', 'name'])
@Check('gateway_name_topic_safe', `"name" ~ '${CLIENT_ID_PATTERN.source}'`)
@Check(
  'gateway_connection_status_valid',
  `"connection_status" IN ('NEVER_CONNECTED', 'CONNECTED', 'DISCONNECTED', 'MISSING')`,
)
export class Gateway extends UpdatableEntity {
  @Column({ type: 'varchar', length: 64 })
  name: string;

  @Column({ type: 'varchar', length: 1024, default: '' })
  description: string;

  /** `host:port` devices and engineers' clients send their WireGuard packets to. */
  @Column({ type: 'varchar', length: 300 })
  endpoint: string;

  /** Announced by the gateway in its BIRTH; null until it first connects. */
  @Column({ name: 'public_key', type: 'varchar', length: 64, nullable: true })
  publicKey: string | null;

  @Column({ name: 'listen_port', type: 'integer', nullable: true })
  listenPort: number | null;

  @Column({ name: 'connection_status', type: 'varchar', length: 16, default: 'NEVER_CONNECTED' })
  connectionStatus: LinkStatus;

  @Column({ name: 'last_seen_on', type: 'timestamptz', nullable: true })
  lastSeenOn: Date | null;

  @Index('gateway_mqtt_username_unique', { unique: true })
  @Column({ name: 'mqtt_username', type: 'varchar', length: 160, nullable: true })
  mqttUsername: string | null;

  @Column({ name: 'mqtt_password_digest', type: 'bytea', nullable: true })
  mqttPasswordDigest: Buffer | null;

  @Column({ name: 'credentials_issued_on', type: 'timestamptz', nullable: true })
  credentialsIssuedOn: Date | null;

  /** bigint: read as a string by the driver. */
  @Column({ name: 'desired_serial', type: 'bigint', default: 0 })
  desiredSerial: string;

  @Column({ name: 'applied_serial', type: 'bigint', default: -1 })
  appliedSerial: string;

  @ManyToOne(() => Account, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'scope_id', foreignKeyConstraintName: 'gateway_account_fk' })
  account?: Account;
}
