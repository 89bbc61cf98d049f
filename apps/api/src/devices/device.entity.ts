import { Check, Column, Entity, Index, JoinColumn, ManyToOne, Unique } from 'typeorm';
import { CLIENT_ID_PATTERN } from '@app/protocol';
import { UpdatableEntity } from '../common/base.entity';
import { Account } from '../accounts/account.entity';
import { Gateway } from '../gateways/gateway.entity';

export const DEVICE_STATUSES = ['ENABLED', 'DISABLED'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];
export const CONNECTION_STATUSES = ['NEVER_CONNECTED', 'CONNECTED', 'DISCONNECTED', 'MISSING'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

/**
 * A registered device. `clientId` is its MQTT client id and topic segment,
 * unique per account; `tunnelIp` is its stable address in the account's VPN
 * subnet, unique per account. Profile fields come from its BIRTH certificate.
 */
@Entity('device')
@Unique('device_client_id_unique', ['scopeId', 'clientId'])
@Unique('device_tunnel_ip_unique', ['scopeId', 'tunnelIp'])
// The newest modification and the count of a scope's devices, for the fleet status ETag.
@Index('device_scope_modified_idx', ['scopeId', 'modifiedOn'])
@Check('device_client_id_topic_safe', `"client_id" ~ '${CLIENT_ID_PATTERN.source}'`)
@Check('device_status_valid', `"status" IN ('ENABLED', 'DISABLED')`)
@Check(
  'device_connection_status_valid',
  `"connection_status" IN ('NEVER_CONNECTED', 'CONNECTED', 'DISCONNECTED', 'MISSING')`,
)
export class Device extends UpdatableEntity {
  @Column({ name: 'client_id', type: 'varchar', length: 64 })
  clientId: string;

  @Column({ name: 'display_name', type: 'varchar', length: 255, default: '' })
  displayName: string;

  @Column({ type: 'varchar', length: 16, default: 'ENABLED' })
  status: DeviceStatus;

  @Column({ name: 'connection_status', type: 'varchar', length: 16, default: 'NEVER_CONNECTED' })
  connectionStatus: ConnectionStatus;

  @Column({ name: 'last_event_on', type: 'timestamptz', nullable: true })
  lastEventOn: Date | null;

  @Column({ name: 'model_id', type: 'varchar', length: 255, nullable: true })
  modelId: string | null;

  @Column({ name: 'serial_number', type: 'varchar', length: 255, nullable: true })
  serialNumber: string | null;

  @Column({ name: 'firmware_version', type: 'varchar', length: 255, nullable: true })
  firmwareVersion: string | null;

  @Column({ name: 'connection_ip', type: 'varchar', length: 255, nullable: true })
  connectionIp: string | null;

  /** Comma list as announced in BIRTH (`VPNCLIENT-V2` = VPN capable). */
  @Column({ name: 'application_ids', type: 'varchar', length: 1024, default: '' })
  applicationIds: string;

  @Column({ name: 'tunnel_ip', type: 'inet' })
  tunnelIp: string;

  /** WireGuard public key the agent announced (vpn.public_key); the private key never leaves the device. */
  @Column({ name: 'vpn_public_key', type: 'varchar', length: 64, nullable: true })
  vpnPublicKey: string | null;

  /** MQTT username: `{account}:{clientId}`; null until credentials are issued. */
  @Index('device_mqtt_username_unique', { unique: true })
  @Column({ name: 'mqtt_username', type: 'varchar', length: 160, nullable: true })
  mqttUsername: string | null;

  @Column({ name: 'mqtt_password_digest', type: 'bytea', nullable: true })
  mqttPasswordDigest: Buffer | null;

  @Column({ name: 'credentials_issued_on', type: 'timestamptz', nullable: true })
  credentialsIssuedOn: Date | null;

  /** The gateway the device is pinned to; null = the gateway of the nearest account on its path. */
  @Column({ name: 'gateway_id', type: 'uuid', nullable: true })
  gatewayId: string | null;

  @ManyToOne(() => Account, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'scope_id', foreignKeyConstraintName: 'device_account_fk' })
  account?: Account;

  @ManyToOne(() => Gateway, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'gateway_id', foreignKeyConstraintName: 'device_gateway_fk' })
  gateway?: Gateway;
}
